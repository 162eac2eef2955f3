// Deployments, actions and push tasks: /api/v1/deployments, /api/v1/actions, /api/v1/push.
#include <map>
#include <set>

#include "core/canonical_json.h"
#include "server/routes.h"
#include "server/views.h"

namespace aloft::server {

namespace {

Result<Response> Deploy(Context& ctx, Request& req, Caller& c) {
  if (ctx.config.rollout_approval && c.role < Role::kAdmin) {
    // A deployment is a rollout without the approval this server requires of every rollout.
    return Error(Code::kPermissionDenied,
                 "this server requires approval (rollout_approval): deploy through a rollout, "
                 "which an approver approves (aloft server rollout create ... --device D); direct "
                 "deployments are for admins");
  }
  ALOFT_ASSIGN_OR_RETURN(json body, ParseBody(req, false));
  ALOFT_ASSIGN_OR_RETURN(std::string release_id, ReqString(body, "release"));
  auto at = release_id.find('@');
  if (at == std::string::npos || at == 0 || at + 1 == release_id.size()) {
    return Invalid("field 'release' must be NAME@VERSION, got '" + release_id + "'");
  }
  ALOFT_ASSIGN_OR_RETURN(auto devices, OptStringList(body, "devices"));
  ALOFT_ASSIGN_OR_RETURN(auto group, OptString(body, "group"));
  ALOFT_ASSIGN_OR_RETURN(auto tag, OptString(body, "tag"));
  int targets = (devices ? 1 : 0) + (group ? 1 : 0) + (tag ? 1 : 0);
  if (targets != 1) {
    return Invalid("name exactly one target: 'devices' (a list), 'group' or 'tag'");
  }
  if (devices && devices->empty()) return Invalid("field 'devices' is empty");
  ALOFT_ASSIGN_OR_RETURN(auto mode_opt, OptString(body, "mode"));
  std::string mode = mode_opt.value_or("forced");
  if (mode != "forced" && mode != "soft" && mode != "download-only") {
    return Invalid("mode '" + mode + "' is not one of forced, soft, download-only");
  }
  bool push = false;
  if (auto it = body.find("push"); it != body.end() && !it->is_null()) {
    if (!it->is_boolean()) return Invalid("field 'push' must be true or false");
    push = it->get<bool>();
    if (push && !ctx.push) {
      return Error(Code::kUnsupported,
                   "this server has no MQTT broker configured (mqtt_url); 'push' cannot be true");
    }
  }
  json created = json::array(), skipped = json::array();
  ALOFT_RETURN_IF_ERROR(ctx.store->Write([&](Tx& tx) -> Status {
    created = json::array();
    skipped = json::array();
    ALOFT_ASSIGN_OR_RETURN(Release rel,
                           tx.GetRelease(release_id.substr(0, at), release_id.substr(at + 1)));
    if (!rel.enabled) {
      return Invalid("release " + rel.Id() + " is disabled; enable it before deploying");
    }
    ALOFT_RETURN_IF_ERROR(rel.CheckSigned(ctx.config.require_signed_releases));
    DeviceFilter f;
    f.limit = 1000000;
    if (devices) f.names = *devices;
    f.group = group;
    f.tag = tag;
    ALOFT_ASSIGN_OR_RETURN(auto list, tx.ListDevices(f));
    if (devices) {
      std::set<std::string_view> listed;
      for (const auto& d : list) listed.insert(d.name);
      for (const auto& n : *devices) {
        if (!listed.count(n)) return Error(Code::kNotFound, "device '" + n + "' not found");
      }
    }
    if (list.empty()) {
      return Error(Code::kNotFound, std::string("no devices in ") +
                                        (group ? "group '" + *group + "'" : "tag '" + *tag + "'"));
    }
    // Every refusal first, then the actions in one go: a statement per device would take a group
    // of thousands seconds, in one write transaction that holds up every other writer.
    auto types = rel.DeviceTypes();
    std::map<int64_t, std::string> refused;
    std::vector<int64_t> eligible;
    for (const auto& d : list) {
      std::string reason;
      if (std::find(types.begin(), types.end(), d.device_type) == types.end()) {
        reason = "device type '" + d.device_type + "' is not a target of " + rel.Id();
      } else {
        reason = rel.RefusalFor(d.name, d.versions).value_or("");
      }
      if (reason.empty()) {
        eligible.push_back(d.id);
      } else {
        refused[d.id] = std::move(reason);
      }
    }
    ALOFT_ASSIGN_OR_RETURN(
        auto actions, tx.CreateActions(eligible, rel.id, mode, c.actor, ctx.Now(),
                                       push ? std::optional<int64_t>(ctx.Now()) : std::nullopt));
    for (const auto& d : list) {
      auto it = actions.find(d.id);
      if (it != actions.end() && it->second.created) {
        created.push_back({{"id", it->second.id}, {"device", d.name}});
        continue;
      }
      std::string reason = refused[d.id];
      if (reason.empty()) {
        reason = it != actions.end() ? "has open action " + std::to_string(it->second.id)
                                     : "has an open action";
      }
      skipped.push_back({{"device", d.name}, {"reason", reason}});
    }
    return tx.Audit(
        c.actor, "deployment.create", rel.Id(),
        DumpJson(
            json({{"target", body}, {"created", created.size()}, {"skipped", skipped.size()}})),
        ctx.Now());
  }));
  return JsonResponse(201, {{"release", release_id}, {"actions", created}, {"skipped", skipped}});
}

Result<Response> PushTask(Context& ctx, Request& req, Caller& c) {
  if (!ctx.push) {
    return Error(Code::kUnsupported,
                 "this server has no MQTT broker configured (mqtt_url); nothing can be pushed");
  }
  ALOFT_ASSIGN_OR_RETURN(json body, ParseBody(req, false));
  for (const auto& [k, v] : body.items()) {
    if (k != "devices" && k != "rollout" && k != "at") {
      return Invalid("unknown field '" + k + "' (known: devices, rollout, at)");
    }
  }
  ALOFT_ASSIGN_OR_RETURN(auto devices, OptStringList(body, "devices"));
  ALOFT_ASSIGN_OR_RETURN(auto rollout, OptString(body, "rollout"));
  if ((devices ? 1 : 0) + (rollout ? 1 : 0) != 1) {
    return Invalid("name exactly one target: 'devices' (a list) or 'rollout'");
  }
  if (devices && devices->empty()) return Invalid("field 'devices' is empty");
  ALOFT_ASSIGN_OR_RETURN(auto at_text, OptString(body, "at"));
  int64_t at = ctx.Now();
  if (at_text) {
    auto parsed = ParseRfc3339(*at_text);
    if (!parsed) return Invalid("field 'at' must be an RFC 3339 time, got '" + *at_text + "'");
    at = ToMs(*parsed);
  }
  std::optional<int64_t> rollout_id;
  if (rollout) {
    ALOFT_ASSIGN_OR_RETURN(Rollout r, ctx.rollouts->Get(*rollout));
    rollout_id = r.id;
  }
  int64_t scheduled = 0;
  ALOFT_RETURN_IF_ERROR(ctx.store->Write([&](Tx& tx) -> Status {
    std::vector<int64_t> ids;
    if (!rollout) {
      for (const auto& n : *devices) {
        ALOFT_ASSIGN_OR_RETURN(Device d, tx.GetDevice(n));
        ids.push_back(d.id);
      }
    }
    ALOFT_ASSIGN_OR_RETURN(scheduled, tx.SchedulePushes(ids, rollout_id, at));
    return tx.Audit(c.actor, "push.create", rollout ? "rollout:" + *rollout : "devices",
                    DumpJson(json({{"target", body}, {"actions", scheduled}})), ctx.Now());
  }));
  return JsonResponse(201, {{"actions", scheduled}, {"at", FormatRfc3339Ms(at)}});
}

}  // namespace

void AddActionRoutes(RouteTable& routes, Context& ctx) {
  using A = Access;
  using B = BodyKind;
  routes.Add("POST", "/api/v1/deployments", A::kRelease, B::kJson,
             [&ctx](Request& r, Caller& c) { return Deploy(ctx, r, c); });
  routes.Add("GET", "/api/v1/actions", A::kViewer, B::kNone,
             [&ctx](Request& r, Caller&) -> Result<Response> {
               ActionFilter f;
               f.device = QueryStr(r, "device");
               if (auto s = QueryStr(r, "state")) {
                 ALOFT_ASSIGN_OR_RETURN(f.state, ParseActionState(*s));
               }
               ALOFT_ASSIGN_OR_RETURN(f.limit, QueryInt(r, "limit", 100, 1000));
               ALOFT_ASSIGN_OR_RETURN(f.offset, QueryInt(r, "offset", 0, INT64_MAX));
               return ctx.ReadJson([&](Tx& tx) -> Result<json> {
                 ALOFT_ASSIGN_OR_RETURN(auto list, tx.ListActions(f));
                 return JsonList(list);
               });
             });
  routes.Add("GET", "/api/v1/actions/{id}", A::kViewer, B::kNone,
             [&ctx](Request& r, Caller&) -> Result<Response> {
               ALOFT_ASSIGN_OR_RETURN(int64_t id, PathId(r, "action"));
               return ctx.ReadJson([&](Tx& tx) -> Result<json> {
                 ALOFT_ASSIGN_OR_RETURN(auto a, tx.GetAction(id));
                 return ToJson(a);
               });
             });
  routes.Add(
      "POST", "/api/v1/actions/{id}/cancel", A::kRelease, B::kNone,
      [&ctx](Request& r, Caller& c) -> Result<Response> {
        ALOFT_ASSIGN_OR_RETURN(int64_t id, PathId(r, "action"));
        json out;
        ALOFT_RETURN_IF_ERROR(ctx.store->Write([&](Tx& tx) -> Status {
          ALOFT_ASSIGN_OR_RETURN(auto a, tx.GetAction(id));
          if (IsTerminal(a.state) || a.state == ActionState::kCanceling) {
            return Error(Code::kAlreadyExists, "action " + std::to_string(id) + " is already " +
                                                   std::string(ActionStateName(a.state)) +
                                                   "; nothing to cancel");
          }
          // What the device has not begun closes at once; what it has, it is told to stop,
          // and its answer closes.
          const ActionState next =
              a.state == ActionState::kPending ? ActionState::kCanceled : ActionState::kCanceling;
          ALOFT_RETURN_IF_ERROR(tx.UpdateAction(id, next, a.progress,
                                                {ctx.Now(), std::string(ActionStateName(next)),
                                                 std::nullopt, std::nullopt, "by " + c.actor}));
          ALOFT_RETURN_IF_ERROR(
              tx.Audit(c.actor, "action.cancel", std::to_string(id), "{}", ctx.Now()));
          ALOFT_ASSIGN_OR_RETURN(a, tx.GetAction(id));
          out = ToJson(a);
          return OkStatus();
        }));
        return JsonResponse(200, out);
      });
  routes.Add("POST", "/api/v1/push", A::kRelease, B::kJson,
             [&ctx](Request& r, Caller& c) { return PushTask(ctx, r, c); });
}

}  // namespace aloft::server
