#include "server/auth.h"

#include <openssl/crypto.h>

#include "core/encoding.h"
#include "core/hash.h"

namespace aloft::server {

Result<Caller> Auth::Authenticate(const Request& req, Access access) {
  Caller c;
  if (access == Access::kPublic) return c;
  const bool device_access = access == Access::kDevice || access == Access::kAnyDevice ||
                             access == Access::kDeviceOrRegistration || access == Access::kDdi;
  if (certs_ && device_access) {
    // A certificate presented is checked whatever else comes with it: a refused one is refused.
    Result<std::string> named = certs_->DeviceOf(req);
    if (named.ok()) return AuthenticateCertified(*named);
    if (named.error().code() != Code::kNotFound) return std::move(named).error();
  }
  std::string_view auth = req.headers.Get("Authorization");
  std::string_view token;
  if (access == Access::kDdi) {
    constexpr std::string_view kTarget = "TargetToken ", kGateway = "GatewayToken ";
    if (auth.starts_with(kGateway)) return AuthenticateGateway(req, auth.substr(kGateway.size()));
    if (auth.starts_with(kTarget)) token = auth.substr(kTarget.size());
    if (token.empty()) {
      return Error(Code::kPermissionDenied,
                   "missing credentials: send 'Authorization: TargetToken <device token>' or "
                   "'GatewayToken <gateway token>'");
    }
  } else {
    if (auth.size() > 7 && (auth.substr(0, 7) == "Bearer " || auth.substr(0, 7) == "bearer ")) {
      token = auth.substr(7);
    }
    const bool operator_route = access == Access::kViewer || access == Access::kRelease ||
                                access == Access::kApprover || access == Access::kAdmin;
    if (token.empty() && operator_route) {
      std::string_view cookie = CookieValue(req, kSessionCookie);
      if (!cookie.empty()) return AuthenticateSession(cookie);
    }
    if (token.empty()) {
      return Error(Code::kPermissionDenied,
                   "missing credentials: send 'Authorization: Bearer <token>'" +
                       std::string(operator_route ? ", or sign in (POST /api/v1/session)" : ""));
    }
  }
  // The cache is keyed by the token itself, so a hit costs no SHA-256; the database only ever sees
  // the hash.
  const std::string key(token);
  const auto now = clock_.Monotonic();
  Shard& shard = ShardFor(key);
  {
    std::lock_guard lock(shard.mu);
    auto it = shard.map.find(key);
    if (it != shard.map.end() && it->second.expires > now &&
        (access == Access::kDdi ? it->second.caller.kind == Caller::kDevice
                                : device_access || it->second.caller.kind == Caller::kOperator)) {
      return it->second.caller;
    }
  }
  const std::string hash = Sha256Hex(AsBytes(token));
  // A device is read together with whether it has an open action: what a check-in asks next.
  uint64_t mark = store_.EpochMark();
  bool open_action = true;
  auto become_device = [&](std::pair<Device, bool>& found) {
    c.kind = Caller::kDevice;
    c.actor = "device:" + found.first.name;
    c.device = std::make_shared<const Device>(std::move(found.first));
    open_action = found.second;
  };
  // On PostgreSQL concurrent first contacts share round trips to the database; the device
  // routes' other credentials (registration tokens) are looked for only when it found no device.
  const bool shared_lookup = device_access && store_.database().engine() == db::Engine::kPostgres;
  if (shared_lookup) {
    ALOFT_ASSIGN_OR_RETURN(auto found, LookUpDevice(hash, mark));
    if (found) become_device(*found);
  }
  Status s = c.kind != Caller::kNone ? OkStatus() : store_.Read([&](Tx& tx) -> Status {
    if (device_access) {
      if (!shared_lookup) {
        ALOFT_ASSIGN_OR_RETURN(auto found, tx.AuthenticateDevice(hash));
        if (found) {
          become_device(*found);
          return OkStatus();
        }
      }
      if (access == Access::kDeviceOrRegistration) {
        ALOFT_ASSIGN_OR_RETURN(auto t, tx.FindRegistrationToken(hash));
        if (t) {
          if (auto refusal = t->Refusal(ToMs(clock_.Wall())); !refusal.empty()) {
            return Error(Code::kPermissionDenied,
                         "the registration token" + (t->name.empty() ? "" : " '" + t->name + "'") +
                             " is " + std::string(refusal) + ": ask for a new one");
          }
          c.kind = Caller::kRegistration;
          c.actor = "registration:" + (t->name.empty() ? t->device_type : t->name);
          c.reg_token = std::move(t);
          return OkStatus();
        }
      }
    }
    if (access == Access::kDdi) return OkStatus();  // device tokens only
    ALOFT_ASSIGN_OR_RETURN(auto t, tx.FindApiToken(hash));
    if (t) {
      c.kind = Caller::kOperator;
      c.actor = "token:" + t->name;
      c.role = t->role;
    }
    return OkStatus();
  });
  ALOFT_RETURN_IF_ERROR(s);
  if (c.kind == Caller::kNone) return Error(Code::kPermissionDenied, "unknown or revoked token");
  return Keep(std::move(c), key, open_action, mark);
}

Caller Auth::Keep(Caller c, const std::string& key, bool open_action, uint64_t mark) {
  c.cache_key = key;
  Caller fresh = c;  // what this request knows; the cache keeps what later ones may trust
  if (c.kind == Caller::kDevice) fresh.open_action_now = open_action;
  if (c.kind != Caller::kRegistration && config_.auth_cache_s > 0) {
    if (c.kind == Caller::kDevice) {
      c.hints = std::make_shared<Caller::Hints>();
      if (!open_action) {
        if (auto epoch = store_.ActionsEpochSince(c.device->id, mark)) {
          c.hints->no_action_epoch.store(*epoch, std::memory_order_relaxed);
        }
      }
    }
    Shard& shard = ShardFor(key);
    std::lock_guard lock(shard.mu);
    if (shard.map.size() >= kCacheMax) shard.map.clear();
    shard.map[key] = {c, clock_.Monotonic() + std::chrono::seconds(config_.auth_cache_s)};
  }
  fresh.hints = c.hints;
  return fresh;
}

Result<Caller> Auth::AuthenticateCertified(const std::string& name) {
  // Keyed apart from tokens; the certificate itself (its chain, the CRL) was checked before.
  const std::string key = "cert " + name;
  Shard& shard = ShardFor(key);
  {
    std::lock_guard lock(shard.mu);
    auto it = shard.map.find(key);
    if (it != shard.map.end() && it->second.expires > clock_.Monotonic()) {
      return it->second.caller;
    }
  }
  const uint64_t mark = store_.EpochMark();
  std::optional<std::pair<Device, bool>> found;
  ALOFT_RETURN_IF_ERROR(store_.Read([&](Tx& tx) -> Status {
    ALOFT_ASSIGN_OR_RETURN(found, tx.AuthenticateDeviceNamed(name));
    return OkStatus();
  }));
  if (!found) {
    return Error(Code::kPermissionDenied, "the client certificate names device '" + name +
                                              "', which is not registered (aloft server device "
                                              "add --csr)");
  }
  Caller c;
  c.kind = Caller::kDevice;
  c.actor = "device:" + found->first.name;
  c.device = std::make_shared<const Device>(std::move(found->first));
  return Keep(std::move(c), key, found->second, mark);
}

Result<Caller> Auth::AuthenticateSession(std::string_view cookie) {
  // Keyed apart from tokens: a cookie's value is never taken for a token, nor a token for one.
  const std::string key = "session " + std::string(cookie);
  const auto now = clock_.Monotonic();
  Shard& shard = ShardFor(key);
  {
    std::lock_guard lock(shard.mu);
    auto it = shard.map.find(key);
    if (it != shard.map.end() && it->second.expires > now) return it->second.caller;
  }
  const int64_t wall = ToMs(clock_.Wall());
  std::optional<Session> found;
  ALOFT_RETURN_IF_ERROR(store_.Read([&](Tx& tx) -> Status {
    ALOFT_ASSIGN_OR_RETURN(found, tx.FindSession(Sha256Hex(AsBytes(cookie)), wall));
    return OkStatus();
  }));
  if (!found) {
    return Error(Code::kPermissionDenied, "the sign-in expired or was ended: sign in again");
  }
  Caller c = SessionCaller(*found);
  c.cache_key = key;
  if (config_.auth_cache_s > 0) {
    auto keep = std::chrono::milliseconds(
        std::min(config_.auth_cache_s * 1000, std::max<int64_t>(0, found->expires_ms - wall)));
    std::lock_guard lock(shard.mu);
    if (shard.map.size() >= kCacheMax) shard.map.clear();
    shard.map[key] = {c, now + keep};
  }
  return c;
}

Result<Caller> Auth::AuthenticateGateway(const Request& req, std::string_view token) {
  const std::string& expected = config_.ddi_gateway_token;
  if (expected.empty()) {
    return Error(Code::kPermissionDenied,
                 "this server accepts no gateway token (ddi_gateway_token is not set)");
  }
  if (token.size() != expected.size() ||
      CRYPTO_memcmp(token.data(), expected.data(), expected.size()) != 0) {
    return Error(Code::kPermissionDenied, "unknown gateway token");
  }
  auto it = req.params.find("device");
  const std::string name = it == req.params.end() ? "" : it->second;
  Caller c;
  Status s = store_.Read([&](Tx& tx) -> Status {
    ALOFT_ASSIGN_OR_RETURN(Device d, tx.GetDevice(name));
    c.device = std::make_shared<const Device>(std::move(d));
    return OkStatus();
  });
  if (!s.ok() && s.error().code() == Code::kNotFound) {
    return Error(Code::kNotFound, "controller '" + name +
                                      "' is not a registered device (add it with `aloft server "
                                      "device add`)");
  }
  ALOFT_RETURN_IF_ERROR(s);
  c.kind = Caller::kDevice;
  c.actor = "gateway:" + name;
  return c;
}

Result<std::optional<std::pair<Device, bool>>> Auth::LookUpDevice(const std::string& hash,
                                                                  uint64_t& mark) {
  auto me = std::make_shared<Lookup>();
  me->hash = hash;
  std::unique_lock lock(lookup_mu_);
  lookup_queue_.push_back(me);
  // Lead a query now when a slot is free; else wait to be answered or handed the lead. Each
  // waiter has a condition of its own: a finished query wakes exactly the callers it answered,
  // and one more to lead the next batch, not every waiting thread.
  me->lead = lookups_running_ < kMaxLookupQueries;
  while (!me->done) {
    if (!me->lead) {
      me->cv.wait(lock, [&] { return me->done || me->lead; });
      continue;
    }
    me->lead = false;
    const size_t n = std::min(lookup_queue_.size(), kMaxLookupBatch);
    if (n == 0) continue;  // another leader took this lookup: wait for its answer
    std::vector<std::shared_ptr<Lookup>> batch(lookup_queue_.begin(), lookup_queue_.begin() + n);
    lookup_queue_.erase(lookup_queue_.begin(), lookup_queue_.begin() + n);
    ++lookups_running_;
    lock.unlock();
    std::vector<std::string> hashes;
    hashes.reserve(batch.size());
    for (const auto& l : batch) hashes.push_back(l->hash);
    const uint64_t batch_mark = store_.EpochMark();
    std::map<std::string, std::pair<Device, bool>> found;
    Status s = store_.Read([&](Tx& tx) -> Status {
      ALOFT_ASSIGN_OR_RETURN(found, tx.AuthenticateDevices(hashes));
      return OkStatus();
    });
    lock.lock();
    --lookups_running_;
    for (const auto& l : batch) {
      l->status = s;
      l->mark = batch_mark;
      if (auto it = found.find(l->hash); it != found.end()) l->found = it->second;
      l->done = true;
      if (l != me) l->cv.notify_one();
    }
    if (!lookup_queue_.empty() && lookups_running_ < kMaxLookupQueries) {
      lookup_queue_.front()->lead = true;
      lookup_queue_.front()->cv.notify_one();
    }
  }
  ALOFT_RETURN_IF_ERROR(me->status);
  mark = me->mark;
  return std::move(me->found);
}

void Auth::Forget() {
  for (Shard& shard : cache_) {
    std::lock_guard lock(shard.mu);
    shard.map.clear();
  }
}

void Auth::UpdateCachedDevice(const std::string& cache_key, const Device& d) {
  Shard& shard = ShardFor(cache_key);
  std::lock_guard lock(shard.mu);
  auto it = shard.map.find(cache_key);
  if (it != shard.map.end() && it->second.caller.device) {
    it->second.caller.device = std::make_shared<const Device>(d);
  }
}

Status Auth::CheckCsrf(const Caller& c, const Request& req) {
  if (!c.session || req.method == "GET" || req.method == "HEAD") return OkStatus();
  // A browser sends the cookie with any site's request to this server; only this server's own
  // pages know the session's CSRF token (it is in no cookie), and only they send it.
  std::string_view sent = req.headers.Get("X-CSRF-Token");
  if (sent.size() != c.csrf.size() || c.csrf.empty() ||
      CRYPTO_memcmp(sent.data(), c.csrf.data(), c.csrf.size()) != 0) {
    return Error(Code::kPermissionDenied,
                 std::string(sent.empty() ? "missing" : "wrong") +
                     " X-CSRF-Token: a signed-in browser must send the token its sign-in "
                     "returned (GET /api/v1/session) with every " +
                     req.method + " request");
  }
  // Defence in depth: a browser names the page's origin on such requests; it must be this server.
  std::string_view origin = req.headers.Get("Origin");
  if (!origin.empty()) {
    auto scheme = origin.find("://");
    std::string_view host = scheme == std::string_view::npos ? "" : origin.substr(scheme + 3);
    if (host != req.headers.Get("Host")) {
      return Error(Code::kPermissionDenied, "request from origin '" + std::string(origin) +
                                                "' refused: only this server's own pages may "
                                                "act with a signed-in browser's session");
    }
  }
  return OkStatus();
}

Status Auth::Authorize(Caller& c, Access access, const Request& req) {
  auto need = [&](Role r) -> Status {
    if (c.kind != Caller::kOperator) {
      return Error(Code::kPermissionDenied, "this route needs an operator token");
    }
    if (c.role < r) {
      return Error(Code::kPermissionDenied,
                   "'" + c.actor + "' has role '" + std::string(RoleName(c.role)) + "'; " +
                       req.method + " " + req.path + " needs '" + std::string(RoleName(r)) + "'");
    }
    return CheckCsrf(c, req);
  };
  switch (access) {
    case Access::kPublic:
      return OkStatus();
    case Access::kViewer:
      return need(Role::kViewer);
    case Access::kRelease:
      return need(Role::kRelease);
    case Access::kApprover:
      return need(Role::kApprover);
    case Access::kAdmin:
      return need(Role::kAdmin);
    case Access::kAnyDevice:
      if (c.kind == Caller::kDevice || (c.kind == Caller::kOperator && req.method == "GET")) {
        return OkStatus();
      }
      return Error(Code::kPermissionDenied, "this route needs a device's token");
    case Access::kDevice:
    case Access::kDeviceOrRegistration:
    case Access::kDdi: {
      auto it = req.params.find("device");
      const std::string& name = it == req.params.end() ? "" : it->second;
      if (c.kind == Caller::kDevice) {
        if (c.device->name != name) {
          // A gateway acts for its sub-devices on the native device API (docs/mqtt.md): check-in,
          // feedback, downloads. It then is the sub-device, whose own state the handlers use.
          if (access != Access::kDdi) {
            std::optional<Device> sub;
            Status s = store_.Read([&](Tx& tx) -> Status {
              ALOFT_ASSIGN_OR_RETURN(Device d, tx.GetDevice(name));
              if (d.gateway == c.device->name) sub = std::move(d);
              return OkStatus();
            });
            if (s.ok() && sub) {
              c.actor = "device:" + c.device->name + " for " + name;
              c.device = std::make_shared<const Device>(std::move(*sub));
              c.cache_key.clear();  // the gateway's cache entry and hints are not the sub-device's
              c.hints.reset();
              c.open_action_now.reset();  // it was the gateway's
              return OkStatus();
            }
          }
          return Error(Code::kPermissionDenied,
                       "the token belongs to device '" + c.device->name + "', not '" + name + "'");
        }
        return OkStatus();
      }
      if (c.kind == Caller::kRegistration && access == Access::kDeviceOrRegistration) {
        return OkStatus();
      }
      if (c.kind == Caller::kOperator && access == Access::kDevice && req.method == "GET") {
        return OkStatus();  // operators may download what a device would
      }
      return Error(Code::kPermissionDenied, "this route needs the device's own token");
    }
  }
  return OkStatus();
}

}  // namespace aloft::server
