// The hawkBit DDI API (docs/ddi.md): what hawkBit clients such as SWUpdate's suricatta poll,
// download and report, mapped onto the native device API's actions.
#include "core/canonical_json.h"
#include "core/clock.h"
#include "crypto/key_wrap.h"
#include "server/auth.h"
#include "server/ddi.h"
#include "server/device_api.h"
#include "server/housekeeping.h"
#include "server/routes.h"

namespace aloft::server {

namespace {

// What DDI's maintenanceWindow says: nullopt without a window, else whether it is open.
std::optional<bool> ShownWindow(const RolloutEngine::InstallWindow& w) {
  return w.spec ? std::optional<bool>(w.open) : std::nullopt;
}

std::string DdiUrl(Context& ctx, const Request& req, const std::string& device) {
  return ctx.BaseUrl(req) + "/" + ctx.config.ddi_tenant + "/controller/v1/" +
         http::PercentEncode(device);
}

// Records that the calling device made contact (a DDI poll).
Status NoteContact(Context& ctx, Caller& c) {
  if (!c.device->last_seen_ms) {  // "never seen" ends at once; later contacts are written behind
    Device d = *c.device;
    d.last_seen_ms = ctx.Now();
    ALOFT_RETURN_IF_ERROR(ctx.store->Write([&](Tx& tx) {
      return tx.TouchDevices({{d.id, ctx.Now()}});
    }));
    if (!c.cache_key.empty()) ctx.auth->UpdateCachedDevice(c.cache_key, d);
    c.device = std::make_shared<const Device>(std::move(d));
  } else {
    ctx.contacts->TouchLater(c.device->id);
  }
  CountContact(ctx, c, c.device->id);
  return OkStatus();
}

Result<Response> DdiPoll(Context& ctx, Request& req, Caller& c) {
  ALOFT_RETURN_IF_ERROR(NoteContact(ctx, c));
  const Device& d = *c.device;
  std::optional<Action> action;
  std::optional<int64_t> installed;
  Release rel;
  ALOFT_RETURN_IF_ERROR(ctx.store->Read([&](Tx& tx) -> Status {
    ALOFT_ASSIGN_OR_RETURN(action, tx.OpenActionFor(d.id));
    if (action) {
      ALOFT_ASSIGN_OR_RETURN(rel, tx.GetReleaseById(action->release_id));
      return OkStatus();
    }
    ALOFT_ASSIGN_OR_RETURN(installed, tx.LastSucceededAction(d.id));
    return OkStatus();
  }));
  const std::string url = DdiUrl(ctx, req, d.name);
  json links = json::object();
  bool active = false;
  if (action && action->state == ActionState::kCanceling) {
    links["cancelAction"] = {{"href", url + "/cancelAction/" + std::to_string(action->id)}};
    active = true;
  } else if (action && rel.enabled) {
    ALOFT_ASSIGN_OR_RETURN(auto window, ctx.WindowOf(action->rollout_id));
    const ddi::Handling h = ddi::HandlingFor(action->mode, window.open);
    links["deploymentBase"] = {
        {"href", url + "/deploymentBase/" + std::to_string(action->id) +
                     "?c=" + ddi::ChangeTag(*action, h, ShownWindow(window))}};
    active = true;
  } else if (installed) {
    links["installedBase"] = {{"href", url + "/installedBase/" + std::to_string(*installed)}};
  }
  if (d.attributes.empty() || d.attributes == "{}") {
    links["configData"] = {{"href", url + "/configData"}};
  }
  const int64_t sleep = active ? ctx.config.poll_interval_active_s : ctx.config.poll_interval_s;
  return JsonResponse(
      200, {{"config", {{"polling", {{"sleep", FormatDuration(std::chrono::seconds(sleep))}}}}},
            {"_links", links}});
}

ddi::ArtifactLinks DdiLinks(Context& ctx, const Request& req, const Caller& c, const Release& rel) {
  const std::string path = DdiUrl(ctx, req, c.device->name) + "/softwaremodules/" +
                           std::to_string(rel.id) + "/artifacts/" +
                           http::PercentEncode(rel.filename);
  auto external = ctx.ExternalUrl(rel.artifact.sha256);
  return {external ? external->first : path, path + ".MD5SUM"};
}

// The release of the path's software module, when the device's open action installs it, or its
// last succeeded action installed it (installedBase links to that one's artifacts).
Result<Release> DdiModule(Context& ctx, Request& req, const Caller& c) {
  const std::string& text = req.params["module"];
  auto id = ParseId(text);
  if (!id) return Invalid("software module id '" + text + "' is not a number");
  Release rel;
  ALOFT_RETURN_IF_ERROR(ctx.store->Read([&](Tx& tx) -> Status {
    ALOFT_ASSIGN_OR_RETURN(auto action, tx.OpenActionFor(c.device->id));
    bool assigned = action && action->release_id == *id && action->state != ActionState::kCanceling;
    if (!assigned) {
      ALOFT_ASSIGN_OR_RETURN(auto installed, tx.LastSucceededAction(c.device->id));
      if (installed) {
        ALOFT_ASSIGN_OR_RETURN(Action done, tx.GetAction(*installed, /*with_events=*/false));
        assigned = done.release_id == *id;
      }
    }
    if (!assigned) {
      return Error(Code::kNotFound, "software module " + text + " is not assigned to device '" +
                                        c.device->name + "'");
    }
    ALOFT_ASSIGN_OR_RETURN(rel, tx.GetReleaseById(*id));
    return OkStatus();
  }));
  return rel;
}

Result<Response> DdiDeployment(Context& ctx, Request& req, Caller& c, bool installed) {
  ALOFT_ASSIGN_OR_RETURN(const int64_t id, PathId(req, "action"));
  int64_t history = 0;  // actionHistory: how many messages; negative: all
  if (auto h = QueryStr(req, "actionHistory")) {
    auto v = ParseInteger(*h);
    if (!v) return Invalid("query parameter 'actionHistory' must be an integer");
    history = *v;
  }
  Action a;
  Release rel;
  std::optional<json> encryption;
  ALOFT_RETURN_IF_ERROR(ctx.store->Read([&](Tx& tx) -> Status {
    ALOFT_ASSIGN_OR_RETURN(a, tx.GetAction(id));
    const std::string what = "action " + std::to_string(id) + " of device '" + c.device->name + "'";
    if (a.device_id != c.device->id) return Error(Code::kNotFound, what + " not found");
    if (installed && a.state != ActionState::kSucceeded) {
      return Error(Code::kNotFound,
                   what + " is " + std::string(ActionStateName(a.state)) + ", not installed");
    }
    if (!installed && (IsTerminal(a.state) || a.state == ActionState::kCanceling)) {
      return Error(Code::kNotFound, what + " is " + std::string(ActionStateName(a.state)) +
                                        "; it is no longer offered");
    }
    ALOFT_ASSIGN_OR_RETURN(rel, tx.GetReleaseById(a.release_id));
    if (ctx.content_keys && !installed) {
      ALOFT_ASSIGN_OR_RETURN(encryption, ctx.content_keys->ForDevice(tx, rel, c.device->id));
    }
    return OkStatus();
  }));
  ALOFT_ASSIGN_OR_RETURN(auto window,
                         ctx.WindowOf(installed ? std::optional<int64_t>() : a.rollout_id));
  return JsonResponse(
      200,
      ddi::DeploymentJson(a, rel, DdiLinks(ctx, req, c, rel), ddi::HandlingFor(a.mode, window.open),
                          ShownWindow(window), history ? ddi::HistoryJson(a, history) : json(),
                          encryption ? *encryption : json()));
}

Result<Response> DdiFeedback(Context& ctx, Request& req, Caller& c, bool cancel) {
  ALOFT_ASSIGN_OR_RETURN(const int64_t id, PathId(req, "action"));
  ALOFT_ASSIGN_OR_RETURN(json body, ParseBody(req, false));
  ALOFT_ASSIGN_OR_RETURN(ddi::Feedback f, ddi::ParseFeedback(body));
  bool window_open = true;  // asked only when the feedback could mean installing
  if (!cancel && ddi::MayMeanInstalling(f)) {
    auto allowed = CheckInstallAllowed(ctx, id);
    if (!allowed.ok() && allowed.error().code() != Code::kAlreadyExists) return allowed.error();
    window_open = allowed.ok();
  }
  std::optional<Device> updated;
  std::optional<std::string> gone;  // the action is closed: 410, as hawkBit answers
  ALOFT_RETURN_IF_ERROR(ctx.store->Write([&](Tx& tx) -> Status {
    ALOFT_ASSIGN_OR_RETURN(Action a, tx.GetAction(id));
    const std::string what = "action " + std::to_string(id);
    if (a.device_id != c.device->id) {
      return Error(Code::kNotFound, what + " not found for device '" + c.device->name + "'");
    }
    if (IsTerminal(a.state)) {
      gone = what + " is already " + std::string(ActionStateName(a.state)) +
             "; feedback is no longer accepted";
      return OkStatus();
    }
    std::optional<ActionState> next;
    if (cancel) {
      if (a.state != ActionState::kCanceling) {
        return Error(Code::kAlreadyExists, what + " is " + std::string(ActionStateName(a.state)) +
                                               ", not being canceled");
      }
      next = ddi::CancelTransition(f, ddi::StateBeforeCancel(a));
    } else {
      next = ddi::DeploymentTransition(f, a.state, window_open);
    }
    std::string status = next && *next != a.state ? std::string(ActionStateName(*next))
                                                  : (cancel ? "cancel-" : "") + f.execution;
    if (f.finished != "none") status += " (" + f.finished + ")";
    ALOFT_ASSIGN_OR_RETURN(updated,
                           RecordFeedback(ctx, tx, c, a, next.value_or(a.state), f.progress,
                                          {ctx.Now(), status, f.progress, f.code, f.details}));
    return OkStatus();
  }));
  if (gone) return Response::Error(410, "gone", *gone);
  if (updated && !c.cache_key.empty()) ctx.auth->UpdateCachedDevice(c.cache_key, *updated);
  return Empty(200);
}

Result<Response> DdiConfigData(Context& ctx, Request& req, Caller& c) {
  ALOFT_ASSIGN_OR_RETURN(json body, ParseBody(req, false));
  ALOFT_ASSIGN_OR_RETURN(auto mode_text, OptString(body, "mode"));
  const std::string mode = mode_text.value_or("merge");
  if (mode != "merge" && mode != "replace" && mode != "remove") {
    return Invalid("mode '" + mode + "' is not one of merge, replace, remove");
  }
  ALOFT_ASSIGN_OR_RETURN(auto data, OptAttributes(body, "data"));
  if (!data) return Invalid("missing field 'data' (an object of attribute: value)");
  // A device's encryption key (docs/encryption.md) is enrolled, not kept as an attribute.
  std::optional<std::string> encryption_key;
  if (auto it = data->find("aloft.encryption_key"); it != data->end()) {
    if (!it->is_string()) return Invalid("data.aloft.encryption_key must be a string");
    auto raw = crypto::ParseRecipientPublic(it->get<std::string>(), "data.aloft.encryption_key");
    if (!raw.ok()) return Invalid(raw.error().message());
    encryption_key = Base64Encode(*raw);
    data->erase(it);
  }
  Device d;
  ALOFT_RETURN_IF_ERROR(ctx.store->Write([&](Tx& tx) -> Status {
    ALOFT_ASSIGN_OR_RETURN(d, tx.GetDevice(c.device->name));
    if (encryption_key) ALOFT_RETURN_IF_ERROR(tx.PutDeviceKey(d.id, *encryption_key, ctx.Now()));
    json attrs = json::parse(d.attributes, nullptr, false);
    if (!attrs.is_object() || mode == "replace") attrs = json::object();
    for (const auto& [k, v] : data->items()) {
      if (mode == "remove") {
        attrs.erase(k);
      } else {
        attrs[k] = v;
      }
    }
    d.attributes = DumpJson(attrs);
    return tx.SetAttributes(d.id, d.attributes);
  }));
  if (!c.cache_key.empty()) ctx.auth->UpdateCachedDevice(c.cache_key, d);
  return Empty(200);
}

}  // namespace

void AddDdiRoutes(RouteTable& routes, Context& ctx) {
  using A = Access;
  using B = BodyKind;
  const std::string base = "/" + ctx.config.ddi_tenant + "/controller/v1/{device}";
  routes.Add("GET", base, A::kDdi, B::kNone,
             [&ctx](Request& r, Caller& c) { return DdiPoll(ctx, r, c); });
  routes.Add("GET", base + "/deploymentBase/{id}", A::kDdi, B::kNone,
             [&ctx](Request& r, Caller& c) { return DdiDeployment(ctx, r, c, false); });
  routes.Add("GET", base + "/installedBase/{id}", A::kDdi, B::kNone,
             [&ctx](Request& r, Caller& c) { return DdiDeployment(ctx, r, c, true); });
  routes.Add("POST", base + "/deploymentBase/{id}/feedback", A::kDdi, B::kJson,
             [&ctx](Request& r, Caller& c) { return DdiFeedback(ctx, r, c, false); });
  routes.Add("GET", base + "/cancelAction/{id}", A::kDdi, B::kNone,
             [&ctx](Request& r, Caller& c) -> Result<Response> {
               ALOFT_ASSIGN_OR_RETURN(const int64_t id, PathId(r, "action"));
               return ctx.ReadJson([&](Tx& tx) -> Result<json> {
                 ALOFT_ASSIGN_OR_RETURN(Action a, tx.GetAction(id));
                 if (a.device_id != c.device->id || a.state != ActionState::kCanceling) {
                   return Error(Code::kNotFound, "action " + std::to_string(id) + " of device '" +
                                                     c.device->name + "' is not being canceled");
                 }
                 return json{{"id", std::to_string(id)},
                             {"cancelAction", {{"stopId", std::to_string(id)}}}};
               });
             });
  routes.Add("POST", base + "/cancelAction/{id}/feedback", A::kDdi, B::kJson,
             [&ctx](Request& r, Caller& c) { return DdiFeedback(ctx, r, c, true); });
  routes.Add("PUT", base + "/configData", A::kDdi, B::kJson,
             [&ctx](Request& r, Caller& c) { return DdiConfigData(ctx, r, c); });
  routes.Add("GET", base + "/softwaremodules/{module}/artifacts", A::kDdi, B::kNone,
             [&ctx](Request& r, Caller& c) -> Result<Response> {
               ALOFT_ASSIGN_OR_RETURN(Release rel, DdiModule(ctx, r, c));
               return JsonResponse(200, ddi::ArtifactJson(rel, DdiLinks(ctx, r, c, rel)));
             });
  routes.Add("GET", base + "/softwaremodules/{module}/artifacts/{file}", A::kDdi, B::kNone,
             [&ctx](Request& r, Caller& c) -> Result<Response> {
               ALOFT_ASSIGN_OR_RETURN(Release rel, DdiModule(ctx, r, c));
               const std::string& file = r.params["file"];
               if (file == rel.filename) {
                 return ServeArtifact(ctx.artifacts.PathOf(rel.artifact.sha256), rel.artifact.size,
                                      rel.artifact.sha256, rel.filename, r, ctx.metrics,
                                      ctx.open_files);
               }
               if (file == rel.filename + ".MD5SUM") {
                 Response res = Response::Text(200, ddi::Md5SumFile(rel));
                 res.headers.Set("Content-Disposition",
                                 "attachment; filename=\"" + rel.filename + ".MD5SUM\"");
                 return res;
               }
               return Error(Code::kNotFound, "software module " + r.params["module"] +
                                                 " has no artifact '" + file + "' (it has '" +
                                                 rel.filename + "')");
             });
}

}  // namespace aloft::server
