// The Store's TUF repositories (store.h, docs/trust.md): metadata files by repository, role and
// version, and the list of targets the newest targets metadata names.
#include "server/store.h"

namespace aloft::server {

using db::Rows;

namespace {

TufFile FileOf(const db::Row& r) {
  return TufFile{.role = r.Text(0), .version = r.Int(1), .body = r.Text(2), .expires_ms = r.Int(3)};
}

}  // namespace

Result<std::optional<TufFile>> Tx::GetTufFile(const std::string& repo, const std::string& role,
                                              std::optional<int64_t> version) {
  Rows rows;
  if (version) {
    ALOFT_ASSIGN_OR_RETURN(rows, c_.Query("SELECT role, version, body, expires_ms FROM tuf_files "
                                          "WHERE repo = ? AND role = ? AND version = ?",
                                          {repo, role, *version}));
  } else {
    ALOFT_ASSIGN_OR_RETURN(rows, c_.Query("SELECT role, version, body, expires_ms FROM tuf_files "
                                          "WHERE repo = ? AND role = ? ORDER BY version DESC "
                                          "LIMIT 1",
                                          {repo, role}));
  }
  if (rows.empty()) return std::optional<TufFile>();
  return std::optional<TufFile>(FileOf(rows[0]));
}

Result<std::vector<TufFile>> Tx::NewestTufFiles(const std::string& repo) {
  ALOFT_ASSIGN_OR_RETURN(
      Rows rows, c_.Query("SELECT f.role, f.version, f.body, f.expires_ms FROM tuf_files f JOIN "
                          "(SELECT role, MAX(version) AS v FROM tuf_files WHERE repo = ? GROUP "
                          "BY role) n ON n.role = f.role AND n.v = f.version WHERE f.repo = ? "
                          "ORDER BY f.role",
                          {repo, repo}));
  std::vector<TufFile> out;
  for (const auto& r : rows) out.push_back(FileOf(r));
  return out;
}

Status Tx::PutTufFile(const std::string& repo, const TufFile& f, int64_t now) {
  ALOFT_RETURN_IF_ERROR(
      c_.Query("INSERT INTO tuf_files (repo, role, version, body, expires_ms, created_ms) VALUES "
               "(?, ?, ?, ?, ?, ?)",
               {repo, f.role, f.version, f.body, f.expires_ms, now}));
  return OkStatus();
}

Status Tx::SetTufTargets(const std::string& repo, const std::vector<TufTarget>& targets) {
  ALOFT_RETURN_IF_ERROR(c_.Query("DELETE FROM tuf_targets WHERE repo = ?", {repo}));
  for (const auto& t : targets) {
    ALOFT_RETURN_IF_ERROR(
        c_.Query("INSERT INTO tuf_targets (repo, name, sha256, length) VALUES (?, ?, ?, ?)",
                 {repo, t.name, t.sha256, t.length}));
  }
  return OkStatus();
}

Result<std::optional<TufTarget>> Tx::FindTufTarget(const std::string& repo,
                                                   const std::string& name) {
  ALOFT_ASSIGN_OR_RETURN(
      Rows rows,
      c_.Query("SELECT name, sha256, length FROM tuf_targets WHERE repo = ? AND name = ?",
               {repo, name}));
  if (rows.empty()) return std::optional<TufTarget>();
  return std::optional<TufTarget>(
      TufTarget{.name = rows[0].Text(0), .sha256 = rows[0].Text(1), .length = rows[0].Int(2)});
}

Result<std::optional<TufTarget>> Tx::FindTufTargetBySha256(const std::string& repo,
                                                           const std::string& sha256) {
  ALOFT_ASSIGN_OR_RETURN(Rows rows, c_.Query("SELECT name, sha256, length FROM tuf_targets WHERE "
                                             "repo = ? AND sha256 = ? ORDER BY name LIMIT 1",
                                             {repo, sha256}));
  if (rows.empty()) return std::optional<TufTarget>();
  return std::optional<TufTarget>(
      TufTarget{.name = rows[0].Text(0), .sha256 = rows[0].Text(1), .length = rows[0].Int(2)});
}

Status Tx::PruneTufFiles(const std::string& repo, const std::string& role, int64_t version) {
  ALOFT_RETURN_IF_ERROR(c_.Query(
      "DELETE FROM tuf_files WHERE repo = ? AND role = ? AND version < ?", {repo, role, version}));
  return OkStatus();
}

Result<std::optional<UptaneDevice>> Tx::GetUptaneDevice(int64_t device_id) {
  ALOFT_ASSIGN_OR_RETURN(
      Rows rows,
      c_.Query("SELECT key_object, counter, manifest FROM uptane_devices WHERE device_id = ?",
               {device_id}));
  if (rows.empty()) return std::optional<UptaneDevice>();
  return std::optional<UptaneDevice>(UptaneDevice{
      .key_object = rows[0].Text(0), .counter = rows[0].Int(1), .manifest = rows[0].Text(2)});
}

Status Tx::PutUptaneDevice(int64_t device_id, const UptaneDevice& u, int64_t now) {
  ALOFT_RETURN_IF_ERROR(c_.Query(
      "INSERT INTO uptane_devices (device_id, key_object, counter, manifest, updated_ms) VALUES "
      "(?, ?, ?, ?, ?) ON CONFLICT (device_id) DO UPDATE SET key_object = excluded.key_object, "
      "counter = excluded.counter, manifest = excluded.manifest, updated_ms = excluded.updated_ms",
      {device_id, u.key_object, u.counter, u.manifest, now}));
  return OkStatus();
}

Result<std::vector<std::string>> Tx::TufTargetsWithoutFile(const std::string& repo) {
  ALOFT_ASSIGN_OR_RETURN(
      Rows rows, c_.Query("SELECT t.name FROM tuf_targets t LEFT JOIN artifacts a ON a.sha256 = "
                          "t.sha256 WHERE t.repo = ? AND a.sha256 IS NULL ORDER BY t.name",
                          {repo}));
  std::vector<std::string> out;
  for (const auto& r : rows) out.push_back(r.Text(0));
  return out;
}

}  // namespace aloft::server
