// API tokens (/api/v1/tokens) and registration tokens; the first admin token.
#include "core/canonical_json.h"
#include "core/encoding.h"
#include "core/file.h"
#include "core/hash.h"
#include "server/app.h"
#include "server/auth.h"
#include "server/routes.h"

namespace aloft::server {

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
                 ALOFT_RETURN_IF_ERROR(tx.DeleteApiToken(id));
                 return tx.Audit(c.actor, "token.delete", std::to_string(id), "{}", ctx.Now());
               }));
               ctx.auth->Forget();
               return NoContent();
             });
}

Status EnsureAdminToken(Context& ctx) {
  constexpr int64_t kFirstTokenLock = 0x416c6f6674000001;  // "Aloft" + 1
  // Several servers may start at once on one database: the one whose transaction inserts the
  // first token writes it to its data directory; the others find a token and say nothing.
  std::string path = ctx.config.data_dir + "/admin.token";
  std::string token = NewToken("aloft_a_");
  bool created = false;
  ALOFT_RETURN_IF_ERROR(ctx.store->Write([&](Tx& tx) -> Status {
    created = false;
    ALOFT_RETURN_IF_ERROR(tx.Serialize(kFirstTokenLock));
    ALOFT_ASSIGN_OR_RETURN(int64_t count, tx.CountApiTokens());
    if (count > 0) return OkStatus();
    ALOFT_ASSIGN_OR_RETURN(
        ApiToken t,
        tx.CreateApiToken("admin", Role::kAdmin, Sha256Hex(AsBytes(token)), "aloftd", ctx.Now()));
    created = true;
    return tx.Audit("aloftd", "token.create", t.name, R"({"role":"admin"})", ctx.Now());
  }));
  if (!created) return OkStatus();
  Status written = WriteFileAtomic(path, token + "\n", 0600);
  if (!written.ok()) {
    // Without the file nobody could log in: take the token back so the next start retries.
    (void)ctx.store->Write([&](Tx& tx) -> Status {
      ALOFT_ASSIGN_OR_RETURN(auto list, tx.ListApiTokens());
      for (const auto& t : list) ALOFT_RETURN_IF_ERROR(tx.DeleteApiToken(t.id));
      return OkStatus();
    });
    return std::move(written).error().WithContext("writing the admin token");
  }
  ctx.log << "aloftd: created the admin API token in " << path
          << " (keep it secret; use it with `aloft server --token`)" << std::endl;
  return OkStatus();
}

}  // namespace aloft::server
