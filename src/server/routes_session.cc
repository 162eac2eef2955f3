// Signing in through a browser (the dashboard, docs/dashboard.md): /api/v1/session with a user's
// name and password or with an API token, and the users who sign in with a password:
// /api/v1/users.
#include <openssl/crypto.h>

#include <mutex>
#include <semaphore>
#include <unordered_map>

#include "core/canonical_json.h"
#include "core/clock.h"
#include "core/encoding.h"
#include "core/hash.h"
#include "crypto/password.h"
#include "server/app.h"
#include "server/auth.h"
#include "server/routes.h"

namespace aloft::server {

namespace {

constexpr size_t kMinPassword = 10, kMaxPassword = 1024;

// Failed sign-ins per user name: after kFreeFailures in a row, each further attempt waits twice
// as long as the one before (1 s, 2 s, 4 s ... at most 5 minutes), whatever the password. The
// memory-hard hash makes each guess cost; this makes many guesses at one account slow.
class SignInThrottle {
 public:
  // Seconds the name must still wait, or 0.
  int64_t WaitFor(const std::string& name, int64_t now_ms) {
    std::lock_guard lock(mu_);
    auto it = failures_.find(name);
    if (it == failures_.end() || it->second.until_ms <= now_ms) return 0;
    return (it->second.until_ms - now_ms + 999) / 1000;
  }
  void Failed(const std::string& name, int64_t now_ms) {
    std::lock_guard lock(mu_);
    if (failures_.size() > 100000) failures_.clear();  // bounded: a flood of made-up names
    auto& f = failures_[name];
    ++f.count;
    if (f.count > kFreeFailures) {
      const int shift = static_cast<int>(std::min<int64_t>(f.count - kFreeFailures - 1, 9));
      f.until_ms = now_ms + std::min<int64_t>(int64_t{1000} << shift, 300'000);
    }
  }
  void Succeeded(const std::string& name) {
    std::lock_guard lock(mu_);
    failures_.erase(name);
  }

 private:
  static constexpr int64_t kFreeFailures = 5;
  struct Failures {
    int64_t count = 0, until_ms = 0;
  };
  std::mutex mu_;
  std::unordered_map<std::string, Failures> failures_;
};

// Each scrypt hash takes 32 MiB for about 100 ms: two at a time bound the memory a burst of
// sign-ins can take, whatever the number of HTTP threads.
std::counting_semaphore<2> hashing{2};

template <typename F>
auto WithHashing(F&& f) {
  hashing.acquire();
  struct Release {
    ~Release() { hashing.release(); }
  } release;
  return f();
}

Status CheckPassword(const std::string& password) {
  if (password.size() < kMinPassword || password.size() > kMaxPassword) {
    return Invalid("field 'password' must be from " + std::to_string(kMinPassword) + " to " +
                   std::to_string(kMaxPassword) + " bytes long");
  }
  return OkStatus();
}

Status OnlyFields(const json& body, std::initializer_list<std::string_view> known) {
  for (const auto& [k, v] : body.items()) {
    if (std::find(known.begin(), known.end(), k) == known.end()) {
      std::string list;
      for (auto n : known) list.append(list.empty() ? "" : ", ").append(n);
      return Invalid("unknown field '" + k + "' (known: " + list + ")");
    }
  }
  return OkStatus();
}

json UserJson(const User& u) {
  return {{"name", u.name},
          {"role", RoleName(u.role)},
          {"created", FormatRfc3339Ms(u.created_ms)},
          {"created_by", u.created_by}};
}

std::string SessionCookie(const Request& req, const std::string& value, int64_t max_age_s) {
  // HttpOnly: page scripts never see it; SameSite=Strict: other sites' pages never send it.
  return std::string(kSessionCookie) + "=" + value +
         "; Path=/; Max-Age=" + std::to_string(max_age_s) + "; HttpOnly; SameSite=Strict" +
         (req.tls ? "; Secure" : "");
}

json SessionJson(const Caller& c, std::optional<int64_t> expires_ms) {
  return {{"actor", c.actor},
          {"role", RoleName(c.role)},
          {"csrf", c.session ? json(c.csrf) : json(nullptr)},
          {"expires", expires_ms ? json(FormatRfc3339Ms(*expires_ms)) : json(nullptr)}};
}

Result<Response> SignIn(Context& ctx, SignInThrottle& throttle, Request& req) {
  ALOFT_ASSIGN_OR_RETURN(json body, ParseBody(req, false));
  ALOFT_RETURN_IF_ERROR(OnlyFields(body, {"user", "password", "token"}));
  ALOFT_ASSIGN_OR_RETURN(auto user_name, OptString(body, "user"));
  ALOFT_ASSIGN_OR_RETURN(auto password, OptString(body, "password"));
  ALOFT_ASSIGN_OR_RETURN(auto token, OptString(body, "token"));
  if (token.has_value() == (user_name.has_value() || password.has_value()) ||
      user_name.has_value() != password.has_value()) {
    return Invalid("sign in with either 'user' and 'password', or 'token' (an API token)");
  }
  const int64_t now = ctx.Now();
  Session s;
  s.csrf = NewToken("").substr(0, 43);
  s.expires_ms = now + ctx.config.session_ttl_s * 1000;
  int64_t owner = 0;
  // API tokens are 256 random bits: guessing one is hopeless, and a throttle would only let
  // anyone lock every token out. Passwords are what people choose.
  const std::string throttle_key = token ? "" : *user_name;
  if (int64_t wait = token ? 0 : throttle.WaitFor(throttle_key, now); wait > 0) {
    Response r = Response::Error(
        429, "too-many-requests",
        "too many failed sign-ins for this account: wait " + std::to_string(wait) + " s");
    r.headers.Set("Retry-After", std::to_string(wait));
    return r;
  }
  auto refuse = [&](std::string message) -> Result<Response> {
    if (!token) throttle.Failed(throttle_key, now);
    Response r = Response::Error(401, "unauthenticated", message);
    r.headers.Set("WWW-Authenticate", "Bearer");
    return r;
  };
  if (token) {
    std::optional<ApiToken> t;
    ALOFT_RETURN_IF_ERROR(ctx.store->Read([&](Tx& tx) -> Status {
      ALOFT_ASSIGN_OR_RETURN(t, tx.FindApiToken(Sha256Hex(AsBytes(*token))));
      return OkStatus();
    }));
    if (!t) return refuse("unknown or revoked API token");
    s.actor = "token:" + t->name;
    s.role = t->role;
    owner = t->id;
  } else {
    if (user_name->empty() || user_name->size() > 128 || password->size() > kMaxPassword) {
      return refuse("wrong user name or password");
    }
    std::optional<User> u;
    ALOFT_RETURN_IF_ERROR(ctx.store->Read([&](Tx& tx) -> Status {
      ALOFT_ASSIGN_OR_RETURN(u, tx.FindUser(*user_name));
      return OkStatus();
    }));
    // An unknown name costs the same hash as a known one: the answer's time tells nothing.
    static const std::string kDummy = *crypto::HashPassword("not a password of anyone's");
    auto match = WithHashing([&] {
      return crypto::VerifyPassword(*password, u ? std::string_view(u->password_hash) : kDummy);
    });
    if (!match.ok()) return std::move(match).error().WithContext("user '" + *user_name + "'");
    if (!u || !*match) return refuse("wrong user name or password");
    s.actor = "user:" + u->name;
    s.role = u->role;
    owner = u->id;
  }
  if (!token) throttle.Succeeded(throttle_key);
  const std::string cookie = NewToken("");
  ALOFT_RETURN_IF_ERROR(ctx.store->Write([&](Tx& tx) -> Status {
    ALOFT_RETURN_IF_ERROR(tx.CreateSession(Sha256Hex(AsBytes(cookie)), s, owner, now));
    ALOFT_ASSIGN_OR_RETURN(int64_t pruned, tx.PruneSessions(now));
    (void)pruned;
    return tx.Audit(s.actor, "session.create", s.actor,
                    DumpJson(json({{"address", req.remote_address}})), now);
  }));
  Response r = JsonResponse(201, SessionJson(SessionCaller(s), s.expires_ms));
  r.headers.Add("Set-Cookie", SessionCookie(req, cookie, ctx.config.session_ttl_s));
  r.headers.Set("Cache-Control", "no-store");
  return r;
}

Result<Response> CreateUser(Context& ctx, Request& req, Caller& c) {
  ALOFT_ASSIGN_OR_RETURN(json body, ParseBody(req, false));
  ALOFT_RETURN_IF_ERROR(OnlyFields(body, {"name", "role", "password"}));
  User u;
  ALOFT_ASSIGN_OR_RETURN(u.name, ReqString(body, "name"));
  ALOFT_RETURN_IF_ERROR(CheckName("user name", u.name));
  ALOFT_ASSIGN_OR_RETURN(std::string role, ReqString(body, "role"));
  ALOFT_ASSIGN_OR_RETURN(u.role, ParseRole(role));
  ALOFT_ASSIGN_OR_RETURN(std::string password, ReqString(body, "password"));
  ALOFT_RETURN_IF_ERROR(CheckPassword(password));
  ALOFT_ASSIGN_OR_RETURN(u.password_hash,
                         WithHashing([&] { return crypto::HashPassword(password); }));
  u.created_ms = ctx.Now();
  u.created_by = c.actor;
  ALOFT_RETURN_IF_ERROR(ctx.store->Write([&](Tx& tx) -> Status {
    ALOFT_ASSIGN_OR_RETURN(u, tx.CreateUser(u));
    return tx.Audit(c.actor, "user.create", u.name, DumpJson(json({{"role", role}})), ctx.Now());
  }));
  return JsonResponse(201, UserJson(u));
}

Result<Response> ChangeUser(Context& ctx, Request& req, Caller& c) {
  ALOFT_ASSIGN_OR_RETURN(json body, ParseBody(req, false));
  ALOFT_RETURN_IF_ERROR(OnlyFields(body, {"role", "password"}));
  ALOFT_ASSIGN_OR_RETURN(auto role_name, OptString(body, "role"));
  ALOFT_ASSIGN_OR_RETURN(auto password, OptString(body, "password"));
  if (!role_name && !password) return Invalid("give 'role', 'password' or both");
  std::optional<Role> role;
  if (role_name) {
    ALOFT_ASSIGN_OR_RETURN(role, ParseRole(*role_name));
  }
  std::optional<std::string> hash;
  if (password) {
    ALOFT_RETURN_IF_ERROR(CheckPassword(*password));
    ALOFT_ASSIGN_OR_RETURN(hash, WithHashing([&] { return crypto::HashPassword(*password); }));
  }
  const std::string& name = req.params["name"];
  ALOFT_RETURN_IF_ERROR(ctx.store->Write([&](Tx& tx) -> Status {
    ALOFT_RETURN_IF_ERROR(tx.ChangeUser(name, role, hash));
    json details = json::object();
    if (role_name) details["role"] = *role_name;
    if (password) details["password"] = "changed";
    return tx.Audit(c.actor, "user.change", name, DumpJson(details), ctx.Now());
  }));
  ctx.auth->Forget();  // its sessions ended
  std::optional<User> u;
  ALOFT_RETURN_IF_ERROR(ctx.store->Read([&](Tx& tx) -> Status {
    ALOFT_ASSIGN_OR_RETURN(u, tx.FindUser(name));
    return OkStatus();
  }));
  if (!u) return Error(Code::kNotFound, "user '" + name + "' not found");
  return JsonResponse(200, UserJson(*u));
}

}  // namespace

void AddSessionRoutes(RouteTable& routes, Context& ctx) {
  using A = Access;
  using B = BodyKind;
  auto throttle = std::make_shared<SignInThrottle>();
  routes.Add("POST", "/api/v1/session", A::kPublic, B::kJson,
             [&ctx, throttle](Request& r, Caller&) { return SignIn(ctx, *throttle, r); });
  routes.Add("GET", "/api/v1/session", A::kViewer, B::kNone,
             [](Request&, Caller& c) -> Result<Response> {
               Response r = JsonResponse(200, SessionJson(c, std::nullopt));
               r.headers.Set("Cache-Control", "no-store");
               return r;
             });
  routes.Add("DELETE", "/api/v1/session", A::kViewer, B::kNone,
             [&ctx](Request& r, Caller& c) -> Result<Response> {
               if (c.session) {
                 const std::string cookie(CookieValue(r, kSessionCookie));
                 ALOFT_RETURN_IF_ERROR(ctx.store->Write([&](Tx& tx) -> Status {
                   ALOFT_RETURN_IF_ERROR(tx.DeleteSession(Sha256Hex(AsBytes(cookie))));
                   return tx.Audit(c.actor, "session.delete", c.actor, "{}", ctx.Now());
                 }));
                 ctx.auth->Forget();
               }
               Response out = NoContent();
               out.headers.Add("Set-Cookie", SessionCookie(r, "", 0));
               return out;
             });

  routes.Add("GET", "/api/v1/users", A::kAdmin, B::kNone, [&ctx](Request&, Caller&) {
    return ctx.ReadJson([](Tx& tx) -> Result<json> {
      ALOFT_ASSIGN_OR_RETURN(auto list, tx.ListUsers());
      json out = json::array();
      for (const auto& u : list) out.push_back(UserJson(u));
      return out;
    });
  });
  routes.Add("POST", "/api/v1/users", A::kAdmin, B::kJson,
             [&ctx](Request& r, Caller& c) { return CreateUser(ctx, r, c); });
  routes.Add("PATCH", "/api/v1/users/{name}", A::kAdmin, B::kJson,
             [&ctx](Request& r, Caller& c) { return ChangeUser(ctx, r, c); });
  routes.Add("DELETE", "/api/v1/users/{name}", A::kAdmin, B::kNone,
             [&ctx](Request& r, Caller& c) -> Result<Response> {
               ALOFT_RETURN_IF_ERROR(ctx.store->Write([&](Tx& tx) -> Status {
                 ALOFT_RETURN_IF_ERROR(tx.DeleteUser(r.params["name"]));
                 return tx.Audit(c.actor, "user.delete", r.params["name"], "{}", ctx.Now());
               }));
               ctx.auth->Forget();
               return NoContent();
             });
}

}  // namespace aloft::server
