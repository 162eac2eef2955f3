// Device types and their modules: /api/v1/device-types.
#include "core/canonical_json.h"
#include "server/routes.h"
#include "server/views.h"

namespace aloft::server {

namespace {

Result<Response> CreateDeviceType(Context& ctx, Request& req, Caller& c) {
  ALOFT_ASSIGN_OR_RETURN(json body, ParseBody(req, false));
  ALOFT_ASSIGN_OR_RETURN(std::string name, ReqString(body, "name"));
  ALOFT_RETURN_IF_ERROR(CheckName("device type", name));
  ALOFT_ASSIGN_OR_RETURN(auto description, OptString(body, "description"));
  ALOFT_ASSIGN_OR_RETURN(auto modules, OptStringList(body, "modules"));
  if (modules) {
    for (const auto& m : *modules) ALOFT_RETURN_IF_ERROR(CheckName("module", m));
  }
  json out;
  ALOFT_RETURN_IF_ERROR(ctx.store->Write([&](Tx& tx) -> Status {
    ALOFT_ASSIGN_OR_RETURN(DeviceType t,
                           tx.CreateDeviceType(name, description.value_or(""), ctx.Now()));
    if (modules) {
      for (const auto& m : *modules) {
        if (m != "main") ALOFT_RETURN_IF_ERROR(tx.AddModule(name, m));
      }
    }
    ALOFT_RETURN_IF_ERROR(tx.Audit(c.actor, "device-type.create", name, DumpJson(body), ctx.Now()));
    ALOFT_ASSIGN_OR_RETURN(t, tx.GetDeviceType(name));
    out = ToJson(t);
    return OkStatus();
  }));
  return JsonResponse(201, out);
}

}  // namespace

void AddDeviceTypeRoutes(RouteTable& routes, Context& ctx) {
  using A = Access;
  using B = BodyKind;
  routes.Add("GET", "/api/v1/device-types", A::kViewer, B::kNone, [&ctx](Request&, Caller&) {
    return ctx.ReadJson([](Tx& tx) -> Result<json> {
      ALOFT_ASSIGN_OR_RETURN(auto types, tx.ListDeviceTypes());
      return JsonList(types);
    });
  });
  routes.Add("POST", "/api/v1/device-types", A::kAdmin, B::kJson,
             [&ctx](Request& r, Caller& c) { return CreateDeviceType(ctx, r, c); });
  routes.Add("GET", "/api/v1/device-types/{type}", A::kViewer, B::kNone,
             [&ctx](Request& r, Caller&) {
               return ctx.ReadJson([&](Tx& tx) -> Result<json> {
                 ALOFT_ASSIGN_OR_RETURN(auto t, tx.GetDeviceType(r.params["type"]));
                 return ToJson(t);
               });
             });
  routes.Add("DELETE", "/api/v1/device-types/{type}", A::kAdmin, B::kNone,
             [&ctx](Request& r, Caller& c) -> Result<Response> {
               ALOFT_RETURN_IF_ERROR(ctx.store->Write([&](Tx& tx) -> Status {
                 ALOFT_RETURN_IF_ERROR(tx.DeleteDeviceType(r.params["type"]));
                 return tx.Audit(c.actor, "device-type.delete", r.params["type"], "{}", ctx.Now());
               }));
               return NoContent();
             });
  routes.Add("POST", "/api/v1/device-types/{type}/modules", A::kAdmin, B::kJson,
             [&ctx](Request& r, Caller& c) -> Result<Response> {
               ALOFT_ASSIGN_OR_RETURN(json body, ParseBody(r, false));
               ALOFT_ASSIGN_OR_RETURN(std::string name, ReqString(body, "name"));
               ALOFT_RETURN_IF_ERROR(CheckName("module", name));
               json out;
               ALOFT_RETURN_IF_ERROR(ctx.store->Write([&](Tx& tx) -> Status {
                 ALOFT_RETURN_IF_ERROR(tx.AddModule(r.params["type"], name));
                 ALOFT_RETURN_IF_ERROR(tx.Audit(c.actor, "module.create",
                                                r.params["type"] + "/" + name, "{}", ctx.Now()));
                 ALOFT_ASSIGN_OR_RETURN(auto t, tx.GetDeviceType(r.params["type"]));
                 out = ToJson(t);
                 return OkStatus();
               }));
               return JsonResponse(201, out);
             });
  routes.Add("DELETE", "/api/v1/device-types/{type}/modules/{module}", A::kAdmin, B::kNone,
             [&ctx](Request& r, Caller& c) -> Result<Response> {
               ALOFT_RETURN_IF_ERROR(ctx.store->Write([&](Tx& tx) -> Status {
                 ALOFT_RETURN_IF_ERROR(tx.DeleteModule(r.params["type"], r.params["module"]));
                 return tx.Audit(c.actor, "module.delete",
                                 r.params["type"] + "/" + r.params["module"], "{}", ctx.Now());
               }));
               return NoContent();
             });
}

}  // namespace aloft::server
