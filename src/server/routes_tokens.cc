// API tokens (/api/v1/tokens) and registration tokens; the first admin token.
#include <algorithm>
#include <optional>
#include <vector>

#include "core/canonical_json.h"
#include "core/clock.h"
#include "core/encoding.h"
#include "core/file.h"
#include "core/hash.h"
#include "server/app.h"
#include "server/auth.h"
#include "server/routes.h"

namespace aloft::server {

namespace {

// Serializes changes to the API tokens across servers: uniqueness of names, the last admin.
constexpr int64_t kTokenLock = 0x416c6f6674000001;  // "Aloft" + 1

// How long a registration token registers devices unless its creator says otherwise.
constexpr const char* kDefaultRegistrationLifetime = "30d";

int64_t AdminCount(const std::vector<ApiToken>& list) {
  return std::count_if(list.begin(), list.end(),
                       [](const ApiToken& t) { return t.role == Role::kAdmin; });
}

json RegistrationTokenJson(const RegistrationToken& t, int64_t now) {
  const std::string_view refusal = t.Refusal(now);
  return {{"id", t.id},
          {"name", t.name},
          {"device_type", t.device_type},
          {"created", FormatRfc3339Ms(t.created_ms)},
          {"created_by", t.created_by},
          {"expires", t.expires_ms ? json(FormatRfc3339Ms(*t.expires_ms)) : json(nullptr)},
          {"max_uses", t.max_uses ? json(*t.max_uses) : json(nullptr)},
          {"uses", t.uses},
          {"state", refusal.empty() ? "active" : std::string(refusal)}};
}

// "30d", "12h", "90m", "45s": a lifetime of at least a minute and at most ten years.
Result<int64_t> ParseLifetimeMs(const std::string& text) {
  static constexpr std::pair<char, int64_t> kUnits[] = {
      {'s', 1000}, {'m', 60'000}, {'h', 3'600'000}, {'d', 86'400'000}};
  auto refuse = [&] {
    return Invalid(
        "field 'expires_in' must be a duration such as 30d, 12h or 90m (from 1m to "
        "3650d), or \"never\"; got '" +
        text + "'");
  };
  if (text.size() < 2 || text.size() > 8) return refuse();
  auto n = ParseInteger(std::string_view(text).substr(0, text.size() - 1));
  if (!n) return refuse();
  for (auto [unit, ms] : kUnits) {
    if (text.back() != unit) continue;
    if (*n > 3650LL * 86'400'000 / ms || *n * ms < 60'000) return refuse();
    return *n * ms;
  }
  return refuse();
}

Result<Response> CreateRegistrationToken(Context& ctx, Request& req, Caller& c) {
  ALOFT_ASSIGN_OR_RETURN(json body, ParseBody(req, true));
  if (body.is_null()) body = json::object();
  for (const auto& [k, v] : body.items()) {
    if (k != "name" && k != "expires_in" && k != "max_uses") {
      return Invalid("unknown field '" + k + "' (known: name, expires_in, max_uses)");
    }
  }
  RegistrationToken t;
  t.created_ms = ctx.Now();
  t.created_by = c.actor;
  ALOFT_ASSIGN_OR_RETURN(auto name, OptString(body, "name"));
  if (name) {
    ALOFT_RETURN_IF_ERROR(CheckName("registration token name", *name));
    t.name = *name;
  }
  ALOFT_ASSIGN_OR_RETURN(auto expires_in, OptString(body, "expires_in"));
  const std::string lifetime = expires_in.value_or(kDefaultRegistrationLifetime);
  if (lifetime != "never") {
    ALOFT_ASSIGN_OR_RETURN(int64_t ms, ParseLifetimeMs(lifetime));
    t.expires_ms = t.created_ms + ms;
  }
  if (auto it = body.find("max_uses"); it != body.end() && !it->is_null()) {
    if (!it->is_number_integer() || it->get<int64_t>() < 1) {
      return Invalid("field 'max_uses' must be a positive integer (or null: unlimited)");
    }
    t.max_uses = it->get<int64_t>();
  }
  const std::string token = NewToken("aloft_r_");
  ALOFT_RETURN_IF_ERROR(ctx.store->Write([&](Tx& tx) -> Status {
    ALOFT_ASSIGN_OR_RETURN(
        t, tx.CreateRegistrationToken(req.params["type"], Sha256Hex(AsBytes(token)), t));
    return tx.Audit(c.actor, "registration-token.create", req.params["type"],
                    DumpJson(RegistrationTokenJson(t, t.created_ms)), ctx.Now());
  }));
  json out = RegistrationTokenJson(t, t.created_ms);
  out["token"] = token;
  return JsonResponse(201, out);
}

}  // namespace

void AddTokenRoutes(RouteTable& routes, Context& ctx) {
  using A = Access;
  using B = BodyKind;
  routes.Add("POST", "/api/v1/device-types/{type}/registration-tokens", A::kAdmin, B::kJson,
             [&ctx](Request& r, Caller& c) -> Result<Response> {
               return CreateRegistrationToken(ctx, r, c);
             });
  routes.Add(
      "GET", "/api/v1/registration-tokens", A::kAdmin, B::kNone, [&ctx](Request& r, Caller&) {
        const int64_t now = ctx.Now();
        return ctx.ReadJson([&](Tx& tx) -> Result<json> {
          ALOFT_ASSIGN_OR_RETURN(auto list, tx.ListRegistrationTokens(QueryStr(r, "device_type")));
          json out = json::array();
          for (const auto& t : list) out.push_back(RegistrationTokenJson(t, now));
          return out;
        });
      });
  routes.Add("DELETE", "/api/v1/registration-tokens/{id}", A::kAdmin, B::kNone,
             [&ctx](Request& r, Caller& c) -> Result<Response> {
               ALOFT_ASSIGN_OR_RETURN(int64_t id, PathId(r, "registration token"));
               ALOFT_RETURN_IF_ERROR(ctx.store->Write([&](Tx& tx) -> Status {
                 ALOFT_RETURN_IF_ERROR(tx.DeleteRegistrationToken(id));
                 return tx.Audit(c.actor, "registration-token.revoke", std::to_string(id), "{}",
                                 ctx.Now());
               }));
               return NoContent();
             });

  routes.Add("GET", "/api/v1/tokens", A::kAdmin, B::kNone, [&ctx](Request&, Caller&) {
    return ctx.ReadJson([](Tx& tx) -> Result<json> {
      ALOFT_ASSIGN_OR_RETURN(auto list, tx.ListApiTokens());
      json out = json::array();
      for (const auto& t : list) {
        out.push_back({{"id", t.id},
                       {"name", t.name},
                       {"role", RoleName(t.role)},
                       {"created", FormatRfc3339Ms(t.created_ms)}});
      }
      return out;
    });
  });
  routes.Add("POST", "/api/v1/tokens", A::kAdmin, B::kJson,
             [&ctx](Request& r, Caller& c) -> Result<Response> {
               ALOFT_ASSIGN_OR_RETURN(json body, ParseBody(r, false));
               ALOFT_ASSIGN_OR_RETURN(std::string name, ReqString(body, "name"));
               ALOFT_RETURN_IF_ERROR(CheckName("token name", name));
               ALOFT_ASSIGN_OR_RETURN(std::string role_name, ReqString(body, "role"));
               ALOFT_ASSIGN_OR_RETURN(Role role, ParseRole(role_name));
               std::string token = NewToken("aloft_a_");
               ApiToken t;
               ALOFT_RETURN_IF_ERROR(ctx.store->Write([&](Tx& tx) -> Status {
                 ALOFT_RETURN_IF_ERROR(tx.Serialize(kTokenLock));
                 ALOFT_ASSIGN_OR_RETURN(auto list, tx.ListApiTokens());
                 for (const auto& other : list) {
                   if (other.name == name) {
                     // The audit names actors by token name: two of one name would be one.
                     return Error(Code::kAlreadyExists,
                                  "an API token named '" + name + "' exists (id " +
                                      std::to_string(other.id) + "); token names are unique");
                   }
                 }
                 ALOFT_ASSIGN_OR_RETURN(t, tx.CreateApiToken(name, role, Sha256Hex(AsBytes(token)),
                                                             c.actor, ctx.Now()));
                 return tx.Audit(c.actor, "token.create", name,
                                 DumpJson(json({{"role", role_name}})), ctx.Now());
               }));
               return JsonResponse(
                   201, {{"id", t.id}, {"name", name}, {"role", role_name}, {"token", token}});
             });
  routes.Add("DELETE", "/api/v1/tokens/{id}", A::kAdmin, B::kNone,
             [&ctx](Request& r, Caller& c) -> Result<Response> {
               ALOFT_ASSIGN_OR_RETURN(int64_t id, PathId(r, "token"));
               ALOFT_RETURN_IF_ERROR(ctx.store->Write([&](Tx& tx) -> Status {
                 ALOFT_RETURN_IF_ERROR(tx.Serialize(kTokenLock));
                 ALOFT_ASSIGN_OR_RETURN(auto list, tx.ListApiTokens());
                 auto it = std::find_if(list.begin(), list.end(),
                                        [&](const ApiToken& t) { return t.id == id; });
                 if (it != list.end() && it->role == Role::kAdmin && AdminCount(list) == 1) {
                   return Error(Code::kAlreadyExists,
                                "token '" + it->name +
                                    "' is the last admin token; create another admin token "
                                    "before deleting it (without one, nobody could manage "
                                    "this server)");
                 }
                 ALOFT_RETURN_IF_ERROR(tx.DeleteApiToken(id));
                 return tx.Audit(c.actor, "token.delete", std::to_string(id), "{}", ctx.Now());
               }));
               ctx.auth->Forget();
               return NoContent();
             });
}

Status EnsureAdminToken(Context& ctx) {
  // Several servers may start at once on one database: the one whose transaction inserts the
  // admin token writes it to its data directory; the others find one and say nothing. A server
  // without any admin token (removed behind the API's back) gets one again the same way.
  std::string path = ctx.config.data_dir + "/admin.token";
  std::string token = NewToken("aloft_a_");
  std::optional<ApiToken> created;
  ALOFT_RETURN_IF_ERROR(ctx.store->Write([&](Tx& tx) -> Status {
    created.reset();
    ALOFT_RETURN_IF_ERROR(tx.Serialize(kTokenLock));
    ALOFT_ASSIGN_OR_RETURN(auto list, tx.ListApiTokens());
    if (AdminCount(list) > 0) return OkStatus();
    std::string name = "admin";
    for (int n = 2;
         std::any_of(list.begin(), list.end(), [&](const ApiToken& t) { return t.name == name; });
         ++n) {
      name = "admin-" + std::to_string(n);
    }
    ALOFT_ASSIGN_OR_RETURN(created, tx.CreateApiToken(name, Role::kAdmin, Sha256Hex(AsBytes(token)),
                                                      "aloftd", ctx.Now()));
    return tx.Audit("aloftd", "token.create", name, R"({"role":"admin"})", ctx.Now());
  }));
  if (!created) return OkStatus();
  Status written = WriteFileAtomic(path, token + "\n", 0600);
  if (!written.ok()) {
    // Without the file nobody could log in: take the token back so the next start retries.
    (void)ctx.store->Write([&](Tx& tx) { return tx.DeleteApiToken(created->id); });
    return std::move(written).error().WithContext("writing the admin token");
  }
  ctx.log << "aloftd: created the admin API token '" << created->name << "' in " << path
          << " (keep it secret; use it with `aloft server --token`)" << std::endl;
  return OkStatus();
}

}  // namespace aloft::server
