// The device registry: /api/v1/devices, with each device's actions and logs.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

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

namespace {

// A device's logs, newest first: up to 16 MiB (max_log_bytes_per_device) of text. The answer is
// written page by page to an unnamed file and sent from there, so memory holds one page of logs
// whatever the limit, and the HTTP thread is free while a slow client reads.
Result<Response> ListLogs(Context& ctx, const std::string& device, int64_t limit) {
  constexpr int64_t kPage = 8;  // logs per query: at most 8 MiB (max_log_bytes)
  int fd = ::open(ctx.artifacts.incoming_dir().c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR)) {
    // A file system without unnamed files: a named one, unlinked at once.
    std::string path = ctx.artifacts.incoming_dir() + "/logs-XXXXXX";
    fd = ::mkostemp(path.data(), O_CLOEXEC);
    if (fd >= 0) ::unlink(path.c_str());
  }
  if (fd < 0) {
    return Error(errno == EMFILE || errno == ENFILE ? Code::kUnavailable : Code::kIo,
                 "listing logs: a spool file in " + ctx.artifacts.incoming_dir() + ": " +
                     std::strerror(errno));
  }
  auto spool = std::make_shared<http::SharedFd>(fd);
  uint64_t size = 0;
  auto write = [&](const std::string& text) -> Status {
    for (size_t done = 0; done < text.size();) {
      ssize_t n = ::write(fd, text.data() + done, text.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return Error(Code::kIo, std::string("listing logs: ") + std::strerror(errno));
      done += static_cast<size_t>(n);
    }
    size += text.size();
    return OkStatus();
  };
  ALOFT_RETURN_IF_ERROR(write("["));
  ALOFT_RETURN_IF_ERROR(ctx.store->Read([&](Tx& tx) -> Status {
    ALOFT_ASSIGN_OR_RETURN(auto d, tx.GetDevice(device));
    std::optional<int64_t> before;
    for (int64_t left = limit; left > 0;) {
      ALOFT_ASSIGN_OR_RETURN(auto page, tx.ListLogs(d.id, std::min(left, kPage), before));
      std::string text;
      for (const auto& l : page) {
        text.append(size > 1 || !text.empty() ? ",{\"id\":" : "{\"id\":")
            .append(std::to_string(l.id))
            .append(",\"action\":")
            .append(l.action_id ? std::to_string(*l.action_id) : "null")
            .append(",\"at\":\"")
            .append(FormatRfc3339Ms(l.at_ms))
            .append("\",\"content\":")
            .append(http::JsonQuote(l.content))
            .append("}");
        before = l.id;
      }
      ALOFT_RETURN_IF_ERROR(write(text));
      if (static_cast<int64_t>(page.size()) < std::min(left, kPage)) break;
      left -= static_cast<int64_t>(page.size());
    }
    return OkStatus();
  }));
  ALOFT_RETURN_IF_ERROR(write("]"));
  Response res;
  res.status = 200;
  res.headers.Set("Content-Type", "application/json");
  auto body = std::make_shared<http::FileBody>();
  body->file = std::move(spool);
  body->parts.push_back({"", 0, size, true});
  res.file = std::move(body);
  return res;
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
               f.name_prefix = QueryStr(r, "q");
               f.version = QueryStr(r, "version");
               f.module = QueryStr(r, "module");
               if (f.module && !f.version) {
                 return Invalid("query parameter 'module' needs 'version'");
               }
               f.attribute = QueryStr(r, "attribute");
               if (f.attribute) ALOFT_RETURN_IF_ERROR(CheckName("attribute", *f.attribute));
               f.state = QueryStr(r, "state");
               if (f.state && *f.state != "idle" && *f.state != "updating" &&
                   *f.state != "never-seen" && *f.state != "failing") {
                 return Invalid(
                     "query parameter 'state' must be idle, updating, never-seen or "
                     "failing, not '" +
                     *f.state + "'");
               }
               if (QueryStr(r, "seen_within_s")) {
                 ALOFT_ASSIGN_OR_RETURN(int64_t within,
                                        QueryInt(r, "seen_within_s", 0, 3650LL * 86400));
                 f.seen_after_ms = ctx.Now() - within * 1000;
               }
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
               // events=1: each action with the device's feedback (the dashboard's history).
               const auto events = QueryStr(r, "events");
               if (events && *events != "0" && *events != "1") {
                 return Invalid("query parameter 'events' must be 0 or 1");
               }
               return ctx.ReadJson([&](Tx& tx) -> Result<json> {
                 ALOFT_RETURN_IF_ERROR(tx.GetDevice(r.params["device"]));
                 ALOFT_ASSIGN_OR_RETURN(auto list, tx.ListActions(f));
                 if (events == "1") {
                   for (auto& a : list) {
                     ALOFT_ASSIGN_OR_RETURN(a, tx.GetAction(a.id));
                   }
                 }
                 return JsonList(list);
               });
             });
  routes.Add("GET", "/api/v1/devices/{device}/logs", A::kViewer, B::kNone,
             [&ctx](Request& r, Caller&) -> Result<Response> {
               ALOFT_ASSIGN_OR_RETURN(int64_t limit, QueryInt(r, "limit", 20, 1000));
               return ListLogs(ctx, r.params["device"], limit);
             });
}

}  // namespace aloft::server
