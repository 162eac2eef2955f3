// The native device API (docs/device-api.md): check-in (registering with a registration token),
// feedback on actions, artifact downloads and log uploads.
#include "server/device_api.h"

#include "core/canonical_json.h"
#include "core/clock.h"
#include "core/encoding.h"
#include "core/hash.h"
#include "core/text.h"
#include "crypto/key_wrap.h"
#include "mqtt/client.h"
#include "server/app.h"
#include "server/auth.h"
#include "server/housekeeping.h"
#include "server/tuf_director.h"

namespace aloft::server {

namespace {

// The offer of action `a`. `window`: the maintenance window of the action's rollout, when it
// has one; `delta`: the delta offered instead of the full image.
Result<json> ActionForDevice(Context& ctx, const Request& req, const Device& d, const Action& a,
                             const Release& full, const RolloutEngine::InstallWindow& window,
                             const std::optional<Delta>& delta) {
  Release r = full;  // what is downloaded: the release's own artifact, or the delta package
  if (delta) {
    r.artifact = delta->artifact;
    r.filename = full.name + "-" + delta->base_version + "-to-" + full.version + ".aloft";
    r.manifest = delta->manifest;
  }
  json download = {{"size", r.artifact.size},
                   {"sha256", r.artifact.sha256},
                   {"sha1", r.artifact.sha1},
                   {"md5", r.artifact.md5},
                   {"filename", r.filename}};
  if (delta) {
    download["delta"] = {{"base_version", delta->base_version}, {"full_size", full.artifact.size}};
  }
  if (auto external = ctx.ExternalUrl(r.artifact.sha256)) {
    download["url"] = external->first;
    download["expires"] = FormatRfc3339Ms(external->second * 1000);
  } else {
    download["url"] = ctx.BaseUrl(req) + "/device/v1/" + http::PercentEncode(d.name) + "/actions/" +
                      std::to_string(a.id) + "/artifact";
  }
  json j = {{"id", a.id},
            {"release", r.name},
            {"version", r.version},
            {"kind", r.kind},
            {"modules", r.Modules()},
            {"mode", a.mode},
            {"state", ActionStateName(a.state)},
            {"install", a.mode != "download-only" && window.open},
            {"download", download}};
  if (window.spec) {
    j["maintenance_window"] = {
        {"schedule", window.spec->schedule},
        {"duration", window.spec->duration},
        {"time_zone", window.spec->time_zone},
        {"open", window.open},
        {"next_start",
         window.next_start ? json(FormatRfc3339(*window.next_start)) : json(nullptr)}};
  }
  j["manifest"] = r.manifest ? json::parse(*r.manifest, nullptr, false) : json(nullptr);
  // An encrypted release: its content key wrapped for this device (docs/encryption.md); a delta
  // of it is sealed with the same key.
  if (ctx.content_keys && r.manifest && EncryptedKeyId(*r.manifest)) {
    std::optional<json> enc;
    ALOFT_RETURN_IF_ERROR(ctx.store->Read([&](Tx& tx) -> Status {
      ALOFT_ASSIGN_OR_RETURN(enc, ctx.content_keys->ForDevice(tx, full, d.id));
      return OkStatus();
    }));
    if (enc) j["encryption"] = std::move(*enc);
  }
  return j;
}

Result<Response> CheckIn(Context& ctx, Request& req, Caller& c) {
  ALOFT_ASSIGN_OR_RETURN(json body, ParseBody(req, true));
  std::map<std::string, std::string> versions;
  if (auto it = body.find("versions"); it != body.end() && !it->is_null()) {
    if (!it->is_object()) {
      return Invalid(std::string("field 'versions' must be an object of module: version, not ") +
                     it->type_name());
    }
    for (const auto& [m, v] : it->items()) {
      ALOFT_RETURN_IF_ERROR(CheckName("module", m));
      if (!v.is_string()) return Invalid("version of module '" + m + "' must be a string");
      ALOFT_RETURN_IF_ERROR(CheckVersion(v.get<std::string>()));
      versions[m] = v.get<std::string>();
    }
  }
  // One "version": the device type's first module (push devices report {"version": "1.0.0"}).
  ALOFT_ASSIGN_OR_RETURN(auto single_version, OptString(body, "version"));
  if (single_version) {
    if (!versions.empty()) return Invalid("give 'version' or 'versions', not both");
    ALOFT_RETURN_IF_ERROR(CheckVersion(*single_version));
  }
  ALOFT_ASSIGN_OR_RETURN(auto attrs, OptAttributes(body));
  // Uptane (docs/trust.md): a signed version manifest in, the device's Director metadata out.
  const json* uptane = body.contains("uptane") ? &body["uptane"] : nullptr;
  if (uptane && !ctx.director) {
    return Error(Code::kNotFound,
                 "this server has no Uptane Director: set tuf_director_key (docs/trust.md)");
  }
  const std::string& name = req.params["device"];
  std::optional<std::string> new_token;
  std::shared_ptr<const Device> device = c.device;  // not copied unless something changed
  if (c.kind == Caller::kRegistration) {
    ALOFT_RETURN_IF_ERROR(CheckName("device", name));
    new_token = NewToken("aloft_d_");
    const std::string mqtt_secret = mqtt::PasswordHash(*new_token);
    Device d;
    d.name = name;
    d.device_type = c.reg_token->device_type;
    d.created_ms = ctx.Now();
    if (attrs) d.attributes = DumpJson(*attrs);
    Status s = ctx.store->Write([&](Tx& tx) -> Status {
      ALOFT_RETURN_IF_ERROR(tx.UseRegistrationToken(c.reg_token->id, ctx.Now()));
      ALOFT_ASSIGN_OR_RETURN(d, tx.CreateDevice(d, Sha256Hex(AsBytes(*new_token)), mqtt_secret));
      return tx.Audit(c.actor, "device.register", name,
                      DumpJson(json({{"device_type", d.device_type}})), ctx.Now());
    });
    if (!s.ok() && s.error().code() == Code::kAlreadyExists) {
      return Error(Code::kAlreadyExists, "device '" + name +
                                             "' is already registered; check in with its "
                                             "device token");
    }
    ALOFT_RETURN_IF_ERROR(s);
    ctx.CredentialsChanged();
    device = std::make_shared<const Device>(std::move(d));
  }
  if (single_version) {
    DeviceType type;
    ALOFT_RETURN_IF_ERROR(ctx.store->Read([&](Tx& tx) -> Status {
      ALOFT_ASSIGN_OR_RETURN(type, tx.GetDeviceType(device->device_type));
      return OkStatus();
    }));
    versions[type.modules.empty() ? std::string("main") : type.modules[0]] = *single_version;
  }
  bool versions_changed = false;
  for (const auto& [m, v] : versions) {
    auto it = device->versions.find(m);
    versions_changed = versions_changed || it == device->versions.end() || it->second != v;
  }
  if (versions_changed && !single_version) {
    // Only the type's modules have versions (a typo would otherwise show in the statistics).
    DeviceType type;
    ALOFT_RETURN_IF_ERROR(ctx.store->Read([&](Tx& tx) -> Status {
      ALOFT_ASSIGN_OR_RETURN(type, tx.GetDeviceType(device->device_type));
      return OkStatus();
    }));
    for (const auto& [m, v] : versions) {
      if (std::find(type.modules.begin(), type.modules.end(), m) == type.modules.end()) {
        std::string known;
        for (const auto& k : type.modules) known += (known.empty() ? "" : ", ") + k;
        return Invalid("module '" + m + "' is not a module of device type '" + type.name +
                       "' (its modules: " + known + ")");
      }
    }
  }
  std::string attrs_text = attrs ? DumpJson(*attrs) : "";
  bool attrs_changed = attrs && attrs_text != device->attributes;
  // Last contact is written behind, in batches, except the first one: "never seen" must end at
  // once.
  bool first_contact = !device->last_seen_ms;
  if (versions_changed || attrs_changed || first_contact) {
    Device d = *device;
    ALOFT_RETURN_IF_ERROR(ctx.store->Write([&](Tx& tx) -> Status {
      ALOFT_RETURN_IF_ERROR(tx.RecordVersions(d.id, d.versions, versions, ctx.Now()));
      if (attrs_changed) ALOFT_RETURN_IF_ERROR(tx.SetAttributes(d.id, attrs_text));
      if (first_contact) ALOFT_RETURN_IF_ERROR(tx.TouchDevices({{d.id, ctx.Now()}}));
      return OkStatus();
    }));
    for (const auto& [m, v] : versions) d.versions[m] = v;
    if (attrs_changed) d.attributes = attrs_text;
    if (first_contact) d.last_seen_ms = ctx.Now();
    if (c.kind == Caller::kDevice) ctx.auth->UpdateCachedDevice(c.cache_key, d);
    device = std::make_shared<const Device>(std::move(d));
  }
  const Device& d = *device;
  // The device's encryption key (docs/encryption.md): sent with its first check-in after a start.
  if (auto it = body.find("encryption_key"); it != body.end() && !it->is_null()) {
    if (!it->is_string()) return Invalid("field 'encryption_key' must be a string");
    auto raw = crypto::ParseRecipientPublic(it->get<std::string>(), "field 'encryption_key'");
    if (!raw.ok()) return Invalid(raw.error().message());
    const std::string key = Base64Encode(*raw);
    ALOFT_RETURN_IF_ERROR(ctx.store->Write([&](Tx& tx) -> Status {
      ALOFT_ASSIGN_OR_RETURN(auto held, tx.GetDeviceKey(d.id));
      if (held == key) return OkStatus();
      return tx.PutDeviceKey(d.id, key, ctx.Now());
    }));
  }
  if (!first_contact) ctx.contacts->TouchLater(d.id);
  CountContact(ctx, c, d.id);

  std::optional<Action> action;
  Release rel;
  // Nearly every check-in finds no open action, and the answer found earlier stays true while the
  // device's actions epoch stands (Store::ActionsEpoch: this server's writes on SQLite; on
  // PostgreSQL any server's, as notified).
  // A device this request read from the database comes with whether it had an open action.
  const bool known_none = c.open_action_now == false && c.device && c.device->id == d.id;
  const std::optional<uint64_t> epoch = c.hints && !known_none
                                            ? ctx.store->ActionsEpoch(d.id)  // before the read
                                            : std::nullopt;
  if (!known_none &&
      (!epoch || c.hints->no_action_epoch.load(std::memory_order_relaxed) != *epoch)) {
    ALOFT_RETURN_IF_ERROR(ctx.store->Read([&](Tx& tx) -> Status {
      ALOFT_ASSIGN_OR_RETURN(action, tx.OpenActionFor(d.id));
      if (action) {
        ALOFT_ASSIGN_OR_RETURN(rel, tx.GetReleaseById(action->release_id));
      }
      return OkStatus();
    }));
    if (epoch && !action) c.hints->no_action_epoch.store(*epoch, std::memory_order_relaxed);
  }
  // A disabled release offers nothing new, but a cancel is still told.
  const bool offer = action && (rel.enabled || action->state == ActionState::kCanceling);
  if (!new_token && !offer) {
    // The answer to nearly every check-in, built without a JSON tree; for an Uptane device that
    // holds the Director's newest, the same with an empty "director".
    std::string director;
    if (uptane) {
      ALOFT_ASSIGN_OR_RETURN(json dir, ctx.director->CheckIn(d, *uptane, std::nullopt, ctx.Now()));
      if (!dir.empty()) {
        return JsonResponse(200, {{"device", d.name},
                                  {"action", nullptr},
                                  {"director", std::move(dir)},
                                  {"poll_interval_s", ctx.config.poll_interval_s}});
      }
      director = ",\"director\":{}";
    }
    return Response::Json(
        200, "{\"action\":null,\"device\":" + http::JsonQuote(d.name) + director +
                 ",\"poll_interval_s\":" + std::to_string(ctx.config.poll_interval_s) + "}");
  }
  json out = {{"device", d.name}, {"action", nullptr}};
  if (new_token) out["token"] = *new_token;
  // Uptane devices get full images: a delta made online has no offline targets signature.
  ALOFT_ASSIGN_OR_RETURN(out["action"], OpenActionJson(ctx, req, d, action, rel, !uptane));
  if (uptane) {
    std::optional<Director::Offer> o;
    if (out["action"].is_object() && !out["action"].value("cancel", false)) {
      o = Director::Offer{action->id,          rel.name + "@" + rel.version,
                          rel.artifact.sha256, static_cast<int64_t>(rel.artifact.size),
                          rel.Modules(),       out["action"].value("encryption", json())};
    }
    ALOFT_ASSIGN_OR_RETURN(out["director"], ctx.director->CheckIn(d, *uptane, o, ctx.Now()));
  }
  out["poll_interval_s"] =
      out["action"].is_null() ? ctx.config.poll_interval_s : ctx.config.poll_interval_active_s;
  return JsonResponse(200, out);
}

// Action `id` when it belongs to the calling device and is open: kNotFound, kAlreadyExists.
Result<Action> OpenActionOf(Tx& tx, const Caller& c, int64_t id) {
  ALOFT_ASSIGN_OR_RETURN(Action a, tx.GetAction(id, /*with_events=*/false));
  if (a.device_id != c.device->id) {
    return Error(Code::kNotFound,
                 "action " + std::to_string(id) + " not found for device '" + c.device->name + "'");
  }
  if (IsTerminal(a.state)) {
    return Error(Code::kAlreadyExists, "action " + std::to_string(id) + " is already " +
                                           std::string(ActionStateName(a.state)) +
                                           "; feedback is no longer accepted");
  }
  return a;
}

Result<Response> Feedback(Context& ctx, Request& req, Caller& c) {
  ALOFT_ASSIGN_OR_RETURN(const int64_t id, PathId(req, "action"));
  const std::string& id_text = req.params["id"];
  ALOFT_ASSIGN_OR_RETURN(json body, ParseBody(req, false));
  ALOFT_ASSIGN_OR_RETURN(std::string status, ReqString(body, "status"));
  static const std::map<std::string, ActionState> kStatus = {
      {"downloading", ActionState::kDownloading}, {"downloaded", ActionState::kDownloaded},
      {"installing", ActionState::kInstalling},   {"installed", ActionState::kInstalled},
      {"success", ActionState::kSucceeded},       {"failure", ActionState::kFailed},
      {"canceled", ActionState::kCanceled}};
  auto st = kStatus.find(status);
  if (st == kStatus.end()) {
    return Invalid("status '" + status +
                   "' is not one of downloading, downloaded, installing, installed, success, "
                   "failure, canceled");
  }
  std::optional<int64_t> progress, code;
  if (auto it = body.find("progress"); it != body.end() && !it->is_null()) {
    if (!it->is_number_integer() || it->get<int64_t>() < 0 || it->get<int64_t>() > 100) {
      return Invalid("field 'progress' must be an integer from 0 to 100");
    }
    progress = it->get<int64_t>();
  }
  if (auto it = body.find("code"); it != body.end() && !it->is_null()) {
    if (!it->is_number_integer()) return Invalid("field 'code' must be an integer");
    code = it->get<int64_t>();
  }
  std::string details;
  if (auto it = body.find("details"); it != body.end() && !it->is_null()) {
    if (it->is_string()) {
      details = it->get<std::string>();
    } else if (it->is_array()) {
      for (const auto& e : *it) {
        if (!e.is_string()) return Invalid("field 'details' must be a string or strings");
        details += (details.empty() ? "" : "\n") + e.get<std::string>();
      }
    } else {
      return Invalid("field 'details' must be a string or an array of strings");
    }
  }
  if (details.size() > 64 * 1024) return Invalid("field 'details' exceeds 65536 bytes");
  if (st->second == ActionState::kInstalling) ALOFT_RETURN_IF_ERROR(CheckInstallAllowed(ctx, id));
  json out;
  std::optional<Device> updated;
  ALOFT_RETURN_IF_ERROR(ctx.store->Write([&](Tx& tx) -> Status {
    ALOFT_ASSIGN_OR_RETURN(Action a, OpenActionOf(tx, c, id));
    const ActionState next = st->second;
    if (a.state == ActionState::kCanceling && next != ActionState::kInstalled &&
        next != ActionState::kSucceeded && next != ActionState::kFailed &&
        next != ActionState::kCanceled) {
      return Error(Code::kAlreadyExists,
                   "action " + id_text +
                       " is being canceled: report 'canceled' to confirm, or the result of an "
                       "install already under way");
    }
    if (next == ActionState::kCanceled && a.state != ActionState::kCanceling) {
      return Error(Code::kAlreadyExists,
                   "action " + id_text + " was not canceled; report 'failure' to give it up");
    }
    ALOFT_ASSIGN_OR_RETURN(updated, RecordFeedback(ctx, tx, c, a, next, progress,
                                                   {ctx.Now(), status, progress, code, details}));
    out = {{"id", id}, {"state", ActionStateName(next)}};
    return OkStatus();
  }));
  if (updated) ctx.auth->UpdateCachedDevice(c.cache_key, *updated);
  return JsonResponse(200, out);
}

Result<Response> DeviceDownload(Context& ctx, Request& req, Caller& c) {
  ALOFT_ASSIGN_OR_RETURN(const int64_t id, PathId(req, "action"));
  const std::string& id_text = req.params["id"];
  Release rel;
  std::optional<int64_t> delta_id;
  ALOFT_RETURN_IF_ERROR(ctx.store->Read([&](Tx& tx) -> Status {
    ALOFT_ASSIGN_OR_RETURN(Action a, tx.GetAction(id, /*with_events=*/false));
    // Authorize let only the path's device, or its gateway, this far.
    if (a.device != req.params["device"]) {
      return Error(Code::kNotFound,
                   "action " + id_text + " not found for device '" + req.params["device"] + "'");
    }
    if (c.kind == Caller::kDevice && IsTerminal(a.state)) {
      return Error(Code::kPermissionDenied, "action " + id_text + " is " +
                                                std::string(ActionStateName(a.state)) +
                                                "; its artifact is no longer offered");
    }
    ALOFT_ASSIGN_OR_RETURN(rel, tx.GetReleaseById(a.release_id));
    delta_id = a.delta_id;
    return OkStatus();
  }));
  if (delta_id) {
    ALOFT_ASSIGN_OR_RETURN(Delta delta, ctx.deltas->Get(*delta_id));
    return ServeArtifact(ctx.artifacts.PathOf(delta.artifact.sha256), delta.artifact.size,
                         delta.artifact.sha256,
                         rel.name + "-" + delta.base_version + "-to-" + rel.version + ".aloft", req,
                         ctx.metrics, ctx.open_files);
  }
  return ServeArtifact(ctx.artifacts.PathOf(rel.artifact.sha256), rel.artifact.size,
                       rel.artifact.sha256, rel.filename, req, ctx.metrics, ctx.open_files);
}

Result<Response> UploadLog(Context& ctx, Request& req, Caller& c) {
  std::optional<int64_t> action;
  if (auto a = QueryStr(req, "action")) {
    action = ParseId(*a);
    if (!action) return Invalid("query parameter 'action' must be an id");
  }
  if (req.body.empty()) return Invalid("the log is empty");
  // Logs are text: bytes that are not UTF-8 are kept as U+FFFD (PostgreSQL refuses them, and
  // every answer that shows the log is JSON).
  const std::string text = ToValidUtf8(req.body);
  int64_t id = 0;
  ALOFT_RETURN_IF_ERROR(ctx.store->Write([&](Tx& tx) -> Status {
    if (action) {
      ALOFT_ASSIGN_OR_RETURN(Action a, tx.GetAction(*action, /*with_events=*/false));
      if (a.device_id != c.device->id) {
        return Error(Code::kNotFound, "action " + std::to_string(*action) +
                                          " not found for device '" + c.device->name + "'");
      }
    }
    ALOFT_ASSIGN_OR_RETURN(
        id, tx.AddLog(c.device->id, action, text, ctx.Now(), ctx.config.max_logs_per_device,
                      static_cast<int64_t>(ctx.config.max_log_bytes_per_device)));
    return OkStatus();
  }));
  return JsonResponse(201, {{"id", id}, {"bytes", req.body.size()}});
}

}  // namespace

void CountContact(Context& ctx, const Caller& c, int64_t device_id) {
  if (!c.hints || !c.hints->counted.exchange(true, std::memory_order_relaxed)) {
    ctx.metrics.DeviceSeen(device_id);
  } else {
    ctx.metrics.CheckIn();
  }
}

Result<json> OpenActionJson(Context& ctx, const Request& req, const Device& d,
                            const std::optional<Action>& action, const Release& rel, bool deltas) {
  if (action && action->state == ActionState::kCanceling) {
    // The device is told to stop; its "canceled" feedback closes the action.
    return json{{"id", action->id},
                {"release", rel.name},
                {"version", rel.version},
                {"state", "canceling"},
                {"cancel", true}};
  }
  if (action && rel.enabled) {
    ALOFT_ASSIGN_OR_RETURN(auto window, ctx.WindowOf(action->rollout_id));
    std::optional<Delta> delta;
    if (deltas) {
      ALOFT_ASSIGN_OR_RETURN(delta, ctx.deltas->ForAction(*action, rel, d, ctx.Now()));
    }
    return ActionForDevice(ctx, req, d, *action, rel, window, delta);
  }
  return json(nullptr);
}

Result<std::optional<Device>> RecordFeedback(Context& ctx, Tx& tx, const Caller& c, const Action& a,
                                             ActionState next, std::optional<int64_t> progress,
                                             const ActionEvent& event) {
  int64_t pct = progress.value_or(next == ActionState::kDownloading ? a.progress : 100);
  if ((next == a.state && !progress) || next == ActionState::kFailed ||
      next == ActionState::kCanceled || next == ActionState::kCanceling ||
      next == ActionState::kPending) {
    pct = a.progress;
  }
  ALOFT_RETURN_IF_ERROR(tx.UpdateAction(a.id, next, pct, event));
  if (next != ActionState::kSucceeded) return std::optional<Device>();
  ALOFT_ASSIGN_OR_RETURN(Release rel, tx.GetReleaseById(a.release_id));
  ALOFT_ASSIGN_OR_RETURN(Device d, tx.GetDevice(c.device->name));
  std::map<std::string, std::string> versions;
  for (const auto& m : rel.Modules()) versions[m] = rel.version;
  ALOFT_RETURN_IF_ERROR(tx.RecordVersions(d.id, d.versions, versions, ctx.Now()));
  for (const auto& [m, v] : versions) d.versions[m] = v;
  return std::optional<Device>(std::move(d));
}

Status CheckInstallAllowed(Context& ctx, int64_t action_id) {
  std::optional<int64_t> rollout;
  bool under_way = false;
  ALOFT_RETURN_IF_ERROR(ctx.store->Read([&](Tx& tx) -> Status {
    ALOFT_ASSIGN_OR_RETURN(
        db::Rows rows,
        tx.connection().Query("SELECT rollout_id, state FROM actions WHERE id = ?", {action_id}));
    if (!rows.empty()) {
      rollout = rows[0].OptInt(0);
      under_way = rows[0].Text(1) == ActionStateName(ActionState::kInstalling);
    }
    return OkStatus();
  }));
  // An install the window let start finishes: its progress reports are not refused.
  if (under_way) return OkStatus();
  ALOFT_ASSIGN_OR_RETURN(auto window, ctx.WindowOf(rollout));
  if (window.open) return OkStatus();
  return Error(
      Code::kAlreadyExists,
      "action " + std::to_string(action_id) +
          " may not install outside its rollout's maintenance window ('" + window.spec->schedule +
          "' for " + window.spec->duration + ", " + window.spec->time_zone +
          "); it opens next at " +
          (window.next_start ? FormatRfc3339(*window.next_start) : "no time within a year"));
}

void AddDeviceApiRoutes(RouteTable& routes, Context& ctx) {
  using A = Access;
  using B = BodyKind;
  routes.Add("POST", "/device/v1/{device}/check-in", A::kDeviceOrRegistration, B::kJson,
             [&ctx](Request& r, Caller& c) { return CheckIn(ctx, r, c); });
  routes.Add("POST", "/device/v1/{device}/actions/{id}/feedback", A::kDevice, B::kJson,
             [&ctx](Request& r, Caller& c) { return Feedback(ctx, r, c); });
  routes.Add("GET", "/device/v1/{device}/actions/{id}/artifact", A::kDevice, B::kNone,
             [&ctx](Request& r, Caller& c) { return DeviceDownload(ctx, r, c); });
  routes.Add("POST", "/device/v1/{device}/logs", A::kDevice, B::kLog,
             [&ctx](Request& r, Caller& c) { return UploadLog(ctx, r, c); });
}

}  // namespace aloft::server
