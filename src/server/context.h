// What aloftd's route handlers share (private to src/server): the configuration, the clock, the
// store, the artifact files, the trust keys, metrics, the caches and the services (rollout
// engine, deltas, the MQTT bridge), and the small helpers every surface uses. The App owns one
// Context and hands it to each route file (routes.h); handlers get it by reference.
//
// Thread-safety: the members are set up before the server runs and not replaced afterwards; each
// service is thread-safe on its own.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <utility>

#include "core/clock.h"
#include "crypto/trust.h"
#include "server/api.h"
#include "server/artifacts.h"
#include "server/config.h"
#include "server/content_keys.h"
#include "server/deltas.h"
#include "server/download.h"
#include "server/metrics.h"
#include "server/push.h"
#include "server/rollout.h"
#include "server/store.h"

namespace aloft::server {

class Auth;
class DeviceCertificates;
class ContactRecorder;
class EventHub;
class Director;
class ImageRepository;
class WebAssets;

struct Context {
  Context(ServerConfig config, const Clock& clock, std::ostream& log);
  ~Context();

  ServerConfig config;
  const Clock& clock;
  std::ostream& log;
  ArtifactStore artifacts;
  crypto::TrustSet trust;
  Metrics metrics;
  OpenFiles open_files;
  std::unique_ptr<Store> store;
  std::unique_ptr<DeviceCertificates> device_certs;  // devices by certificate (null: none)
  std::unique_ptr<Auth> auth;
  std::unique_ptr<ContactRecorder> contacts;
  std::unique_ptr<RolloutEngine> rollouts;
  std::unique_ptr<DeltaService> deltas;
  std::unique_ptr<PushBridge> push;            // when mqtt_url is set
  std::unique_ptr<EventHub> events;            // the dashboard's live feed
  std::unique_ptr<WebAssets> web;              // the dashboard's files, when found
  std::unique_ptr<ImageRepository> image;      // TUF, when its online keys are set
  std::unique_ptr<Director> director;          // Uptane, when its online key is set
  std::unique_ptr<ContentKeys> content_keys;   // encrypted releases (docs/encryption.md)
  const http::ServerCounters* http = nullptr;  // the HTTP server's, for /metrics

  int64_t Now() const { return ToMs(clock.Wall()); }
  // "http(s)://host[:port]" as the device reached this server (its Host header), or public_url.
  std::string BaseUrl(const Request& req) const;
  // Runs `build` in one read transaction and answers 200 with the JSON it built.
  Result<Response> ReadJson(const std::function<Result<json>(Tx&)>& build);
  // The maintenance window of an action's rollout (`rollout_id`); none (always open) without one.
  Result<RolloutEngine::InstallWindow> WindowOf(std::optional<int64_t> rollout_id);
  // The signed link to an artifact under external_base_url and its expiry (Unix seconds), or
  // nullopt when downloads come from this server.
  std::optional<std::pair<std::string, int64_t>> ExternalUrl(const std::string& sha256) const;
  // The device registry's credentials changed (the broker's password file follows).
  void CredentialsChanged() {
    if (push) push->CredentialsChanged();
  }
};

}  // namespace aloft::server
