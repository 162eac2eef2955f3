// Releases: uploads of packages and plain artifacts, uploaded deltas, changes, the artifact:
// /api/v1/releases.
#include "core/canonical_json.h"
#include "core/encoding.h"
#include "core/file.h"
#include "core/text.h"
#include "crypto/key_wrap.h"
#include "pkg/manifest.h"
#include "pkg/package.h"
#include "server/routes.h"
#include "server/views.h"

namespace aloft::server {

namespace {

// A sink that only lets the package reader check every payload.
class DiscardSink final : public pkg::PayloadSink {
 public:
  Status Begin(const pkg::Component&) override { return OkStatus(); }
  Status Write(ByteSpan) override { return OkStatus(); }
  Status End(const pkg::Component&) override { return OkStatus(); }
};

// An uploaded .aloft package whose signatures (this server's trust keys) and every payload were
// verified: what each upload route checks before it records anything.
struct VerifiedPackage {
  std::unique_ptr<File> file;  // what `reader` reads
  std::unique_ptr<pkg::PackageReader> reader;
};

Result<VerifiedPackage> OpenVerified(Context& ctx, const std::string& path,
                                     const std::string& origin) {
  VerifiedPackage p;
  ALOFT_ASSIGN_OR_RETURN(File f, File::OpenRead(path));
  p.file = std::make_unique<File>(std::move(f));
  ALOFT_ASSIGN_OR_RETURN(p.reader, pkg::PackageReader::Open(*p.file, origin, &ctx.trust));
  DiscardSink sink;
  ALOFT_RETURN_IF_ERROR(p.reader->ReadPayloads(sink, /*raw=*/true));
  return p;
}

// A release's file name is shown to devices (DDI, Content-Disposition) and operators: a plain,
// printable UTF-8 name.
Status CheckFilename(const std::string& name) {
  const bool plain = !name.empty() && name.size() <= 200 && name != "." && name != ".." &&
                     IsValidUtf8(name) && std::none_of(name.begin(), name.end(), [](char ch) {
                       const auto c = static_cast<unsigned char>(ch);
                       return c < 0x20 || c == 0x7f || c == '/' || c == '\\' || c == '"';
                     });
  if (!plain) {
    return Invalid("filename '" + ToValidUtf8(name.substr(0, 200)) +
                   "' must be a plain file name: printable UTF-8, at most 200 bytes, without '/', "
                   "'\\' or '\"'");
  }
  return OkStatus();
}

// Moves an upload to its content address, then runs `record` (the transaction that adds the row
// naming it), so that no row ever names a missing file. When `record` fails and no row names
// those bytes (`known`: some did before), the file goes again.
Status AdoptUpload(Context& ctx, const std::string& upload, const Artifact& a, bool known,
                   const std::function<Status()>& record) {
  ALOFT_RETURN_IF_ERROR(ctx.artifacts.Adopt(upload, a));
  Status s = record();
  if (!s.ok() && !known) {
    bool still = true;
    (void)ctx.store->Read([&](Tx& tx) -> Status {
      ALOFT_ASSIGN_OR_RETURN(still, tx.ArtifactKnown(a.sha256));
      return OkStatus();
    });
    if (!still) ctx.artifacts.Remove(a.sha256);
  }
  return s;
}

// A plain artifact is refused when this server requires signed releases, and an .aloft package
// always: as a plain artifact it would bypass the verification of its signatures and hashes.
Status RefuseAsPlainArtifact(Context& ctx, const std::string& upload) {
  if (ctx.config.require_signed_releases) {
    return Error(Code::kUntrusted,
                 "this server requires signed releases (require_signed_releases): upload a "
                 "signed .aloft package (aloft pack --key ...) without name=, version= and "
                 "device_type=");
  }
  ALOFT_ASSIGN_OR_RETURN(File f, File::OpenRead(upload));
  if (!pkg::PackageReader::Open(f, "upload", nullptr).ok()) return OkStatus();  // not a package
  auto verified = OpenVerified(ctx, upload, "the package");
  const std::string verdict = verified.ok()
                                  ? "its signatures verify"
                                  : "it fails verification: " + verified.error().message();
  return Error(verified.ok() ? Code::kInvalidArgument : Code::kUntrusted,
               "the upload is an .aloft package, which is never a plain artifact (" + verdict +
                   "); upload it without name=, version= and device_type=, and its verified "
                   "manifest makes the release");
}

Result<Response> UploadRelease(Context& ctx, Request& req, Caller& c) {
  if (req.body_file.empty() || req.body_size == 0) {
    return Invalid("the upload is empty: send the file as the request body");
  }
  const std::string upload = req.body_file;
  Release rel;
  rel.created_by = c.actor;
  rel.created_ms = ctx.Now();
  auto name = QueryStr(req, "name");
  if (!name) {
    // A signed .aloft package: everything comes from its verified manifest.
    if (ctx.trust.keys().empty()) {
      return Error(Code::kUntrusted,
                   "this server has no trust keys configured (aloftd --trust KEY.pub), so it "
                   "accepts no signed package; upload a plain artifact with name= and version=");
    }
    ALOFT_ASSIGN_OR_RETURN(
        VerifiedPackage p,
        OpenVerified(ctx, upload, QueryStr(req, "filename").value_or("uploaded package")));
    const pkg::Manifest& m = p.reader->manifest();
    rel.name = m.name;
    rel.version = m.version.ToString();
    rel.kind = "package";
    rel.filename = QueryStr(req, "filename").value_or(m.name + "-" + rel.version + ".aloft");
    ALOFT_ASSIGN_OR_RETURN(rel.manifest, pkg::SerializeEnvelope(p.reader->envelope()));
    for (const auto& hw : m.hardware) {
      for (const auto& comp : m.components) rel.targets.push_back({hw, comp.name});
    }
  } else {
    ALOFT_RETURN_IF_ERROR(RefuseAsPlainArtifact(ctx, upload));
    rel.name = *name;
    ALOFT_RETURN_IF_ERROR(CheckName("release name", rel.name));
    auto version = QueryStr(req, "version");
    if (!version) return Invalid("missing query parameter 'version' for a plain artifact");
    rel.version = *version;
    auto type = QueryStr(req, "device_type");
    if (!type) return Invalid("missing query parameter 'device_type' for a plain artifact");
    rel.kind = "artifact";
    rel.filename = QueryStr(req, "filename").value_or(rel.name + "-" + rel.version);
    rel.targets.push_back({*type, QueryStr(req, "module").value_or("main")});
  }
  ALOFT_RETURN_IF_ERROR(CheckVersion(rel.version));
  ALOFT_RETURN_IF_ERROR(CheckFilename(rel.filename));
  ALOFT_ASSIGN_OR_RETURN(rel.artifact, ArtifactStore::Digest(upload));
  // The file goes to its content address first; the release row appears only after it is there,
  // so a crash in between leaves at most an unreferenced file, never a half-visible release.
  bool known = false;
  ALOFT_RETURN_IF_ERROR(ctx.store->Read([&](Tx& tx) -> Status {
    ALOFT_ASSIGN_OR_RETURN(known, tx.ArtifactKnown(rel.artifact.sha256));
    ALOFT_ASSIGN_OR_RETURN(auto existing, tx.ListReleases(rel.name));
    for (const auto& e : existing) {
      if (e.version == rel.version) {
        return Error(Code::kAlreadyExists, "release " + rel.Id() +
                                               " already exists; releases are immutable, "
                                               "upload a new version");
      }
    }
    return OkStatus();
  }));
  json out;
  ALOFT_RETURN_IF_ERROR(AdoptUpload(ctx, upload, rel.artifact, known, [&] {
    return ctx.store->Write([&](Tx& tx) -> Status {
      ALOFT_ASSIGN_OR_RETURN(Release created, tx.CreateRelease(rel));
      out = ToJson(created);
      return tx.Audit(
          c.actor, "release.create", rel.Id(),
          DumpJson(json(
              {{"sha256", rel.artifact.sha256}, {"size", rel.artifact.size}, {"kind", rel.kind}})),
          ctx.Now());
    });
  }));
  return JsonResponse(201, out);
}

Result<Response> UploadDelta(Context& ctx, Request& req, Caller& c) {
  if (req.body_file.empty() || req.body_size == 0) {
    return Invalid("the upload is empty: send the delta package as the request body");
  }
  if (ctx.trust.keys().empty()) {
    return Error(Code::kUntrusted,
                 "this server has no trust keys configured, so it accepts no "
                 "signed package");
  }
  Release rel;
  ALOFT_RETURN_IF_ERROR(ctx.store->Read([&](Tx& tx) -> Status {
    ALOFT_ASSIGN_OR_RETURN(rel, tx.GetRelease(req.params["name"], req.params["version"]));
    return OkStatus();
  }));
  ALOFT_ASSIGN_OR_RETURN(VerifiedPackage p, OpenVerified(ctx, req.body_file, "uploaded delta"));
  const pkg::Manifest& m = p.reader->manifest();
  if (m.name != rel.name || m.version.ToString() != rel.version) {
    return Invalid("the package is " + m.name + "@" + m.version.ToString() + ", not " + rel.Id());
  }
  std::string base;
  for (const auto& comp : m.components) {
    if (comp.type != pkg::ComponentType::kDelta || !comp.base) {
      return Invalid("component '" + comp.name +
                     "' is a full image; upload full packages as "
                     "releases, deltas here");
    }
    if (!base.empty() && comp.base->version != base) {
      return Invalid("the components apply to different base versions (" + base + ", " +
                     comp.base->version + ")");
    }
    base = comp.base->version;
  }
  if (base.empty()) return Invalid("the package has no components");
  ALOFT_ASSIGN_OR_RETURN(std::string manifest, pkg::SerializeEnvelope(p.reader->envelope()));
  ALOFT_ASSIGN_OR_RETURN(Artifact artifact, ArtifactStore::Digest(req.body_file));
  bool known = false;
  ALOFT_RETURN_IF_ERROR(ctx.store->Read([&](Tx& tx) -> Status {
    ALOFT_ASSIGN_OR_RETURN(known, tx.ArtifactKnown(artifact.sha256));
    return OkStatus();
  }));
  Delta d;
  ALOFT_RETURN_IF_ERROR(AdoptUpload(ctx, req.body_file, artifact, known, [&]() -> Status {
    ALOFT_ASSIGN_OR_RETURN(
        d, ctx.deltas->AddUploaded(rel, base, artifact, manifest, c.actor, ctx.Now()));
    return OkStatus();
  }));
  return JsonResponse(201, {{"release", rel.Id()},
                            {"base_version", d.base_version},
                            {"size", d.artifact.size},
                            {"sha256", d.artifact.sha256},
                            {"source", d.source}});
}

Result<Response> PatchRelease(Context& ctx, Request& req, Caller& c) {
  ALOFT_ASSIGN_OR_RETURN(json body, ParseBody(req, false));
  for (const auto& [k, v] : body.items()) {
    if (k != "enabled" && k != "allowed_devices" && k != "allowed_sources") {
      return Invalid("field '" + k +
                     "' cannot be changed (a release is immutable; enabled, allowed_devices and "
                     "allowed_sources can)");
    }
  }
  auto en = body.find("enabled");
  if (en != body.end() && !en->is_boolean()) {
    return Invalid(std::string("field 'enabled' must be a boolean, not ") + en->type_name());
  }
  ALOFT_ASSIGN_OR_RETURN(auto devices, OptStringList(body, "allowed_devices"));
  ALOFT_ASSIGN_OR_RETURN(auto sources, OptStringList(body, "allowed_sources"));
  json out;
  ALOFT_RETURN_IF_ERROR(ctx.store->Write([&](Tx& tx) -> Status {
    ALOFT_ASSIGN_OR_RETURN(Release r, tx.GetRelease(req.params["name"], req.params["version"]));
    if (en != body.end()) r.enabled = en->get<bool>();
    if (body.contains("allowed_devices")) r.allowed_devices = devices;
    if (body.contains("allowed_sources")) r.allowed_sources = sources;
    ALOFT_RETURN_IF_ERROR(tx.UpdateRelease(r));
    ALOFT_RETURN_IF_ERROR(tx.Audit(c.actor, "release.update", r.Id(), DumpJson(body), ctx.Now()));
    out = ToJson(r);
    return OkStatus();
  }));
  return JsonResponse(200, out);
}

// PUT .../content-key {"content_key": "<base64>"}: the key of an encrypted release, kept sealed;
// from then on each device's action carries it wrapped for the device (docs/encryption.md).
Result<Response> PutContentKey(Context& ctx, Request& req, Caller& c) {
  ALOFT_ASSIGN_OR_RETURN(json body, ParseBody(req, false));
  ALOFT_ASSIGN_OR_RETURN(std::string text, ReqString(body, "content_key"));
  auto raw = Base64Decode(text);
  crypto::ContentKey key{};
  if (!raw.ok() || raw->size() != key.size()) {
    return Invalid(
        "field 'content_key' must be 32 bytes in base64 (the file aloft pack "
        "--encrypt wrote)");
  }
  std::copy(raw->begin(), raw->end(), key.begin());
  json out;
  ALOFT_RETURN_IF_ERROR(ctx.store->Write([&](Tx& tx) -> Status {
    ALOFT_ASSIGN_OR_RETURN(Release r, tx.GetRelease(req.params["name"], req.params["version"]));
    ALOFT_RETURN_IF_ERROR(ctx.content_keys->Accept(tx, r, key, ctx.Now()));
    const std::string id = crypto::ContentKeyId(key);
    ALOFT_RETURN_IF_ERROR(tx.Audit(c.actor, "release.content_key", r.Id(),
                                   DumpJson(json({{"key_id", id}})), ctx.Now()));
    out = {{"release", r.Id()}, {"key_id", id}};
    return OkStatus();
  }));
  return JsonResponse(200, out);
}

}  // namespace

void AddReleaseRoutes(RouteTable& routes, Context& ctx) {
  using A = Access;
  using B = BodyKind;
  routes.Add("GET", "/api/v1/releases", A::kViewer, B::kNone, [&ctx](Request& r, Caller&) {
    return ctx.ReadJson([&](Tx& tx) -> Result<json> {
      ALOFT_ASSIGN_OR_RETURN(auto list, tx.ListReleases(QueryStr(r, "name")));
      return JsonList(list);
    });
  });
  routes.Add("POST", "/api/v1/releases", A::kRelease, B::kUpload,
             [&ctx](Request& r, Caller& c) { return UploadRelease(ctx, r, c); });
  routes.Add("GET", "/api/v1/releases/{name}/{version}", A::kViewer, B::kNone,
             [&ctx](Request& r, Caller&) {
               return ctx.ReadJson([&](Tx& tx) -> Result<json> {
                 ALOFT_ASSIGN_OR_RETURN(auto rel,
                                        tx.GetRelease(r.params["name"], r.params["version"]));
                 json out = ToJson(rel);
                 if (rel.manifest) out["manifest"] = json::parse(*rel.manifest, nullptr, false);
                 ALOFT_ASSIGN_OR_RETURN(auto deltas, ctx.deltas->ListFor(tx, rel.id));
                 out["deltas"] = json::array();
                 for (const auto& d : deltas) {
                   json j = {{"base_version", d.base_version},
                             {"source", d.source},
                             {"state", d.state},
                             {"error", d.error}};
                   if (d.state == "ready") {
                     j["size"] = d.artifact.size;
                     j["sha256"] = d.artifact.sha256;
                   }
                   out["deltas"].push_back(std::move(j));
                 }
                 return out;
               });
             });
  routes.Add("POST", "/api/v1/releases/{name}/{version}/deltas", A::kRelease, B::kUpload,
             [&ctx](Request& r, Caller& c) { return UploadDelta(ctx, r, c); });
  routes.Add("PATCH", "/api/v1/releases/{name}/{version}", A::kRelease, B::kJson,
             [&ctx](Request& r, Caller& c) { return PatchRelease(ctx, r, c); });
  routes.Add("PUT", "/api/v1/releases/{name}/{version}/content-key", A::kRelease, B::kJson,
             [&ctx](Request& r, Caller& c) { return PutContentKey(ctx, r, c); });
  routes.Add("DELETE", "/api/v1/releases/{name}/{version}", A::kRelease, B::kNone,
             [&ctx](Request& r, Caller& c) -> Result<Response> {
               std::optional<std::string> orphan;
               std::string id = r.params["name"] + "@" + r.params["version"];
               ALOFT_RETURN_IF_ERROR(ctx.store->Write([&](Tx& tx) -> Status {
                 ALOFT_ASSIGN_OR_RETURN(orphan,
                                        tx.DeleteRelease(r.params["name"], r.params["version"]));
                 return tx.Audit(c.actor, "release.delete", id, "{}", ctx.Now());
               }));
               if (orphan) ctx.artifacts.Remove(*orphan);
               return NoContent();
             });
  routes.Add("GET", "/api/v1/releases/{name}/{version}/artifact", A::kViewer, B::kNone,
             [&ctx](Request& r, Caller&) -> Result<Response> {
               Release rel;
               ALOFT_RETURN_IF_ERROR(ctx.store->Read([&](Tx& tx) -> Status {
                 ALOFT_ASSIGN_OR_RETURN(rel, tx.GetRelease(r.params["name"], r.params["version"]));
                 return OkStatus();
               }));
               return ServeArtifact(ctx.artifacts.PathOf(rel.artifact.sha256), rel.artifact.size,
                                    rel.artifact.sha256, rel.filename, r, ctx.metrics,
                                    ctx.open_files);
             });
}

}  // namespace aloft::server
