#include "server/deltas.h"

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "core/canonical_json.h"
#include "core/file.h"
#include "pkg/delta_package.h"
#include "pkg/manifest.h"
#include "pkg/package.h"

namespace aloft::server {
namespace {

using db::Rows;

constexpr std::string_view kDeltaColumns =
    "x.id, x.release_id, x.base_version, x.source, x.state, x.artifact_sha256, x.size, "
    "a.sha1, a.md5, x.manifest, x.error";

Delta FromRow(const db::Row& r) {
  Delta d;
  d.id = r.Int(0);
  d.release_id = r.Int(1);
  d.base_version = r.Text(2);
  d.source = r.Text(3);
  d.state = r.Text(4);
  d.artifact.sha256 = r.Text(5);
  d.artifact.size = static_cast<uint64_t>(r.Int(6));
  d.artifact.sha1 = r.Text(7);
  d.artifact.md5 = r.Text(8);
  d.manifest = r.Text(9);
  d.error = r.Text(10);
  return d;
}

Result<std::optional<Delta>> DeltaWhere(Tx& tx, const std::string& where, const db::Params& p) {
  ALOFT_ASSIGN_OR_RETURN(Rows rows,
                         tx.connection().Query("SELECT " + std::string(kDeltaColumns) +
                                                   " FROM deltas x LEFT JOIN artifacts a ON "
                                                   "a.sha256 = x.artifact_sha256 " +
                                                   where,
                                               p));
  if (rows.empty()) return std::optional<Delta>();
  return std::optional<Delta>(FromRow(rows[0]));
}

}  // namespace

DeltaService::DeltaService(Store& store, ArtifactStore& artifacts,
                           std::optional<crypto::PrivateKey> key, ContentKeys* content_keys,
                           std::ostream& log)
    : store_(store),
      artifacts_(artifacts),
      key_(std::move(key)),
      content_keys_(content_keys),
      log_(log) {}

Result<bool> DeltaService::KeysHeld(Tx& tx, const Release& base, const Release& target) {
  for (const Release* r : {&base, &target}) {
    if (!r->manifest || !EncryptedKeyId(*r->manifest)) continue;
    if (!content_keys_) return false;
    ALOFT_ASSIGN_OR_RETURN(auto held, tx.GetReleaseKey(r->id));
    if (!held) return false;
  }
  return true;
}

Result<Delta> DeltaService::Get(int64_t id) {
  std::optional<Delta> d;
  ALOFT_RETURN_IF_ERROR(store_.Read([&](Tx& tx) -> Status {
    ALOFT_ASSIGN_OR_RETURN(d, DeltaWhere(tx, "WHERE x.id = ?", {id}));
    return OkStatus();
  }));
  if (!d) return Error(Code::kNotFound, "delta " + std::to_string(id) + " not found");
  return *d;
}

Result<std::vector<Delta>> DeltaService::ListFor(Tx& tx, int64_t release_id) {
  ALOFT_ASSIGN_OR_RETURN(
      Rows rows, tx.connection().Query("SELECT " + std::string(kDeltaColumns) +
                                           " FROM deltas x LEFT JOIN artifacts a ON a.sha256 = "
                                           "x.artifact_sha256 WHERE x.release_id = ? ORDER BY "
                                           "x.base_version",
                                       {release_id}));
  std::vector<Delta> out;
  for (const auto& r : rows) out.push_back(FromRow(r));
  return out;
}

Result<std::optional<Delta>> DeltaService::ForAction(const Action& action, const Release& release,
                                                     const Device& device, int64_t now) {
  if (action.delta_id) {
    ALOFT_ASSIGN_OR_RETURN(Delta d, Get(*action.delta_id));
    return std::optional<Delta>(std::move(d));
  }
  if (action.state != ActionState::kPending || release.kind != "package") {
    return std::optional<Delta>();
  }
  auto it = device.versions.find(release.FirstModule());
  if (it == device.versions.end() || it->second == release.version) return std::optional<Delta>();
  const std::string& base = it->second;
  // One read decides; a write happens only to choose a ready delta or to queue one (once per
  // release and base version), never on the check-ins of a device whose base the server lacks.
  std::optional<Delta> found;
  bool base_is_package = false;
  ALOFT_RETURN_IF_ERROR(store_.Read([&](Tx& tx) -> Status {
    ALOFT_ASSIGN_OR_RETURN(
        found, DeltaWhere(tx, "WHERE x.release_id = ? AND x.base_version = ?", {release.id, base}));
    if (!found && key_) {
      auto base_rel = tx.GetRelease(release.name, base);
      base_is_package = base_rel.ok() && base_rel->kind == "package";
      // An encrypted release whose key the server lacks: queued once the key is given.
      if (base_is_package) {
        ALOFT_ASSIGN_OR_RETURN(base_is_package, KeysHeld(tx, *base_rel, release));
      }
    }
    return OkStatus();
  }));
  if (found && found->state == "ready") {
    std::optional<int64_t> chosen;
    ALOFT_RETURN_IF_ERROR(store_.Write([&](Tx& tx) -> Status {
      ALOFT_RETURN_IF_ERROR(tx.connection().Query(
          "UPDATE actions SET delta_id = ? WHERE id = ? AND delta_id IS NULL AND state = 'pending'",
          {found->id, action.id}));
      if (tx.connection().changes() > 0) tx.ActionsWritten();
      // The action may have moved on meanwhile (another request of the device): what it has.
      ALOFT_ASSIGN_OR_RETURN(
          Rows rows,
          tx.connection().Query("SELECT delta_id FROM actions WHERE id = ?", {action.id}));
      if (!rows.empty()) chosen = rows[0].OptInt(0);
      return OkStatus();
    }));
    if (!chosen) return std::optional<Delta>();
    if (*chosen == found->id) return found;
    ALOFT_ASSIGN_OR_RETURN(Delta d, Get(*chosen));
    return std::optional<Delta>(std::move(d));
  }
  if (base_is_package) {
    ALOFT_RETURN_IF_ERROR(store_.Write([&](Tx& tx) -> Status {
      ALOFT_RETURN_IF_ERROR(tx.connection().Query(
          "INSERT INTO deltas (release_id, base_version, source, state, created_ms, updated_ms) "
          "VALUES (?, ?, 'generated', 'queued', ?, ?) ON CONFLICT DO NOTHING",
          {release.id, base, now, now}));
      return OkStatus();
    }));
  }
  return std::optional<Delta>();
}

Result<Delta> DeltaService::AddUploaded(const Release& release, const std::string& base_version,
                                        const Artifact& artifact, const std::string& manifest,
                                        const std::string& actor, int64_t now) {
  std::optional<Delta> d;
  ALOFT_RETURN_IF_ERROR(store_.Write([&](Tx& tx) -> Status {
    ALOFT_RETURN_IF_ERROR(tx.connection().Query(
        "INSERT INTO artifacts (sha256, size, sha1, md5, created_ms) VALUES (?, ?, ?, ?, ?) ON "
        "CONFLICT DO NOTHING",
        {artifact.sha256, artifact.size, artifact.sha1, artifact.md5, now}));
    ALOFT_ASSIGN_OR_RETURN(auto existing,
                           DeltaWhere(tx, "WHERE x.release_id = ? AND x.base_version = ?",
                                      {release.id, base_version}));
    if (existing && existing->state == "ready") {
      return Error(Code::kAlreadyExists, "release " + release.Id() + " already has a delta from " +
                                             base_version + " (" + existing->source + ")");
    }
    // An uploaded delta replaces a queued or failed generated one.
    ALOFT_RETURN_IF_ERROR(
        tx.connection().Query("DELETE FROM deltas WHERE release_id = ? AND base_version = ?",
                              {release.id, base_version}));
    ALOFT_RETURN_IF_ERROR(tx.connection().Query(
        "INSERT INTO deltas (release_id, base_version, source, state, artifact_sha256, size, "
        "manifest, created_ms, updated_ms) VALUES (?, ?, 'uploaded', 'ready', ?, ?, ?, ?, ?)",
        {release.id, base_version, artifact.sha256, artifact.size, manifest, now, now}));
    ALOFT_ASSIGN_OR_RETURN(d, DeltaWhere(tx, "WHERE x.release_id = ? AND x.base_version = ?",
                                         {release.id, base_version}));
    return tx.Audit(
        actor, "delta.upload", release.Id(),
        DumpJson(nlohmann::json({{"base_version", base_version}, {"sha256", artifact.sha256}})),
        now);
  }));
  return *d;
}

Result<int> DeltaService::RunQueue(const Clock& clock) {
  if (!key_) return 0;
  int made = 0;
  for (;;) {
    std::optional<Delta> job;
    const int64_t now =
        std::chrono::duration_cast<std::chrono::milliseconds>(clock.Wall().time_since_epoch())
            .count();
    ALOFT_RETURN_IF_ERROR(store_.Write([&](Tx& tx) -> Status {
      // A worker that died (crash, kill -9) left its delta 'generating': queued again once it
      // has been so for longer than any delta takes to make.
      ALOFT_RETURN_IF_ERROR(tx.connection().Query(
          "UPDATE deltas SET state = 'queued', updated_ms = ? WHERE state = 'generating' AND "
          "updated_ms < ?",
          {now, now - kStaleGeneratingMs}));
      ALOFT_ASSIGN_OR_RETURN(job,
                             DeltaWhere(tx, "WHERE x.state = 'queued' ORDER BY x.id LIMIT 1", {}));
      if (!job) return OkStatus();
      // Claimed: another server's worker sees it generating.
      ALOFT_RETURN_IF_ERROR(tx.connection().Query(
          "UPDATE deltas SET state = 'generating', updated_ms = ? WHERE id = ? AND state = "
          "'queued'",
          {now, job->id}));
      if (tx.connection().changes() == 0) job.reset();
      return OkStatus();
    }));
    if (!job) return made;
    Status s = Generate(*job, clock);
    ALOFT_RETURN_IF_ERROR(store_.Write([&](Tx& tx) -> Status {
      if (s.ok()) {
        ALOFT_RETURN_IF_ERROR(tx.connection().Query(
            "UPDATE deltas SET state = 'ready', artifact_sha256 = ?, size = ?, manifest = ?, "
            "updated_ms = ? WHERE id = ?",
            {job->artifact.sha256, job->artifact.size, job->manifest, now, job->id}));
        return OkStatus();
      }
      ALOFT_RETURN_IF_ERROR(tx.connection().Query(
          "UPDATE deltas SET state = 'failed', error = ?, updated_ms = ? WHERE id = ?",
          {s.error().message(), now, job->id}));
      return OkStatus();
    }));
    if (s.ok()) {
      ++made;
      log_ << "aloftd: delta " << job->id << " from " << job->base_version
           << " made: " << job->artifact.size << " bytes" << std::endl;
    } else {
      log_ << "aloftd: delta " << job->id << " from " << job->base_version
           << " failed: " << s.error().message() << std::endl;
    }
  }
}

Status DeltaService::Generate(Delta& d, const Clock& clock) {
  Release target, base;
  pkg::DeltaPackageOptions o;
  ALOFT_RETURN_IF_ERROR(store_.Read([&](Tx& tx) -> Status {
    ALOFT_ASSIGN_OR_RETURN(target, tx.GetReleaseById(d.release_id));
    ALOFT_ASSIGN_OR_RETURN(base, tx.GetRelease(target.name, d.base_version));
    // Encrypted releases: opened with their keys, the delta sealed with the target's.
    if (content_keys_) {
      ALOFT_ASSIGN_OR_RETURN(o.from_key, content_keys_->KeyOf(tx, base));
      ALOFT_ASSIGN_OR_RETURN(o.to_key, content_keys_->KeyOf(tx, target));
    }
    return OkStatus();
  }));
  o.from = artifacts_.PathOf(base.artifact.sha256);
  o.to = artifacts_.PathOf(target.artifact.sha256);
  o.keys = {&*key_};
  o.output = artifacts_.incoming_dir() + "/delta-" + std::to_string(d.id) + "-" +
             std::to_string(::getpid()) + ".aloft";
  auto report = pkg::MakeDeltaPackage(o, clock);
  if (!report.ok()) return report.error().WithContext("delta " + base.Id() + " -> " + target.Id());
  ALOFT_ASSIGN_OR_RETURN(d.artifact, ArtifactStore::Digest(o.output));
  {
    ALOFT_ASSIGN_OR_RETURN(File f, File::OpenRead(o.output));
    ALOFT_ASSIGN_OR_RETURN(auto reader, pkg::PackageReader::Open(f, o.output, nullptr));
    ALOFT_ASSIGN_OR_RETURN(d.manifest, pkg::SerializeEnvelope(reader->envelope()));
  }
  // The file first, then its row (as uploads do): a crash leaves at most an unused file.
  ALOFT_RETURN_IF_ERROR(artifacts_.Adopt(o.output, d.artifact));
  return store_.Write([&](Tx& tx) -> Status {
    ALOFT_RETURN_IF_ERROR(tx.connection().Query(
        "INSERT INTO artifacts (sha256, size, sha1, md5, created_ms) VALUES (?, ?, ?, ?, 0) ON "
        "CONFLICT DO NOTHING",
        {d.artifact.sha256, d.artifact.size, d.artifact.sha1, d.artifact.md5}));
    return OkStatus();
  });
}

}  // namespace aloft::server
