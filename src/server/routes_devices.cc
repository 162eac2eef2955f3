// The device registry: /api/v1/devices, with each device's actions and logs.
#include "core/canonical_json.h"
#include "core/encoding.h"
#include "core/hash.h"
#include "mqtt/client.h"
#include "server/app.h"
#include "server/auth.h"
#include "server/routes.h"
#include "server/views.h"

namespace aloft::server {

namespace {

Result<Response> CreateDevice(Context& ctx, Request& req, Caller& c) {
  ALOFT_ASSIGN_OR_RETURN(json body, ParseBody(req, false));
  Device d;
  ALOFT_ASSIGN_OR_RETURN(d.name, ReqString(body, "name"));
  ALOFT_RETURN_IF_ERROR(CheckName("device", d.name));
  ALOFT_ASSIGN_OR_RETURN(d.device_type, ReqString(body, "device_type"));
  ALOFT_ASSIGN_OR_RETURN(d.group, OptString(body, "group"));
  if (d.group) ALOFT_RETURN_IF_ERROR(CheckName("group", *d.group));
  ALOFT_ASSIGN_OR_RETURN(auto tags, OptStringList(body, "tags"));
  if (tags) {
    for (const auto& t : *tags) ALOFT_RETURN_IF_ERROR(CheckName("tag", t));
    d.tags = *tags;
  }
  ALOFT_ASSIGN_OR_RETURN(auto attrs, OptAttributes(body));
  if (attrs) d.attributes = DumpJson(*attrs);
  ALOFT_ASSIGN_OR_RETURN(d.gateway, OptString(body, "gateway"));
  d.created_ms = ctx.Now();
  std::string token = NewToken("aloft_d_");
  const std::string mqtt_secret = mqtt::PasswordHash(token);
  json out;
  ALOFT_RETURN_IF_ERROR(ctx.store->Write([&](Tx& tx) -> Status {
    ALOFT_ASSIGN_OR_RETURN(Device created,
                           tx.CreateDevice(d, Sha256Hex(AsBytes(token)), mqtt_secret));
    out = ToJson(created);
    return tx.Audit(c.actor, "device.create", d.name,
                    DumpJson(json({{"device_type", d.device_type}})), ctx.Now());
  }));
  ctx.CredentialsChanged();
  out["token"] = token;
  return JsonResponse(201, out);
}

Result<Response> PatchDevice(Context& ctx, Request& req, Caller& c) {
  ALOFT_ASSIGN_OR_RETURN(json body, ParseBody(req, false));
  for (const auto& [k, v] : body.items()) {
    if (k != "group" && k != "tags" && k != "attributes" && k != "gateway") {
      return Invalid("field '" + k +
                     "' cannot be changed (group, tags, attributes and gateway can)");
    }
  }
  ALOFT_ASSIGN_OR_RETURN(auto group, OptString(body, "group"));
  if (group) ALOFT_RETURN_IF_ERROR(CheckName("group", *group));
  ALOFT_ASSIGN_OR_RETURN(auto tags, OptStringList(body, "tags"));
  if (tags) {
    for (const auto& t : *tags) ALOFT_RETURN_IF_ERROR(CheckName("tag", t));
  }
  ALOFT_ASSIGN_OR_RETURN(auto attrs, OptAttributes(body));
  ALOFT_ASSIGN_OR_RETURN(auto gateway, OptString(body, "gateway"));
  json out;
  ALOFT_RETURN_IF_ERROR(ctx.store->Write([&](Tx& tx) -> Status {
    ALOFT_ASSIGN_OR_RETURN(Device d, tx.GetDevice(req.params["device"]));
    if (body.contains("group")) d.group = group;
    if (body.contains("gateway")) d.gateway = gateway;
    if (tags) d.tags = *tags;
    if (attrs) d.attributes = DumpJson(*attrs);
    ALOFT_RETURN_IF_ERROR(tx.UpdateDevice(d));
    ALOFT_RETURN_IF_ERROR(tx.Audit(c.actor, "device.update", d.name, DumpJson(body), ctx.Now()));
    ALOFT_ASSIGN_OR_RETURN(d, tx.GetDevice(d.name));
    out = ToJson(d);
    return OkStatus();
  }));
  ctx.auth->Forget();
  return JsonResponse(200, out);
}

}  // namespace

void AddDeviceRoutes(RouteTable& routes, Context& ctx) {
  using A = Access;
  using B = BodyKind;
  routes.Add("GET", "/api/v1/devices", A::kViewer, B::kNone,
             [&ctx](Request& r, Caller&) -> Result<Response> {
               DeviceFilter f;
               f.device_type = QueryStr(r, "type");
               f.group = QueryStr(r, "group");
               f.tag = QueryStr(r, "tag");
               ALOFT_ASSIGN_OR_RETURN(f.limit, QueryInt(r, "limit", 100, 1000));
               ALOFT_ASSIGN_OR_RETURN(f.offset, QueryInt(r, "offset", 0, INT64_MAX));
               return ctx.ReadJson([&](Tx& tx) -> Result<json> {
                 ALOFT_ASSIGN_OR_RETURN(auto list, tx.ListDevices(f));
                 ALOFT_ASSIGN_OR_RETURN(int64_t total, tx.CountDevices(f));
                 return json{{"total", total}, {"items", JsonList(list)}};
               });
             });
  routes.Add("POST", "/api/v1/devices", A::kAdmin, B::kJson,
             [&ctx](Request& r, Caller& c) { return CreateDevice(ctx, r, c); });
  routes.Add("GET", "/api/v1/devices/{device}", A::kViewer, B::kNone, [&ctx](Request& r, Caller&) {
    return ctx.ReadJson([&](Tx& tx) -> Result<json> {
      ALOFT_ASSIGN_OR_RETURN(auto d, tx.GetDevice(r.params["device"]));
      json out = ToJson(d);
      ALOFT_ASSIGN_OR_RETURN(auto open, tx.OpenActionFor(d.id));
      out["action"] = open ? ToJson(*open) : json(nullptr);
      return out;
    });
  });
  routes.Add("PATCH", "/api/v1/devices/{device}", A::kAdmin, B::kJson,
             [&ctx](Request& r, Caller& c) { return PatchDevice(ctx, r, c); });
  routes.Add("DELETE", "/api/v1/devices/{device}", A::kAdmin, B::kNone,
             [&ctx](Request& r, Caller& c) -> Result<Response> {
               ALOFT_RETURN_IF_ERROR(ctx.store->Write([&](Tx& tx) -> Status {
                 ALOFT_RETURN_IF_ERROR(tx.DeleteDevice(r.params["device"]));
                 return tx.Audit(c.actor, "device.delete", r.params["device"], "{}", ctx.Now());
               }));
               ctx.auth->Forget();
               ctx.CredentialsChanged();
               return NoContent();
             });
  routes.Add("GET", "/api/v1/devices/{device}/actions", A::kViewer, B::kNone,
             [&ctx](Request& r, Caller&) -> Result<Response> {
               ActionFilter f;
               f.device = r.params["device"];
               ALOFT_ASSIGN_OR_RETURN(f.limit, QueryInt(r, "limit", 100, 1000));
               return ctx.ReadJson([&](Tx& tx) -> Result<json> {
                 ALOFT_RETURN_IF_ERROR(tx.GetDevice(r.params["device"]));
                 ALOFT_ASSIGN_OR_RETURN(auto list, tx.ListActions(f));
                 return JsonList(list);
               });
             });
  routes.Add("GET", "/api/v1/devices/{device}/logs", A::kViewer, B::kNone,
             [&ctx](Request& r, Caller&) -> Result<Response> {
               ALOFT_ASSIGN_OR_RETURN(int64_t limit, QueryInt(r, "limit", 20, 1000));
               // At most the device's quota of logs (max_log_bytes_per_device), written as text
               // as it is read: no JSON document of them all besides.
               std::string out = "[";
               ALOFT_RETURN_IF_ERROR(ctx.store->Read([&](Tx& tx) -> Status {
                 ALOFT_ASSIGN_OR_RETURN(auto d, tx.GetDevice(r.params["device"]));
                 ALOFT_ASSIGN_OR_RETURN(auto logs, tx.ListLogs(d.id, limit));
                 for (const auto& l : logs) {
                   out.append(out.size() > 1 ? ",{\"id\":" : "{\"id\":")
                       .append(std::to_string(l.id))
                       .append(",\"action\":")
                       .append(l.action_id ? std::to_string(*l.action_id) : "null")
                       .append(",\"at\":\"")
                       .append(FormatRfc3339Ms(l.at_ms))
                       .append("\",\"content\":")
                       .append(http::JsonQuote(l.content))
                       .append("}");
                 }
                 return OkStatus();
               }));
               return Response::Json(200, out + "]");
             });
}

}  // namespace aloft::server
