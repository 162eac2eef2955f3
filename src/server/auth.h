// Who is calling aloftd, and whether they may (private to src/server). Operators send
// `Authorization: Bearer <API token>`, devices their device token (Bearer, or DDI's
// `TargetToken`), registration tokens register new devices, and DDI's `GatewayToken` speaks for
// any device. Tokens are stored as SHA-256 hashes; a cache keyed by the token itself spares the
// hash and the database on repeated requests (auth_cache_s), sharded so that HTTP threads seldom
// wait for each other. Thread-safe.
#pragma once

#include <array>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/clock.h"
#include "server/api.h"
#include "server/config.h"
#include "server/device_certs.h"
#include "server/store.h"

namespace aloft::server {

class Auth {
 public:
  // `certs` (may be null): devices that authenticate with a certificate (docs/identity.md).
  Auth(const ServerConfig& config, const Clock& clock, Store& store,
       DeviceCertificates* certs = nullptr)
      : config_(config), clock_(clock), store_(store), certs_(certs) {}

  // The caller behind the request's credentials for a route with `access`. kPermissionDenied for
  // missing, unknown or revoked credentials; the store's error when it cannot be asked.
  Result<Caller> Authenticate(const Request& req, Access access);
  // Whether `caller` may make `req`. A gateway acting for one of its sub-devices on the device
  // API becomes that sub-device: `caller.device` is replaced by it.
  Status Authorize(Caller& caller, Access access, const Request& req);
  // Drops every cached caller (a token was revoked, a device changed or went).
  void Forget();
  // Keeps the cached copy of a device current after this server changed it.
  void UpdateCachedDevice(const std::string& cache_key, const Device& d);

 private:
  // The dashboard's session cookie: the session's user or token, with its CSRF token.
  Result<Caller> AuthenticateSession(std::string_view cookie);
  // A session's unsafe request (not GET or HEAD) must carry its CSRF token, and come from no
  // other origin.
  static Status CheckCsrf(const Caller& c, const Request& req);
  // `Authorization: GatewayToken <token>`: the device named in the path, when the token is the
  // configured ddi_gateway_token.
  Result<Caller> AuthenticateGateway(const Request& req, std::string_view token);
  // The device a verified certificate names (cached under "cert <name>").
  Result<Caller> AuthenticateCertified(const std::string& name);
  // Caches `c` under `key` (not a registration) and returns what this request knows of it.
  Caller Keep(Caller c, const std::string& key, bool open_action, uint64_t mark);
  // The device of a token hash and whether it has an open action (PostgreSQL): concurrent
  // lookups are answered by a few shared queries (at most kMaxLookupQueries at once, each for up
  // to kMaxLookupBatch hashes), so that a burst of first contacts costs few round trips. `mark`:
  // the Store::EpochMark() taken before the query that answered.
  Result<std::optional<std::pair<Device, bool>>> LookUpDevice(const std::string& hash,
                                                              uint64_t& mark);
  struct Lookup {
    std::string hash;
    std::condition_variable cv;  // done, or lead: guarded by lookup_mu_
    bool done = false, lead = false;
    Status status = OkStatus();
    std::optional<std::pair<Device, bool>> found;
    uint64_t mark = 0;
  };
  static constexpr int kMaxLookupQueries = 2;
  static constexpr size_t kMaxLookupBatch = 64;
  std::mutex lookup_mu_;
  std::deque<std::shared_ptr<Lookup>> lookup_queue_;
  int lookups_running_ = 0;

  struct CachedAuth {
    Caller caller;
    std::chrono::steady_clock::time_point expires;
  };
  static constexpr size_t kShards = 16;
  static constexpr size_t kCacheMax = (1 << 20) / kShards;  // per shard
  struct Shard {
    std::mutex mu;
    std::unordered_map<std::string, CachedAuth> map;
  };
  Shard& ShardFor(std::string_view token) {
    return cache_[std::hash<std::string_view>()(token) % kShards];
  }

  const ServerConfig& config_;
  const Clock& clock_;
  Store& store_;
  DeviceCertificates* certs_;
  std::array<Shard, kShards> cache_;
};

}  // namespace aloft::server
