// aloftd as a library: the HTTP handler for the management API (/api/v1), the native device API
// (/device/v1) and /metrics, wired to the Store, the artifact directory, the trust keys and a
// Clock. apps/aloftd/main.cc only parses flags; tests run an App in-process on a loopback port.
//
//   ALOFT_ASSIGN_OR_RETURN(auto app, App::Create(config, SystemClock::Instance(), std::cerr));
//   ALOFT_RETURN_IF_ERROR(app->Bind());
//   app->Run();   // until Stop() (SIGTERM in aloftd)
//
// docs/server.md and docs/device-api.md describe the routes.
#pragma once

#include <memory>
#include <ostream>
#include <string>

#include "core/clock.h"
#include "core/error.h"
#include "server/config.h"

namespace aloft::server {

class App {
 public:
  // Creates the data directory layout, opens and migrates the database, removes leftovers of
  // interrupted uploads, loads the trust keys, and on first start creates the admin token
  // (<data_dir>/admin.token, 0600) and says so on `log`.
  static Result<std::unique_ptr<App>> Create(const ServerConfig& config, const Clock& clock,
                                             std::ostream& log);
  virtual ~App() = default;

  virtual Status Bind() = 0;
  virtual uint16_t port() const = 0;
  virtual void Run() = 0;
  virtual void Stop() = 0;
  // Runs one round of the rollout engine now, at the Clock's time, as its thread does every
  // rollout_tick_ms. Returns whether this server is the leader.
  virtual Result<bool> TickRollouts() = 0;
  // Makes the queued deltas now, as the background thread does; returns how many.
  virtual Result<int> MakeQueuedDeltas() = 0;
  // Whether the MQTT bridge is connected to its broker (false without mqtt_url).
  virtual bool PushConnected() const = 0;
};

// This machine's host name, with '-' and '/' replaced by '_' (names upload files).
std::string HostName();

// A new random secret token, e.g. "aloft_d_3fa2...": a prefix and 64 hex digits.
std::string NewToken(std::string_view prefix);

}  // namespace aloft::server
