// Rollouts: create, list, status, and the operator's changes (docs/rollouts.md): /api/v1/rollouts.
#include "server/rollout.h"
#include "server/routes.h"

namespace aloft::server {

namespace {

// A rollout route that changes the rollout named in the path and answers with it. The body may
// carry a remark ({"remark": "..."}, at most 500 characters) for the reason and the audit.
void AddRolloutChange(RouteTable& routes, Context& ctx, const std::string& verb, Access access,
                      Result<Rollout> (RolloutEngine::*change)(const std::string&,
                                                               const std::string&, int64_t,
                                                               const std::string&)) {
  routes.Add("POST", "/api/v1/rollouts/{rollout}/" + verb, access, BodyKind::kJson,
             [&ctx, change](Request& r, Caller& c) -> Result<Response> {
               ALOFT_ASSIGN_OR_RETURN(json body, ParseBody(r, true));
               for (const auto& [k, v] : body.items()) {
                 if (k != "remark") return Invalid("unknown field '" + k + "' (known: remark)");
               }
               ALOFT_ASSIGN_OR_RETURN(auto remark, OptString(body, "remark"));
               if (remark && remark->size() > 500) {
                 return Invalid("field 'remark' is longer than 500 characters");
               }
               ALOFT_ASSIGN_OR_RETURN(
                   Rollout out, ((*ctx.rollouts).*change)(r.params["rollout"], c.actor, ctx.Now(),
                                                          remark.value_or("")));
               return Response::Json(200, RolloutJson(out));
             });
}

}  // namespace

void AddRolloutRoutes(RouteTable& routes, Context& ctx) {
  using A = Access;
  using B = BodyKind;
  routes.Add("POST", "/api/v1/rollouts", A::kRelease, B::kJson,
             [&ctx](Request& r, Caller& c) -> Result<Response> {
               ALOFT_ASSIGN_OR_RETURN(RolloutSpec spec, ParseRolloutSpec(r.body));
               if (ctx.config.rollout_approval) spec.needs_approval = true;
               ALOFT_ASSIGN_OR_RETURN(Rollout out, ctx.rollouts->Create(spec, c.actor, ctx.Now()));
               return Response::Json(201, RolloutJson(out));
             });
  routes.Add("GET", "/api/v1/rollouts", A::kViewer, B::kNone,
             [&ctx](Request&, Caller&) -> Result<Response> {
               ALOFT_ASSIGN_OR_RETURN(auto list, ctx.rollouts->List());
               std::string out = "[";
               for (const auto& r : list)
                 out.append(out.size() > 1 ? "," : "").append(RolloutJson(r));
               return Response::Json(200, out + "]");
             });
  routes.Add("GET", "/api/v1/rollouts/{rollout}", A::kViewer, B::kNone,
             [&ctx](Request& r, Caller&) -> Result<Response> {
               ALOFT_ASSIGN_OR_RETURN(RolloutStatus st,
                                      ctx.rollouts->StatusOf(r.params["rollout"]));
               return Response::Json(200, RolloutStatusJson(st));
             });
  AddRolloutChange(routes, ctx, "approve", A::kApprover, &RolloutEngine::Approve);
  AddRolloutChange(routes, ctx, "deny", A::kApprover, &RolloutEngine::Deny);
  AddRolloutChange(routes, ctx, "pause", A::kRelease, &RolloutEngine::Pause);
  AddRolloutChange(routes, ctx, "resume", A::kRelease, &RolloutEngine::Resume);
  AddRolloutChange(routes, ctx, "confirm", A::kRelease, &RolloutEngine::Confirm);
  AddRolloutChange(routes, ctx, "cancel", A::kRelease, &RolloutEngine::Cancel);
}

}  // namespace aloft::server
