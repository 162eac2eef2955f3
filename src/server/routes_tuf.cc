// The TUF Image repository (docs/trust.md): its metadata and targets for clients under
// /tuf/image/, and /api/v1/tuf/image for `aloft repo push` and operators.
#include "server/app.h"
#include "server/routes.h"
#include "server/tuf_director.h"
#include "server/tuf_image.h"

namespace aloft::server {

namespace {

Error NoRepository() {
  return Error(Code::kNotFound,
               "this server has no Image repository: set tuf_snapshot_key and tuf_timestamp_key "
               "(docs/trust.md)");
}

Error NoDirector() {
  return Error(Code::kNotFound,
               "this server has no Uptane Director: set tuf_director_key (docs/trust.md)");
}

}  // namespace

void AddTufRoutes(RouteTable& routes, Context& ctx) {
  using A = Access;
  using B = BodyKind;
  // Metadata is public (it names hashes, not secrets); each versioned file never changes.
  routes.Add("GET", "/tuf/image/{file}", A::kPublic, B::kNone,
             [&ctx](Request& r, Caller&) -> Result<Response> {
               if (!ctx.image) return NoRepository();
               const std::string& name = r.params.at("file");
               ALOFT_ASSIGN_OR_RETURN(TufFile f, ctx.image->File(name));
               Response res = Response::Json(200, std::move(f.body));
               const bool versioned = !name.empty() && name[0] >= '1' && name[0] <= '9';
               res.headers.Set("Cache-Control",
                               versioned ? "public, max-age=31536000, immutable" : "no-cache");
               return res;
             });
  // Targets: "[dir/]<sha256>.<name>" (consistent snapshots) or the plain name; devices only
  // unless tuf_public_targets.
  routes.Add("GET", "/tuf/image/targets/{path...}",
             ctx.config.tuf_public_targets ? A::kPublic : A::kAnyDevice, B::kNone,
             [&ctx](Request& r, Caller&) -> Result<Response> {
               if (!ctx.image) return NoRepository();
               ALOFT_ASSIGN_OR_RETURN(TufTarget t, ctx.image->Target(r.params.at("path")));
               bool held = false;
               ALOFT_RETURN_IF_ERROR(ctx.store->Read([&](Tx& tx) -> Status {
                 ALOFT_ASSIGN_OR_RETURN(held, tx.ArtifactKnown(t.sha256));
                 return OkStatus();
               }));
               if (!held) {
                 return Error(Code::kNotFound, "target '" + t.name +
                                                   "' is listed, but its file was not uploaded "
                                                   "(aloft server release upload)");
               }
               const size_t slash = t.name.rfind('/');
               return ServeArtifact(ctx.artifacts.PathOf(t.sha256), static_cast<uint64_t>(t.length),
                                    t.sha256,
                                    slash == std::string::npos ? t.name : t.name.substr(slash + 1),
                                    r, ctx.metrics, ctx.open_files);
             });
  routes.Add("POST", "/api/v1/tuf/image", A::kRelease, B::kJson,
             [&ctx](Request& r, Caller& c) -> Result<Response> {
               if (!ctx.image) return NoRepository();
               ALOFT_ASSIGN_OR_RETURN(json body, ParseBody(r, false));
               ALOFT_ASSIGN_OR_RETURN(json answer, ctx.image->Push(body, c.actor, ctx.Now()));
               return JsonResponse(answer.value("changed", false) ? 201 : 200, answer);
             });
  // The Director: its roots (each device's own metadata comes with its check-in).
  routes.Add("GET", "/tuf/director/{file}", A::kPublic, B::kNone,
             [&ctx](Request& r, Caller&) -> Result<Response> {
               if (!ctx.director) return NoDirector();
               ALOFT_ASSIGN_OR_RETURN(TufFile f, ctx.director->RootFile(r.params.at("file")));
               return Response::Json(200, std::move(f.body));
             });
  routes.Add("POST", "/api/v1/tuf/director", A::kAdmin, B::kJson,
             [&ctx](Request& r, Caller& c) -> Result<Response> {
               if (!ctx.director) return NoDirector();
               ALOFT_ASSIGN_OR_RETURN(json body, ParseBody(r, false));
               ALOFT_ASSIGN_OR_RETURN(json answer,
                                      ctx.director->PushRoots(body, c.actor, ctx.Now()));
               return JsonResponse(answer.value("changed", false) ? 201 : 200, answer);
             });
  routes.Add("GET", "/api/v1/tuf/image", A::kViewer, B::kNone,
             [&ctx](Request&, Caller&) -> Result<Response> {
               if (!ctx.image) return NoRepository();
               ALOFT_ASSIGN_OR_RETURN(json answer, ctx.image->Describe(ctx.Now()));
               return JsonResponse(200, answer);
             });
}

}  // namespace aloft::server
