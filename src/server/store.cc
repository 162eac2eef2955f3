#include "server/store.h"

#include <algorithm>
#include <charconv>
#include <nlohmann/json.hpp>
#include <tuple>

#include "core/canonical_json.h"
#include "server/schema.h"

namespace aloft::server {
namespace {

using db::Params;
using db::Rows;

std::optional<std::string> ListToJson(const std::optional<std::vector<std::string>>& v) {
  if (!v) return std::nullopt;
  return DumpJson(nlohmann::json(*v));
}

std::optional<std::vector<std::string>> ListFromJson(const std::optional<std::string>& text) {
  if (!text) return std::nullopt;
  auto j = nlohmann::json::parse(*text, nullptr, false);
  if (!j.is_array()) return std::vector<std::string>{};
  std::vector<std::string> out;
  for (const auto& e : j)
    if (e.is_string()) out.push_back(e.get<std::string>());
  return out;
}

constexpr std::string_view kActionColumns =
    "a.id, a.device_id, d.name, a.release_id, r.name, r.version, a.state, a.mode, a.progress, "
    "a.created_ms, a.updated_ms, a.created_by, a.rollout_id, a.wave, a.delta_id";

constexpr std::string_view kReleaseColumns =
    "r.id, r.name, r.version, r.kind, r.filename, r.artifact_sha256, a.size, a.sha1, a.md5, "
    "r.manifest, r.enabled, r.allowed_devices, r.allowed_sources, r.created_ms, r.created_by";

Release ReleaseFromRow(const db::Row& row) {
  Release r;
  r.id = row.Int(0);
  r.name = row.Text(1);
  r.version = row.Text(2);
  r.kind = row.Text(3);
  r.filename = row.Text(4);
  r.artifact.sha256 = row.Text(5);
  r.artifact.size = static_cast<uint64_t>(row.Int(6));
  r.artifact.sha1 = row.Text(7);
  r.artifact.md5 = row.Text(8);
  r.manifest = row.OptText(9);
  r.enabled = row.Int(10) != 0;
  r.allowed_devices = ListFromJson(row.OptText(11));
  r.allowed_sources = ListFromJson(row.OptText(12));
  r.created_ms = row.Int(13);
  r.created_by = row.Text(14);
  return r;
}

}  // namespace

Error Tx::NotFound(std::string_view what, std::string_view name) {
  return Error(Code::kNotFound, std::string(what) + " '" + std::string(name) + "' not found");
}

std::string_view RoleName(Role r) {
  switch (r) {
    case Role::kViewer:
      return "viewer";
    case Role::kRelease:
      return "release";
    case Role::kApprover:
      return "approver";
    case Role::kAdmin:
      return "admin";
  }
  return "viewer";
}

Result<Role> ParseRole(std::string_view name) {
  if (name == "viewer") return Role::kViewer;
  if (name == "release") return Role::kRelease;
  if (name == "approver") return Role::kApprover;
  if (name == "admin") return Role::kAdmin;
  return Error(Code::kInvalidArgument, "unknown role '" + std::string(name) +
                                           "' (roles: admin, approver, release, viewer)");
}

namespace {
constexpr std::pair<ActionState, std::string_view> kStateNames[] = {
    {ActionState::kPending, "pending"},       {ActionState::kDownloading, "downloading"},
    {ActionState::kDownloaded, "downloaded"}, {ActionState::kInstalling, "installing"},
    {ActionState::kInstalled, "installed"},   {ActionState::kSucceeded, "succeeded"},
    {ActionState::kFailed, "failed"},         {ActionState::kCanceled, "canceled"},
    {ActionState::kCanceling, "canceling"},
};
}  // namespace

std::string_view ActionStateName(ActionState s) {
  for (auto [state, name] : kStateNames)
    if (state == s) return name;
  return "pending";
}

Result<ActionState> ParseActionState(std::string_view name) {
  for (auto [state, n] : kStateNames)
    if (n == name) return state;
  return Error(Code::kInvalidArgument,
               "unknown action state '" + std::string(name) +
                   "' (states: pending, downloading, downloaded, installing, installed, "
                   "succeeded, failed, canceled, canceling)");
}

bool IsTerminal(ActionState s) {
  return s == ActionState::kSucceeded || s == ActionState::kFailed || s == ActionState::kCanceled;
}

std::vector<std::string> Release::Modules() const {
  std::vector<std::string> out;
  for (const auto& t : targets)
    if (std::find(out.begin(), out.end(), t.module) == out.end()) out.push_back(t.module);
  return out;
}

std::string Release::FirstModule() const {
  return targets.empty() ? "main" : targets.front().module;
}

std::optional<std::string> Release::RefusalFor(
    const std::string& device, const std::map<std::string, std::string>& versions) const {
  auto has = [](const std::vector<std::string>& list, const std::string& v) {
    return std::find(list.begin(), list.end(), v) != list.end();
  };
  if (allowed_devices && !has(*allowed_devices, device)) {
    return "release " + Id() + " is restricted to other devices";
  }
  if (allowed_sources) {
    for (const auto& module : Modules()) {
      auto it = versions.find(module);
      const std::string current = it == versions.end() ? "" : it->second;
      if (!has(*allowed_sources, current)) {
        return "module '" + module + "' runs version '" + current + "', not one " + Id() +
               " may be installed over";
      }
    }
  }
  return std::nullopt;
}

Status Release::CheckSigned(bool signed_only) const {
  if (!signed_only || kind != "artifact") return OkStatus();
  return Error(Code::kUntrusted, "release " + Id() +
                                     " is a plain artifact, and this server requires signed "
                                     "releases (require_signed_releases): it is not deployed");
}

std::vector<std::string> Release::DeviceTypes() const {
  std::vector<std::string> out;
  for (const auto& t : targets)
    if (std::find(out.begin(), out.end(), t.device_type) == out.end()) out.push_back(t.device_type);
  return out;
}

// ---- device types ----

Result<int64_t> Tx::DeviceTypeId(const std::string& name) {
  ALOFT_ASSIGN_OR_RETURN(Rows rows, c_.Query("SELECT id FROM device_types WHERE name = ?", {name}));
  if (rows.empty()) return NotFound("device type", name);
  return rows[0].Int(0);
}

Result<DeviceType> Tx::CreateDeviceType(const std::string& name, const std::string& description,
                                        int64_t now) {
  auto rows = c_.Query(
      "INSERT INTO device_types (name, description, created_ms) VALUES (?, ?, ?) RETURNING id",
      {name, description, now});
  if (!rows.ok()) {
    if (rows.error().code() == Code::kAlreadyExists) {
      return Error(Code::kAlreadyExists, "device type '" + name + "' already exists");
    }
    return std::move(rows).error();
  }
  int64_t id = rows->at(0).Int(0);
  ALOFT_RETURN_IF_ERROR(
      c_.Query("INSERT INTO modules (device_type_id, name) VALUES (?, 'main')", {id}));
  return DeviceType{id, name, description, {"main"}, now};
}

Result<std::vector<DeviceType>> Tx::ListDeviceTypes() {
  ALOFT_ASSIGN_OR_RETURN(
      Rows rows,
      c_.Query("SELECT t.id, t.name, t.description, t.created_ms, m.name FROM device_types t "
               "LEFT JOIN modules m ON m.device_type_id = t.id ORDER BY t.name, m.name"));
  std::vector<DeviceType> out;
  for (const auto& r : rows) {
    if (out.empty() || out.back().id != r.Int(0)) {
      out.push_back({r.Int(0), r.Text(1), r.Text(2), {}, r.Int(3)});
    }
    if (!r.IsNull(4)) out.back().modules.push_back(r.Text(4));
  }
  return out;
}

Result<DeviceType> Tx::GetDeviceType(const std::string& name) {
  ALOFT_ASSIGN_OR_RETURN(
      Rows rows,
      c_.Query("SELECT t.id, t.name, t.description, t.created_ms, m.name FROM device_types t "
               "LEFT JOIN modules m ON m.device_type_id = t.id WHERE t.name = ? ORDER BY m.name",
               {name}));
  if (rows.empty()) return NotFound("device type", name);
  DeviceType t{rows[0].Int(0), rows[0].Text(1), rows[0].Text(2), {}, rows[0].Int(3)};
  for (const auto& r : rows)
    if (!r.IsNull(4)) t.modules.push_back(r.Text(4));
  return t;
}

Status Tx::DeleteDeviceType(const std::string& name) {
  ALOFT_ASSIGN_OR_RETURN(int64_t id, DeviceTypeId(name));
  ALOFT_ASSIGN_OR_RETURN(Rows rows,
                         c_.Query("SELECT (SELECT COUNT(*) FROM devices WHERE device_type_id = ?), "
                                  "(SELECT COUNT(*) FROM release_targets WHERE device_type_id = ?)",
                                  {id, id}));
  if (rows[0].Int(0) > 0 || rows[0].Int(1) > 0) {
    return Error(Code::kAlreadyExists, "device type '" + name + "' is in use by " +
                                           rows[0].Text(0) + " device(s) and " + rows[0].Text(1) +
                                           " release target(s); delete those first");
  }
  ALOFT_RETURN_IF_ERROR(c_.Query("DELETE FROM device_types WHERE id = ?", {id}));
  return OkStatus();
}

Status Tx::AddModule(const std::string& type, const std::string& module) {
  ALOFT_ASSIGN_OR_RETURN(int64_t id, DeviceTypeId(type));
  auto r = c_.Query("INSERT INTO modules (device_type_id, name) VALUES (?, ?)", {id, module});
  if (!r.ok() && r.error().code() == Code::kAlreadyExists) {
    return Error(Code::kAlreadyExists,
                 "device type '" + type + "' already has module '" + module + "'");
  }
  return r.ok() ? OkStatus() : Status(std::move(r).error());
}

Status Tx::DeleteModule(const std::string& type, const std::string& module) {
  ALOFT_ASSIGN_OR_RETURN(int64_t id, DeviceTypeId(type));
  ALOFT_ASSIGN_OR_RETURN(
      Rows rows,
      c_.Query("SELECT COUNT(*) FROM release_targets WHERE device_type_id = ? AND module = ?",
               {id, module}));
  if (rows[0].Int(0) > 0) {
    return Error(Code::kAlreadyExists, "module '" + module + "' of '" + type + "' is used by " +
                                           rows[0].Text(0) + " release(s)");
  }
  ALOFT_RETURN_IF_ERROR(
      c_.Query("DELETE FROM modules WHERE device_type_id = ? AND name = ?", {id, module}));
  if (c_.changes() == 0) return NotFound("module", type + "/" + module);
  return OkStatus();
}

// ---- releases ----

Result<std::vector<ReleaseTarget>> Tx::TargetsOf(int64_t release_id) {
  ALOFT_ASSIGN_OR_RETURN(
      Rows rows, c_.Query("SELECT t.name, rt.module FROM release_targets rt JOIN device_types t "
                          "ON t.id = rt.device_type_id WHERE rt.release_id = ? "
                          "ORDER BY t.name, rt.module",
                          {release_id}));
  std::vector<ReleaseTarget> out;
  for (const auto& r : rows) out.push_back({r.Text(0), r.Text(1)});
  return out;
}

Result<Release> Tx::CreateRelease(const Release& r) {
  ALOFT_RETURN_IF_ERROR(c_.Query(
      "INSERT INTO artifacts (sha256, size, sha1, md5, created_ms) VALUES (?, ?, ?, ?, ?) "
      "ON CONFLICT (sha256) DO NOTHING",
      {r.artifact.sha256, r.artifact.size, r.artifact.sha1, r.artifact.md5, r.created_ms}));
  auto rows = c_.Query(
      "INSERT INTO releases (name, version, kind, filename, artifact_sha256, manifest, enabled, "
      "allowed_devices, allowed_sources, created_ms, created_by) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
      {r.name, r.version, r.kind, r.filename, r.artifact.sha256, r.manifest, r.enabled,
       ListToJson(r.allowed_devices), ListToJson(r.allowed_sources), r.created_ms, r.created_by});
  if (!rows.ok()) {
    if (rows.error().code() == Code::kAlreadyExists) {
      return Error(Code::kAlreadyExists, "release " + r.Id() +
                                             " already exists; releases are immutable, "
                                             "upload a new version");
    }
    return std::move(rows).error();
  }
  Release out = r;
  out.id = rows->at(0).Int(0);
  std::sort(out.targets.begin(), out.targets.end(), [](const auto& a, const auto& b) {
    return std::tie(a.device_type, a.module) < std::tie(b.device_type, b.module);
  });
  for (const auto& t : r.targets) {
    ALOFT_ASSIGN_OR_RETURN(DeviceType type, GetDeviceType(t.device_type));
    if (std::find(type.modules.begin(), type.modules.end(), t.module) == type.modules.end()) {
      std::string known;
      for (const auto& m : type.modules) known += (known.empty() ? "" : ", ") + m;
      return Error(Code::kInvalidArgument,
                   "module '" + t.module + "' is not a module of device type '" + t.device_type +
                       "' (modules: " + known + "); add it first with `aloft server module add " +
                       t.device_type + " " + t.module + "`");
    }
    ALOFT_RETURN_IF_ERROR(c_.Query(
        "INSERT INTO release_targets (release_id, device_type_id, module) VALUES (?, ?, ?) "
        "ON CONFLICT DO NOTHING",
        {out.id, type.id, t.module}));
  }
  return out;
}

Result<std::vector<Release>> Tx::ReleasesWhere(const std::string& where, const Params& params) {
  ALOFT_ASSIGN_OR_RETURN(
      Rows rows,
      c_.Query("SELECT " + std::string(kReleaseColumns) +
                   " FROM releases r JOIN artifacts a ON a.sha256 = r.artifact_sha256 " + where,
               params));
  std::vector<Release> out;
  for (const auto& row : rows) {
    Release r = ReleaseFromRow(row);
    ALOFT_ASSIGN_OR_RETURN(r.targets, TargetsOf(r.id));
    out.push_back(std::move(r));
  }
  return out;
}

Result<std::vector<Release>> Tx::ListReleases(const std::optional<std::string>& name) {
  if (name) return ReleasesWhere("WHERE r.name = ? ORDER BY r.name, r.id", {*name});
  return ReleasesWhere("ORDER BY r.name, r.id", {});
}

Result<Release> Tx::GetRelease(const std::string& name, const std::string& version) {
  ALOFT_ASSIGN_OR_RETURN(auto list,
                         ReleasesWhere("WHERE r.name = ? AND r.version = ?", {name, version}));
  if (list.empty()) return NotFound("release", name + "@" + version);
  return std::move(list[0]);
}

Result<Release> Tx::GetReleaseById(int64_t id) {
  ALOFT_ASSIGN_OR_RETURN(auto list, ReleasesWhere("WHERE r.id = ?", {id}));
  if (list.empty()) return NotFound("release", std::string("#").append(std::to_string(id)));
  return std::move(list[0]);
}

Status Tx::UpdateRelease(const Release& r) {
  ALOFT_RETURN_IF_ERROR(c_.Query(
      "UPDATE releases SET enabled = ?, allowed_devices = ?, allowed_sources = ? WHERE id = ?",
      {r.enabled, ListToJson(r.allowed_devices), ListToJson(r.allowed_sources), r.id}));
  return OkStatus();
}

Result<std::optional<std::string>> Tx::DeleteRelease(const std::string& name,
                                                     const std::string& version) {
  ALOFT_ASSIGN_OR_RETURN(Release r, GetRelease(name, version));
  ALOFT_ASSIGN_OR_RETURN(Rows rows,
                         c_.Query("SELECT COUNT(*) FROM actions WHERE release_id = ?", {r.id}));
  if (rows[0].Int(0) > 0) {
    return Error(Code::kAlreadyExists, "release " + r.Id() + " is referred to by " +
                                           rows[0].Text(0) +
                                           " action(s); disable it instead of deleting it");
  }
  ALOFT_RETURN_IF_ERROR(c_.Query("DELETE FROM releases WHERE id = ?", {r.id}));
  ALOFT_ASSIGN_OR_RETURN(rows, c_.Query("SELECT COUNT(*) FROM releases WHERE artifact_sha256 = ?",
                                        {r.artifact.sha256}));
  if (rows[0].Int(0) > 0) return std::optional<std::string>();
  ALOFT_RETURN_IF_ERROR(c_.Query("DELETE FROM artifacts WHERE sha256 = ?", {r.artifact.sha256}));
  return std::optional<std::string>(r.artifact.sha256);
}

Result<bool> Tx::ArtifactKnown(const std::string& sha256) {
  ALOFT_ASSIGN_OR_RETURN(Rows rows, c_.Query("SELECT 1 FROM artifacts WHERE sha256 = ?", {sha256}));
  return !rows.empty();
}

// ---- actions ----

Result<std::vector<Action>> Tx::ActionsWhere(const std::string& where, const Params& params) {
  ALOFT_ASSIGN_OR_RETURN(Rows rows,
                         c_.Query("SELECT " + std::string(kActionColumns) +
                                      " FROM actions a JOIN devices d ON d.id = a.device_id "
                                      "JOIN releases r ON r.id = a.release_id " +
                                      where,
                                  params));
  std::vector<Action> out;
  out.reserve(rows.size());
  for (const auto& r : rows) {
    Action a;
    a.id = r.Int(0);
    a.device_id = r.Int(1);
    a.device = r.Text(2);
    a.release_id = r.Int(3);
    a.release = r.Text(4);
    a.version = r.Text(5);
    ALOFT_ASSIGN_OR_RETURN(a.state, ParseActionState(r.Text(6)));
    a.mode = r.Text(7);
    a.progress = r.Int(8);
    a.created_ms = r.Int(9);
    a.updated_ms = r.Int(10);
    a.created_by = r.Text(11);
    a.rollout_id = r.OptInt(12);
    a.wave = r.Int(13);
    a.delta_id = r.OptInt(14);
    out.push_back(std::move(a));
  }
  return out;
}

namespace {

// A set of ids as one parameter, for `col IN <sql>`: a JSON array that SQLite's json_each reads, a
// PostgreSQL array literal. One statement text for any number of ids (a text per count would fill
// the prepared-statement caches).
struct IdSet {
  std::string sql;
  db::Value param;
};

template <typename Ids>
IdSet IdSetOf(db::Engine engine, const Ids& ids) {
  const bool pg = engine == db::Engine::kPostgres;
  std::string list = pg ? "{" : "[";
  for (int64_t id : ids) {
    if (list.size() > 1) list += ',';
    list += std::to_string(id);
  }
  list += pg ? '}' : ']';
  return {pg ? "(SELECT unnest(CAST(? AS BIGINT[])))" : "(SELECT value FROM json_each(?))",
          std::move(list)};
}

}  // namespace

Result<std::map<int64_t, Tx::NewAction>> Tx::CreateActions(const std::vector<int64_t>& device_ids,
                                                           int64_t release_id,
                                                           const std::string& mode,
                                                           const std::string& by, int64_t now,
                                                           std::optional<int64_t> push_due_ms) {
  std::map<int64_t, NewAction> out;
  if (device_ids.empty()) return out;
  const IdSet devices = IdSetOf(c_.engine(), device_ids);
  // DO NOTHING rather than an error: on PostgreSQL a failed statement would abort the whole
  // transaction (the partial unique index on open actions guards against a concurrent writer).
  ALOFT_ASSIGN_OR_RETURN(
      Rows created,
      c_.Query("INSERT INTO actions (device_id, release_id, state, mode, created_ms, updated_ms, "
               "created_by, push_due_ms) SELECT d.id, ?, 'pending', ?, ?, ?, ?, CAST(? AS BIGINT) "
               "FROM devices d WHERE d.id IN " +
                   devices.sql +
                   " AND NOT EXISTS (SELECT 1 FROM actions o WHERE o.device_id = d.id AND "
                   "o.open = 1) ON CONFLICT DO NOTHING RETURNING id, device_id",
               {release_id, mode, now, now, by, push_due_ms ? db::Value(*push_due_ms) : db::Value(),
                devices.param}));
  std::vector<int64_t> ids;
  for (const auto& r : created) {
    out[r.Int(1)] = {r.Int(0), true};
    ids.push_back(r.Int(0));
  }
  if (!ids.empty()) {
    ActionsWritten();
    const IdSet actions = IdSetOf(c_.engine(), ids);
    ALOFT_RETURN_IF_ERROR(
        c_.Query("INSERT INTO action_events (action_id, at_ms, status, details) SELECT id, ?, "
                 "'created', ? FROM actions WHERE id IN " +
                     actions.sql,
                 {now, "by " + by, actions.param}));
  }
  if (out.size() < device_ids.size()) {
    ALOFT_ASSIGN_OR_RETURN(Rows open,
                           c_.Query("SELECT device_id, id FROM actions WHERE open = 1 AND "
                                    "device_id IN " +
                                        devices.sql,
                                    {devices.param}));
    for (const auto& r : open) out.try_emplace(r.Int(0), NewAction{r.Int(1), false});
  }
  return out;
}

Result<Action> Tx::GetAction(int64_t id, bool with_events) {
  ALOFT_ASSIGN_OR_RETURN(auto actions, ActionsWhere("WHERE a.id = ?", {id}));
  if (actions.empty()) return NotFound("action", std::to_string(id));
  Action a = std::move(actions[0]);
  if (!with_events) return a;
  ALOFT_ASSIGN_OR_RETURN(
      Rows rows, c_.Query("SELECT at_ms, status, progress, code, details FROM action_events "
                          "WHERE action_id = ? ORDER BY id",
                          {id}));
  for (const auto& r : rows) {
    a.events.push_back({r.Int(0), r.Text(1), r.OptInt(2), r.OptInt(3), r.Text(4)});
  }
  return a;
}

Result<std::vector<Action>> Tx::ListActions(const ActionFilter& f) {
  std::string where = "WHERE 1 = 1";
  Params params;
  if (f.device) {
    where += " AND d.name = ?";
    params.push_back(*f.device);
  }
  if (f.state) {
    where += " AND a.state = ?";
    params.push_back(ActionStateName(*f.state));
  }
  if (f.release_id) {
    where += " AND a.release_id = ?";
    params.push_back(*f.release_id);
  }
  where += " ORDER BY a.id DESC LIMIT ? OFFSET ?";
  params.push_back(f.limit);
  params.push_back(f.offset);
  return ActionsWhere(where, params);
}

Result<std::optional<Action>> Tx::OpenActionFor(int64_t device_id) {
  ALOFT_ASSIGN_OR_RETURN(auto actions,
                         ActionsWhere("WHERE a.device_id = ? AND a.open = 1", {device_id}));
  if (actions.empty()) return std::optional<Action>();
  return std::optional<Action>(std::move(actions[0]));
}

Result<std::optional<int64_t>> Tx::LastSucceededAction(int64_t device_id) {
  ALOFT_ASSIGN_OR_RETURN(Rows rows, c_.Query("SELECT id FROM actions WHERE device_id = ? AND "
                                             "state = 'succeeded' ORDER BY id DESC LIMIT 1",
                                             {device_id}));
  if (rows.empty()) return std::optional<int64_t>();
  return std::optional<int64_t>(rows[0].Int(0));
}

Status Tx::UpdateAction(int64_t id, ActionState state, int64_t progress, const ActionEvent& event) {
  ALOFT_RETURN_IF_ERROR(
      c_.Query("UPDATE actions SET state = ?, progress = ?, open = ?, updated_ms = ? WHERE id = ?",
               {ActionStateName(state), progress, IsTerminal(state) ? 0 : 1, event.at_ms, id}));
  if (c_.changes() == 0) return NotFound("action", std::to_string(id));
  ActionsWritten();
  ALOFT_RETURN_IF_ERROR(
      c_.Query("INSERT INTO action_events (action_id, at_ms, status, progress, code, details) "
               "VALUES (?, ?, ?, ?, ?, ?)",
               {id, event.at_ms, event.status, event.progress, event.code, event.details}));
  // The first event ("created", by whom) and the newest stay.
  ALOFT_RETURN_IF_ERROR(c_.Query(
      "DELETE FROM action_events WHERE id IN (SELECT id FROM (SELECT id, ROW_NUMBER() OVER "
      "(ORDER BY id DESC) AS n, MIN(id) OVER () AS first FROM action_events WHERE action_id = ?) "
      "e WHERE e.n >= ? AND e.id <> e.first)",
      {id, kMaxActionEvents}));
  return OkStatus();
}

// ---- logs, audit, statistics ----

Result<int64_t> Tx::AddLog(int64_t device_id, std::optional<int64_t> action_id,
                           const std::string& content, int64_t now, int64_t max_count,
                           int64_t max_bytes) {
  ALOFT_ASSIGN_OR_RETURN(
      Rows rows,
      c_.Query("INSERT INTO device_logs (device_id, action_id, at_ms, content, bytes) "
               "VALUES (?, ?, ?, ?, ?) RETURNING id",
               {device_id, action_id, now, content, static_cast<int64_t>(content.size())}));
  const int64_t id = rows.at(0).Int(0);
  ALOFT_RETURN_IF_ERROR(
      c_.Query("DELETE FROM device_logs WHERE id IN (SELECT id FROM (SELECT id, ROW_NUMBER() OVER "
               "(ORDER BY id DESC) AS n, SUM(bytes) OVER (ORDER BY id DESC) AS total FROM "
               "device_logs WHERE device_id = ?) l WHERE l.id <> ? AND (l.n > ? OR l.total > ?))",
               {device_id, id, max_count, max_bytes}));
  return id;
}

Result<std::vector<DeviceLog>> Tx::ListLogs(int64_t device_id, int64_t limit,
                                            std::optional<int64_t> before) {
  ALOFT_ASSIGN_OR_RETURN(Rows rows,
                         c_.Query("SELECT id, action_id, at_ms, content FROM device_logs "
                                  "WHERE device_id = ? AND id < ? ORDER BY id DESC LIMIT ?",
                                  {device_id, before.value_or(INT64_MAX), limit}));
  std::vector<DeviceLog> out;
  for (const auto& r : rows) out.push_back({r.Int(0), r.OptInt(1), r.Int(2), r.Text(3)});
  return out;
}

Status Tx::Audit(const std::string& actor, const std::string& action, const std::string& object,
                 const std::string& details_json, int64_t now) {
  ALOFT_RETURN_IF_ERROR(c_.Query(
      "INSERT INTO audit_log (at_ms, actor, action, object, details) VALUES (?, ?, ?, ?, ?)",
      {now, actor, action, object, details_json}));
  return OkStatus();
}

Result<std::vector<AuditEntry>> Tx::ListAudit(int64_t limit, int64_t offset) {
  ALOFT_ASSIGN_OR_RETURN(Rows rows,
                         c_.Query("SELECT id, at_ms, actor, action, object, details FROM audit_log "
                                  "ORDER BY id DESC LIMIT ? OFFSET ?",
                                  {limit, offset}));
  std::vector<AuditEntry> out;
  for (const auto& r : rows) {
    out.push_back({r.Int(0), r.Int(1), r.Text(2), r.Text(3), r.Text(4), r.Text(5)});
  }
  return out;
}

Result<Stats> Tx::GetStats(int64_t now) {
  Stats s;
  ALOFT_ASSIGN_OR_RETURN(
      Rows rows, c_.Query("SELECT t.name, COUNT(d.id) FROM device_types t LEFT JOIN devices d ON "
                          "d.device_type_id = t.id GROUP BY t.name ORDER BY t.name"));
  for (const auto& r : rows) {
    s.devices_by_type[r.Text(0)] = r.Int(1);
    s.devices += r.Int(1);
  }
  ALOFT_ASSIGN_OR_RETURN(
      rows, c_.Query("SELECT t.name, v.module, v.version, COUNT(*) FROM device_versions v "
                     "JOIN devices d ON d.id = v.device_id JOIN device_types t ON "
                     "t.id = d.device_type_id GROUP BY t.name, v.module, v.version"));
  for (const auto& r : rows) {
    s.devices_by_version[r.Text(0) + "/" + r.Text(1) + "/" + r.Text(2)] = r.Int(3);
  }
  ALOFT_ASSIGN_OR_RETURN(
      rows, c_.Query("SELECT "
                     "(SELECT COUNT(*) FROM devices d WHERE last_seen_ms IS NULL AND NOT EXISTS "
                     "(SELECT 1 FROM actions a WHERE a.device_id = d.id AND a.open = 1)), "
                     "(SELECT COUNT(DISTINCT device_id) FROM actions WHERE open = 1)"));
  s.devices_by_state["never-seen"] = rows.at(0).Int(0);
  s.devices_by_state["updating"] = rows.at(0).Int(1);
  s.devices_by_state["idle"] = s.devices - rows.at(0).Int(0) - rows.at(0).Int(1);
  ALOFT_ASSIGN_OR_RETURN(rows, c_.Query("SELECT state, COUNT(*) FROM actions GROUP BY state"));
  for (const auto& r : rows) s.actions_by_state[r.Text(0)] = r.Int(1);
  ALOFT_ASSIGN_OR_RETURN(rows, c_.Query("SELECT COUNT(*) FROM releases"));
  s.releases = rows.at(0).Int(0);
  ALOFT_ASSIGN_OR_RETURN(
      rows, c_.Query("SELECT (SELECT COUNT(*) FROM devices WHERE last_seen_ms > ?), (SELECT "
                     "COUNT(*) FROM devices WHERE last_seen_ms > ?), (SELECT COUNT(*) FROM "
                     "actions a WHERE " +
                         std::string(kLatestActionFailed) + ")",
                     {now - 3'600'000, now - 86'400'000}));
  s.seen_hour = rows.at(0).Int(0);
  s.seen_day = rows.at(0).Int(1);
  s.failing = rows.at(0).Int(2);
  return s;
}

Status Tx::Serialize(int64_t key) {
  if (c_.engine() == db::Engine::kPostgres) {
    ALOFT_RETURN_IF_ERROR(c_.Query("SELECT pg_advisory_xact_lock(?)", {key}));
  }
  return OkStatus();  // SQLite: BEGIN IMMEDIATE already made this the only writer
}

// ---- Store ----

Result<std::unique_ptr<Store>> Store::Open(const std::string& location, int pool_size) {
  ALOFT_ASSIGN_OR_RETURN(auto database, db::Database::Open(location, pool_size));
  ALOFT_RETURN_IF_ERROR(db::Migrate(*database, SchemaMigrations()));
  std::unique_ptr<Store> store(new Store(std::move(database)));
  if (store->db_->engine() == db::Engine::kPostgres) {
    ALOFT_RETURN_IF_ERROR(store->StartListening());
  }
  return store;
}

Store::~Store() { listener_.reset(); }

Status Store::StartListening() {
  db::Listener::Callbacks callbacks;
  callbacks.notified = [this](std::string_view payload) { Notified(payload); };
  callbacks.listening = [this](bool up) { Listening(up); };
  ALOFT_ASSIGN_OR_RETURN(listener_, db_->Listen(kActionsChannel, std::move(callbacks)));
  return OkStatus();
}

void Store::Notified(std::string_view payload) {
  int64_t device = 0;
  auto [ptr, ec] = std::from_chars(payload.data(), payload.data() + payload.size(), device);
  if (ec != std::errc() || ptr != payload.data() + payload.size()) {
    all_epoch_.store(NextEpoch(), std::memory_order_release);  // not a device: news for all
    return;
  }
  Shard& shard = shards_[static_cast<uint64_t>(device) % kShards];
  std::lock_guard lock(shard.mu);
  shard.epochs[device] = NextEpoch();
}

void Store::Listening(bool up) {
  // Lost: nothing is known until it is back. Back: what happened meanwhile is unknown, so every
  // device's epoch moves on, and the per-device ones are no longer needed.
  if (up) {
    for (Shard& shard : shards_) {
      std::lock_guard lock(shard.mu);
      shard.epochs.clear();
    }
  }
  all_epoch_.store(NextEpoch(), std::memory_order_release);
  listening_.store(up, std::memory_order_release);
}

std::optional<uint64_t> Store::ActionsEpoch(int64_t device_id) const {
  if (!listening_.load(std::memory_order_acquire)) return std::nullopt;
  // Every notification of a commit made before this call arrives first (a round trip on the
  // listening connection, shared by concurrent callers): a change another server committed
  // before the device asked is always seen.
  if (listener_ && !listener_->Sync(std::chrono::seconds(1))) return std::nullopt;
  return EpochNow(device_id);
}

std::optional<uint64_t> Store::ActionsEpochSince(int64_t device_id, uint64_t mark) const {
  // No round trip: a notification not yet heard moves the epoch later, and the hint made here
  // then no longer matches.
  auto epoch = EpochNow(device_id);
  if (!epoch || *epoch > mark) return std::nullopt;
  return epoch;
}

std::optional<uint64_t> Store::EpochNow(int64_t device_id) const {
  uint64_t epoch = all_epoch_.load(std::memory_order_acquire);
  if (listener_) {
    const Shard& shard = shards_[static_cast<uint64_t>(device_id) % kShards];
    std::lock_guard lock(shard.mu);
    auto it = shard.epochs.find(device_id);
    if (it != shard.epochs.end()) epoch = std::max(epoch, it->second);
  }
  if (!listening_.load(std::memory_order_acquire)) return std::nullopt;
  return epoch;
}

Status Store::Write(const std::function<Status(Tx&)>& fn) {
  bool actions_written = false;
  Status s = db_->Transact([&](db::Connection& c) {
    Tx tx(c, &actions_written);
    return fn(tx);
  });
  // After the commit (or the rollback: moving on too often only costs a read). On PostgreSQL the
  // notification follows too, but this server's own next request must not wait for it.
  if (actions_written) all_epoch_.store(NextEpoch(), std::memory_order_release);
  return s;
}

Status Store::Read(const std::function<Status(Tx&)>& fn) {
  return db_->Read([&](db::Connection& c) {
    Tx tx(c);
    return fn(tx);
  });
}

}  // namespace aloft::server
