// API tokens (/api/v1/tokens) and registration tokens; the first admin token.
#include <algorithm>
#include <optional>
#include <vector>

#include "core/canonical_json.h"
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

int64_t AdminCount(const std::vector<ApiToken>& list) {
  return std::count_if(list.begin(), list.end(),
                       [](const ApiToken& t) { return t.role == Role::kAdmin; });
}

}  // namespace

void AddTokenRoutes(RouteTable& routes, Context& ctx) {
  using A = Access;
  using B = BodyKind;
  routes.Add("POST", "/api/v1/device-types/{type}/registration-tokens", A::kAdmin, B::kNone,
             [&ctx](Request& r, Caller& c) -> Result<Response> {
               std::string token = NewToken("aloft_r_");
               ALOFT_RETURN_IF_ERROR(ctx.store->Write([&](Tx& tx) -> Status {
                 ALOFT_RETURN_IF_ERROR(tx.CreateRegistrationToken(
                     r.params["type"], Sha256Hex(AsBytes(token)), c.actor, ctx.Now()));
                 return tx.Audit(c.actor, "registration-token.create", r.params["type"], "{}",
                                 ctx.Now());
               }));
               return JsonResponse(201, {{"device_type", r.params["type"]}, {"token", token}});
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
