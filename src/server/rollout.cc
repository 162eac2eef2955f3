#include "server/rollout.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <tuple>
#include <utility>

#include "core/canonical_json.h"
#include "core/clock.h"
#include "core/hash.h"
#include "pkg/manifest.h"
#include "server/rollout_json.h"
#include "server/rollout_rows.h"

namespace aloft::server {
namespace {

using json = nlohmann::json;
using db::Params;
using db::Rows;

// Serializes operator changes and engine steps on one rollout table (advisory lock on
// PostgreSQL; SQLite writers are serialized anyway).
constexpr int64_t kRolloutLock = 0x616c6f66'74524f4cLL;  // "aloftROL"
constexpr std::string_view kLeaseName = "rollouts";

Error Invalid(std::string message) { return Error(Code::kInvalidArgument, std::move(message)); }

// ---- rows ----

constexpr std::string_view kRolloutColumns =
    "o.id, o.name, o.release_id, r.name, r.version, o.filter, o.waves, o.mode, o.dynamic, "
    "o.maintenance_window, o.start_ms, o.expires_ms, o.needs_approval, o.state, o.wave, o.reason, "
    "o.errors_accepted_wave, o.created_ms, o.created_by, o.approved_ms, o.approved_by, "
    "o.updated_ms, o.push";

Result<Rollout> RolloutFromRow(const db::Row& row) {
  Rollout r;
  r.id = row.Int(0);
  r.spec.name = row.Text(1);
  r.release_id = row.Int(2);
  r.spec.release = row.Text(3) + "@" + row.Text(4);
  json filter = json::parse(row.Text(5), nullptr, false);
  ALOFT_ASSIGN_OR_RETURN(r.spec.filter, ParseFilter(filter));
  json waves = json::parse(row.Text(6), nullptr, false);
  if (!waves.is_array()) return Error(Code::kInternal, "rollout waves are not a JSON array");
  for (size_t i = 0; i < waves.size(); ++i) {
    ALOFT_ASSIGN_OR_RETURN(WaveSpec w, ParseWave(waves[i], i));
    r.spec.waves.push_back(w);
  }
  r.spec.mode = row.Text(7);
  r.spec.dynamic = row.Int(8) != 0;
  if (!row.IsNull(9)) {
    json w = json::parse(row.Text(9), nullptr, false);
    r.spec.window =
        WindowSpec{w.value("schedule", ""), w.value("duration", ""), w.value("time_zone", "UTC")};
  }
  r.spec.start_ms = row.OptInt(10);
  r.spec.expires_ms = row.OptInt(11);
  r.spec.needs_approval = row.Int(12) != 0;
  ALOFT_ASSIGN_OR_RETURN(r.state, ParseRolloutState(row.Text(13)));
  r.wave = row.Int(14);
  r.reason = row.Text(15);
  r.errors_accepted_wave = row.Int(16);
  r.created_ms = row.Int(17);
  r.created_by = row.Text(18);
  r.approved_ms = row.OptInt(19);
  r.approved_by = row.OptText(20);
  r.updated_ms = row.Int(21);
  r.spec.push = row.Int(22) != 0;
  return r;
}

Result<std::vector<Rollout>> RolloutsWhere(Tx& tx, const std::string& where, const Params& p) {
  ALOFT_ASSIGN_OR_RETURN(Rows rows,
                         tx.connection().Query("SELECT " + std::string(kRolloutColumns) +
                                                   " FROM rollouts o JOIN releases r ON r.id = "
                                                   "o.release_id " +
                                                   where,
                                               p));
  std::vector<Rollout> out;
  for (const auto& row : rows) {
    ALOFT_ASSIGN_OR_RETURN(Rollout r, RolloutFromRow(row));
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace

Result<Rollout> GetRollout(Tx& tx, const std::string& name) {
  ALOFT_ASSIGN_OR_RETURN(auto list, RolloutsWhere(tx, "WHERE o.name = ?", {name}));
  if (list.empty()) return Error(Code::kNotFound, "rollout '" + name + "' not found");
  return std::move(list[0]);
}

namespace {

// "?, ?, ?" for n parameters.
std::string Placeholders(size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i) s += i ? ", ?" : "?";
  return s;
}

std::string VersionModule(const Rollout& r, const Release& rel) {
  return r.spec.filter.module.value_or(rel.FirstModule());
}

struct Candidate {
  int64_t id = 0;
  std::string name;
};

// The devices the rollout's filter selects now; `new_only`: those not yet in the rollout.
Result<std::vector<Candidate>> Matching(Tx& tx, const Rollout& r, const Release& rel,
                                        bool new_only) {
  const RolloutFilter& f = r.spec.filter;
  std::vector<std::string> types;
  for (const auto& t : rel.DeviceTypes()) {
    if (!f.device_type || *f.device_type == t) types.push_back(t);
  }
  if (types.empty()) return std::vector<Candidate>{};
  std::string sql =
      "SELECT d.id, d.name, d.attributes FROM devices d JOIN device_types t ON t.id = "
      "d.device_type_id LEFT JOIN device_versions v ON v.device_id = d.id AND v.module = ? "
      "WHERE t.name IN (" +
      Placeholders(types.size()) + ")";
  Params p = {VersionModule(r, rel)};
  for (const auto& t : types) p.push_back(t);
  auto in = [&](const std::string& column, const std::vector<std::string>& values) {
    if (values.empty()) return;
    sql += " AND " + column + " IN (" + Placeholders(values.size()) + ")";
    for (const auto& v : values) p.push_back(v);
  };
  in("d.grp", f.groups);
  in("d.name", f.devices);
  in("v.version", f.versions);
  if (!f.tags.empty()) {
    sql += " AND EXISTS (SELECT 1 FROM device_tags g WHERE g.device_id = d.id AND g.tag IN (" +
           Placeholders(f.tags.size()) + "))";
    for (const auto& v : f.tags) p.push_back(v);
  }
  if (new_only) {
    sql +=
        " AND NOT EXISTS (SELECT 1 FROM rollout_devices rd WHERE rd.rollout_id = ? AND "
        "rd.device_id = d.id)";
    p.push_back(r.id);
  }
  ALOFT_ASSIGN_OR_RETURN(Rows rows, tx.connection().Query(sql, p));
  std::vector<Candidate> out;
  out.reserve(rows.size());
  for (const auto& row : rows) {
    if (!f.attributes.empty()) {
      json attrs = json::parse(row.Text(2), nullptr, false);
      bool all = attrs.is_object();
      for (const auto& [k, want] : f.attributes) {
        if (!all) break;
        auto it = attrs.find(k);
        all =
            it != attrs.end() && (it->is_string() ? it->get<std::string>() : DumpJson(*it)) == want;
      }
      if (!all) continue;
    }
    out.push_back({row.Int(0), row.Text(1)});
  }
  return out;
}

// Inserts (rollout, device, wave) rows, many per statement.
Status InsertMembers(Tx& tx, int64_t rollout_id,
                     const std::vector<std::pair<int64_t, int64_t>>& m) {
  constexpr size_t kBatch = 300;
  for (size_t i = 0; i < m.size(); i += kBatch) {
    size_t n = std::min(kBatch, m.size() - i);
    std::string sql = "INSERT INTO rollout_devices (rollout_id, device_id, wave) VALUES ";
    Params p(3 * n);
    for (size_t k = 0; k < n; ++k) {
      sql += k ? ", (?, ?, ?)" : "(?, ?, ?)";
      p[3 * k] = db::Value(rollout_id);
      p[3 * k + 1] = db::Value(m[i + k].first);
      p[3 * k + 2] = db::Value(m[i + k].second);
    }
    ALOFT_RETURN_IF_ERROR(tx.connection().Query(sql + " ON CONFLICT DO NOTHING", p));
  }
  return OkStatus();
}

// Wave sizes for n devices: counts, or percentages of n rounded up; the last wave takes the rest.
std::vector<int64_t> WaveSizes(const std::vector<WaveSpec>& waves, int64_t n) {
  std::vector<int64_t> sizes;
  int64_t left = n;
  for (size_t i = 0; i < waves.size(); ++i) {
    int64_t size = left;
    if (i + 1 < waves.size()) {
      size = waves[i].count ? *waves[i].count
                            : static_cast<int64_t>(std::ceil(waves[i].percent.value_or(100) *
                                                             static_cast<double>(n) / 100.0));
      size = std::min(size, left);
    }
    sizes.push_back(size);
    left -= size;
  }
  return sizes;
}

}  // namespace

Result<std::map<int64_t, WaveStatus>> MemberCounts(Tx& tx, int64_t rollout_id,
                                                   std::optional<int64_t> wave) {
  std::string sql =
      "SELECT rd.wave, CASE WHEN rd.skipped IS NOT NULL THEN 'skipped' WHEN a.state IS NULL THEN "
      "'waiting' ELSE a.state END, COUNT(*) FROM rollout_devices rd LEFT JOIN actions a ON a.id = "
      "rd.action_id WHERE rd.rollout_id = ?";
  Params p = {rollout_id};
  if (wave) {
    sql += " AND rd.wave = ?";
    p.push_back(*wave);
  }
  ALOFT_ASSIGN_OR_RETURN(Rows rows, tx.connection().Query(sql + " GROUP BY 1, 2", p));
  std::map<int64_t, WaveStatus> out;
  for (const auto& row : rows) {
    WaveStatus& w = out[row.Int(0)];
    w.index = row.Int(0);
    w.by_state[row.Text(1)] += row.Int(2);
    w.devices += row.Int(2);
  }
  return out;
}

// ---- the engine ----

RolloutEngine::RolloutEngine(Store& store, std::string holder, std::chrono::milliseconds lease,
                             bool signed_only)
    : store_(store), holder_(std::move(holder)), lease_(lease), signed_only_(signed_only) {}

Result<Rollout> RolloutEngine::Create(const RolloutSpec& spec, const std::string& actor,
                                      int64_t now) {
  Rollout out;
  ALOFT_RETURN_IF_ERROR(store_.Write([&](Tx& tx) -> Status {
    ALOFT_RETURN_IF_ERROR(tx.Serialize(kRolloutLock));
    auto at = spec.release.find('@');
    ALOFT_ASSIGN_OR_RETURN(Release rel,
                           tx.GetRelease(spec.release.substr(0, at), spec.release.substr(at + 1)));
    if (!rel.enabled) {
      return Invalid("release " + rel.Id() + " is disabled; enable it before rolling it out");
    }
    ALOFT_RETURN_IF_ERROR(rel.CheckSigned(signed_only_));
    auto types = rel.DeviceTypes();
    if (spec.filter.device_type &&
        std::find(types.begin(), types.end(), *spec.filter.device_type) == types.end()) {
      return Invalid("device type '" + *spec.filter.device_type + "' is not a target of " +
                     rel.Id());
    }
    auto mods = rel.Modules();
    if (spec.filter.module &&
        std::find(mods.begin(), mods.end(), *spec.filter.module) == mods.end()) {
      return Invalid("module '" + *spec.filter.module + "' is not a module of " + rel.Id());
    }
    ALOFT_ASSIGN_OR_RETURN(
        Rows existing,
        tx.connection().Query("SELECT id FROM rollouts WHERE name = ?", {spec.name}));
    if (!existing.empty()) {
      return Error(Code::kAlreadyExists, "rollout '" + spec.name + "' already exists");
    }
    RolloutState state =
        spec.needs_approval ? RolloutState::kAwaitingApproval : RolloutState::kScheduled;
    std::optional<std::string> window;
    if (spec.window) window = DumpJson(WindowJson(*spec.window));
    ALOFT_RETURN_IF_ERROR(tx.connection().Query(
        "INSERT INTO rollouts (name, release_id, filter, waves, mode, dynamic, "
        "maintenance_window, start_ms, expires_ms, needs_approval, state, created_ms, "
        "created_by, updated_ms, push) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        {spec.name, rel.id, DumpJson(FilterJson(spec.filter)), DumpJson(WavesJson(spec.waves)),
         spec.mode, spec.dynamic, window, spec.start_ms, spec.expires_ms, spec.needs_approval,
         RolloutStateName(state), now, actor, now, spec.push}));
    ALOFT_ASSIGN_OR_RETURN(out, GetRollout(tx, spec.name));
    return tx.Audit(actor, "rollout.create", spec.name, RolloutSpecJson(out.spec), now);
  }));
  return out;
}

Result<Rollout> RolloutEngine::Get(const std::string& name) {
  Rollout out;
  ALOFT_RETURN_IF_ERROR(store_.Read([&](Tx& tx) -> Status {
    ALOFT_ASSIGN_OR_RETURN(out, GetRollout(tx, name));
    return OkStatus();
  }));
  return out;
}

Result<std::vector<Rollout>> RolloutEngine::List() {
  std::vector<Rollout> out;
  ALOFT_RETURN_IF_ERROR(store_.Read([&](Tx& tx) -> Status {
    ALOFT_ASSIGN_OR_RETURN(out, RolloutsWhere(tx, "ORDER BY o.id", {}));
    return OkStatus();
  }));
  return out;
}

Result<Rollout> RolloutEngine::Change(const std::string& name, const std::string& actor,
                                      int64_t now, const char* audit_action,
                                      const std::string& remark,
                                      const std::function<aloft::Status(Tx&, Rollout&)>& change) {
  Rollout out;
  ALOFT_RETURN_IF_ERROR(store_.Write([&](Tx& tx) -> aloft::Status {
    ALOFT_RETURN_IF_ERROR(tx.Serialize(kRolloutLock));
    ALOFT_ASSIGN_OR_RETURN(out, GetRollout(tx, name));
    ALOFT_RETURN_IF_ERROR(change(tx, out));
    ALOFT_RETURN_IF_ERROR(Save(tx, out, now));
    json details = {{"state", RolloutStateName(out.state)}, {"wave", out.wave}};
    if (!remark.empty()) details["remark"] = remark;
    return tx.Audit(actor, audit_action, name, DumpJson(details), now);
  }));
  return out;
}

namespace {
std::string Remark(const std::string& remark) { return remark.empty() ? "" : ": " + remark; }

Error WrongState(const Rollout& r, std::string_view verb) {
  return Error(Code::kAlreadyExists, "rollout '" + r.spec.name + "' is " +
                                         std::string(RolloutStateName(r.state)) +
                                         "; it cannot be " + std::string(verb));
}
}  // namespace

Result<Rollout> RolloutEngine::Approve(const std::string& name, const std::string& actor,
                                       int64_t now, const std::string& remark) {
  return Change(name, actor, now, "rollout.approve", remark, [&](Tx&, Rollout& r) -> aloft::Status {
    if (r.state != RolloutState::kAwaitingApproval) return WrongState(r, "approved");
    if (r.created_by == actor) {
      return Error(Code::kPermissionDenied, "rollout '" + r.spec.name + "' was created by " +
                                                actor + "; another approver must approve it");
    }
    r.state = RolloutState::kScheduled;
    r.approved_by = actor;
    r.approved_ms = now;
    r.reason = remark.empty() ? "" : "approved by " + actor + Remark(remark);
    return OkStatus();
  });
}

Result<Rollout> RolloutEngine::Deny(const std::string& name, const std::string& actor, int64_t now,
                                    const std::string& remark) {
  return Change(name, actor, now, "rollout.deny", remark, [&](Tx& tx, Rollout& r) -> aloft::Status {
    if (r.state != RolloutState::kAwaitingApproval) return WrongState(r, "denied");
    r.state = RolloutState::kCanceled;
    r.reason = "denied by " + actor + Remark(remark);
    return CancelActions(tx, r, r.reason, now);
  });
}

Result<Rollout> RolloutEngine::Pause(const std::string& name, const std::string& actor, int64_t now,
                                     const std::string& remark) {
  return Change(name, actor, now, "rollout.pause", remark, [&](Tx&, Rollout& r) -> aloft::Status {
    if (r.state != RolloutState::kRunning && r.state != RolloutState::kScheduled &&
        r.state != RolloutState::kAwaitingConfirmation) {
      return WrongState(r, "paused");
    }
    r.state = RolloutState::kPaused;
    r.reason = "paused by " + actor + Remark(remark);
    return OkStatus();
  });
}

Result<Rollout> RolloutEngine::Resume(const std::string& name, const std::string& actor,
                                      int64_t now, const std::string& remark) {
  return Change(name, actor, now, "rollout.resume", remark, [&](Tx&, Rollout& r) -> aloft::Status {
    if (r.state != RolloutState::kPaused) return WrongState(r, "resumed");
    r.state = r.wave == 0 ? RolloutState::kScheduled : RolloutState::kRunning;
    r.errors_accepted_wave = r.wave;  // the errors seen so far in this wave are accepted
    r.reason = "resumed by " + actor + Remark(remark);
    return OkStatus();
  });
}

Result<Rollout> RolloutEngine::Confirm(const std::string& name, const std::string& actor,
                                       int64_t now, const std::string& remark) {
  return Change(
      name, actor, now, "rollout.confirm", remark, [&](Tx& tx, Rollout& r) -> aloft::Status {
        if (r.state != RolloutState::kAwaitingConfirmation) return WrongState(r, "confirmed");
        ALOFT_ASSIGN_OR_RETURN(Release rel, tx.GetReleaseById(r.release_id));
        r.state = RolloutState::kRunning;
        r.reason = "wave " + std::to_string(r.wave + 1) + " confirmed by " + actor + Remark(remark);
        return AdvanceWave(tx, r, rel, now);
      });
}

Result<Rollout> RolloutEngine::Cancel(const std::string& name, const std::string& actor,
                                      int64_t now, const std::string& remark) {
  return Change(name, actor, now, "rollout.cancel", remark,
                [&](Tx& tx, Rollout& r) -> aloft::Status {
                  if (IsTerminal(r.state)) return WrongState(r, "canceled");
                  r.state = RolloutState::kCanceled;
                  r.reason = "canceled by " + actor + Remark(remark);
                  return CancelActions(tx, r, r.reason, now);
                });
}

aloft::Status RolloutEngine::Save(Tx& tx, const Rollout& r, int64_t now) {
  ALOFT_RETURN_IF_ERROR(tx.connection().Query(
      "UPDATE rollouts SET state = ?, wave = ?, reason = ?, errors_accepted_wave = ?, "
      "approved_ms = ?, approved_by = ?, updated_ms = ? WHERE id = ?",
      {RolloutStateName(r.state), r.wave, r.reason, r.errors_accepted_wave, r.approved_ms,
       r.approved_by, now, r.id}));
  return OkStatus();
}

aloft::Status RolloutEngine::CancelActions(Tx& tx, const Rollout& r, const std::string& why,
                                           int64_t now) {
  // Actions a device has not begun to install; an install under way finishes and reports. What
  // the device has not touched closes at once; what it is downloading or holds, it is told to
  // drop (canceling), and its answer closes.
  for (const auto& [from, to, is_open] :
       {std::tuple{"'pending'", "canceled", 0}, {"'downloading', 'downloaded'", "canceling", 1}}) {
    const std::string where =
        "rollout_id = ? AND open = 1 AND state IN (" + std::string(from) + ")";
    ALOFT_RETURN_IF_ERROR(tx.connection().Query(
        "INSERT INTO action_events (action_id, at_ms, status, details) SELECT id, ?, ?, ? FROM "
        "actions WHERE " +
            where,
        {now, to, why, r.id}));
    ALOFT_RETURN_IF_ERROR(tx.connection().Query(
        "UPDATE actions SET state = ?, open = ?, updated_ms = ? WHERE " + where,
        {to, is_open, now, r.id}));
  }
  tx.ActionsWritten();
  return OkStatus();
}

aloft::Status RolloutEngine::Fence(Tx& tx, int64_t now) {
  ALOFT_RETURN_IF_ERROR(
      tx.connection().Query("UPDATE leases SET expires_ms = ? WHERE name = ? AND holder = ?",
                            {now + lease_.count(), kLeaseName, holder_}));
  if (tx.connection().changes() == 0) {
    return Error(Code::kPermissionDenied,
                 "server '" + holder_ + "' no longer holds the rollout lease");
  }
  return OkStatus();
}

Result<bool> RolloutEngine::Tick(int64_t now) {
  bool leader = false;
  ALOFT_RETURN_IF_ERROR(store_.Write([&](Tx& tx) -> aloft::Status {
    ALOFT_RETURN_IF_ERROR(tx.connection().Query(
        "UPDATE leases SET holder = ?, expires_ms = ? WHERE name = ? AND (holder = ? OR "
        "expires_ms <= ?)",
        {holder_, now + lease_.count(), kLeaseName, holder_, now}));
    leader = tx.connection().changes() > 0;
    if (!leader) {
      ALOFT_RETURN_IF_ERROR(tx.connection().Query(
          "INSERT INTO leases (name, holder, expires_ms) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
          {kLeaseName, holder_, now + lease_.count()}));
      leader = tx.connection().changes() > 0;
    }
    return OkStatus();
  }));
  if (!leader) return false;
  std::vector<std::pair<int64_t, std::string>> live;  // (id, name)
  ALOFT_RETURN_IF_ERROR(store_.Read([&](Tx& tx) -> aloft::Status {
    ALOFT_ASSIGN_OR_RETURN(
        Rows rows,
        tx.connection().Query("SELECT id, name FROM rollouts WHERE state IN ('scheduled', "
                              "'running', 'awaiting-confirmation', 'paused') ORDER BY id"));
    for (const auto& row : rows) live.emplace_back(row.Int(0), row.Text(1));
    return OkStatus();
  }));
  for (const auto& rollout : live) {
    const int64_t id = rollout.first;  // captured below (clang 14 cannot capture a binding)
    const std::string& name = rollout.second;
    aloft::Status s = store_.Write([&](Tx& tx) -> aloft::Status {
      ALOFT_RETURN_IF_ERROR(Fence(tx, now));
      ALOFT_RETURN_IF_ERROR(tx.Serialize(kRolloutLock));
      ALOFT_ASSIGN_OR_RETURN(auto list, RolloutsWhere(tx, "WHERE o.id = ?", {id}));
      if (list.empty() || IsTerminal(list[0].state)) return OkStatus();  // deleted or ended
      return Step(tx, list[0], now);
    });
    if (s.ok()) continue;
    if (s.error().code() == Code::kPermissionDenied) return false;  // lease lost
    if (s.error().code() == Code::kUnavailable) return s;  // the database: the next tick retries
    // This rollout's own trouble (a bad row, a rule its data breaks): the others go on.
    std::lock_guard lock(failures_mu_);
    if (failures_.size() < 100)
      failures_.push_back("rollout '" + name + "': " + s.error().message());
  }
  return true;
}

std::vector<std::string> RolloutEngine::TakeFailures() {
  std::lock_guard lock(failures_mu_);
  return std::exchange(failures_, {});
}

aloft::Status RolloutEngine::Step(Tx& tx, Rollout& r, int64_t now) {
  const RolloutState before = r.state;
  const int64_t wave_before = r.wave;
  if (r.spec.expires_ms && now >= *r.spec.expires_ms) {
    r.state = RolloutState::kExpired;
    r.reason = "expired at " + std::to_string(*r.spec.expires_ms);
    ALOFT_RETURN_IF_ERROR(CancelActions(tx, r, "rollout expired", now));
    ALOFT_RETURN_IF_ERROR(Save(tx, r, now));
    return tx.Audit("rollout-engine", "rollout.expire", r.spec.name, "{}", now);
  }
  ALOFT_ASSIGN_OR_RETURN(Release rel, tx.GetReleaseById(r.release_id));
  if (r.state == RolloutState::kScheduled) {
    if (r.spec.start_ms && now < *r.spec.start_ms) return OkStatus();
    ALOFT_RETURN_IF_ERROR(Start(tx, r, rel, now));
  }
  if (r.state == RolloutState::kRunning) {
    if (r.spec.dynamic) ALOFT_RETURN_IF_ERROR(JoinNewDevices(tx, r, rel));
    // Devices that were waiting for another action to end get theirs now.
    ALOFT_RETURN_IF_ERROR(CreateWaveActions(tx, r, rel, r.wave, now));
    ALOFT_ASSIGN_OR_RETURN(auto counts, MemberCounts(tx, r.id, r.wave));
    const WaveStatus& current = counts[r.wave];
    const int64_t total = current.counted();
    const int64_t succeeded = current.succeeded(), failed = current.failed();
    const WaveSpec& spec = r.spec.waves[std::min<size_t>(r.wave, r.spec.waves.size()) - 1];
    const bool last = r.wave >= static_cast<int64_t>(r.spec.waves.size());
    const int64_t open = total - succeeded - failed - current.Get("canceled");
    std::string wave = "wave " + std::to_string(r.wave);
    if (r.errors_accepted_wave != r.wave && total > 0 &&
        failed * 100 > static_cast<int64_t>(spec.error_threshold) * total) {
      r.state = RolloutState::kPaused;
      r.reason = wave + ": " + std::to_string(failed) + " of " + std::to_string(total) +
                 " failed, above the error threshold of " + std::to_string(spec.error_threshold) +
                 "%";
    } else if (succeeded * 100 >= static_cast<int64_t>(spec.success_threshold) * total) {
      if (last) {
        if (open == 0 || total == 0) {
          r.state = RolloutState::kFinished;
          r.reason = "finished: " + std::to_string(succeeded) + " of " + std::to_string(total) +
                     " devices of the last wave succeeded";
        }
      } else if (spec.confirm) {
        r.state = RolloutState::kAwaitingConfirmation;
        r.reason = wave + " reached its success threshold of " +
                   std::to_string(spec.success_threshold) + "%; confirm to start wave " +
                   std::to_string(r.wave + 1);
      } else {
        ALOFT_RETURN_IF_ERROR(AdvanceWave(tx, r, rel, now));
      }
    }
  }
  if (r.state == before && r.wave == wave_before) return OkStatus();
  ALOFT_RETURN_IF_ERROR(Save(tx, r, now));
  return tx.Audit("rollout-engine", "rollout.step", r.spec.name,
                  DumpJson(json({{"state", RolloutStateName(r.state)},
                                 {"wave", r.wave},
                                 {"reason", r.reason},
                                 {"holder", holder_}})),
                  now);
}

aloft::Status RolloutEngine::Start(Tx& tx, Rollout& r, const Release& rel, int64_t now) {
  ALOFT_ASSIGN_OR_RETURN(auto devices, Matching(tx, r, rel, true));
  // A stable random order: waves are a sample of the fleet, the same on every server.
  std::vector<std::pair<std::string, int64_t>> order;
  order.reserve(devices.size());
  const std::string salt = std::to_string(r.id) + ":";
  for (const auto& d : devices) order.emplace_back(Sha256Hex(AsBytes(salt + d.name)), d.id);
  std::sort(order.begin(), order.end());
  auto sizes = WaveSizes(r.spec.waves, static_cast<int64_t>(order.size()));
  std::vector<std::pair<int64_t, int64_t>> members;
  members.reserve(order.size());
  size_t next = 0;
  for (size_t w = 0; w < sizes.size(); ++w) {
    for (int64_t k = 0; k < sizes[w]; ++k) {
      members.emplace_back(order[next++].second, static_cast<int64_t>(w + 1));
    }
  }
  ALOFT_RETURN_IF_ERROR(InsertMembers(tx, r.id, members));
  r.state = RolloutState::kRunning;
  r.wave = 1;
  r.reason = "started with " + std::to_string(members.size()) + " devices";
  return CreateWaveActions(tx, r, rel, 1, now);
}

aloft::Status RolloutEngine::JoinNewDevices(Tx& tx, Rollout& r, const Release& rel) {
  ALOFT_ASSIGN_OR_RETURN(auto devices, Matching(tx, r, rel, true));
  std::vector<std::pair<int64_t, int64_t>> members;
  for (const auto& d : devices) members.emplace_back(d.id, r.wave);
  return InsertMembers(tx, r.id, members);
}

aloft::Status RolloutEngine::AdvanceWave(Tx& tx, Rollout& r, const Release& rel, int64_t now) {
  r.wave += 1;
  r.state = RolloutState::kRunning;
  return CreateWaveActions(tx, r, rel, r.wave, now);
}

aloft::Status RolloutEngine::CreateWaveActions(Tx& tx, const Rollout& r, const Release& rel,
                                               int64_t wave, int64_t now) {
  db::Connection& c = tx.connection();
  // Devices the release may not go to are skipped, with the reason.
  ALOFT_ASSIGN_OR_RETURN(
      Rows members,
      c.Query("SELECT rd.device_id, d.name, v.version FROM rollout_devices rd JOIN devices d ON "
              "d.id = rd.device_id LEFT JOIN device_versions v ON v.device_id = rd.device_id AND "
              "v.module = ? WHERE rd.rollout_id = ? AND rd.wave = ? AND rd.action_id IS NULL AND "
              "rd.skipped IS NULL",
              {VersionModule(r, rel), r.id, wave}));
  if (members.empty()) return OkStatus();
  // allowed_sources looks at every module of the release: the members' versions, in one query.
  std::map<int64_t, std::map<std::string, std::string>> versions;
  if (rel.allowed_sources) {
    ALOFT_ASSIGN_OR_RETURN(
        Rows rows,
        c.Query("SELECT v.device_id, v.module, v.version FROM rollout_devices rd JOIN "
                "device_versions v ON v.device_id = rd.device_id WHERE rd.rollout_id = ? AND "
                "rd.wave = ? AND rd.action_id IS NULL AND rd.skipped IS NULL",
                {r.id, wave}));
    for (const auto& row : rows) versions[row.Int(0)][row.Text(1)] = row.Text(2);
  }
  for (const auto& m : members) {
    const std::string& name = m.Text(1);
    const std::string current = m.Text(2);
    std::optional<std::string> reason;
    if (current == rel.version) {
      reason = "already runs " + rel.version;
    } else {
      reason = rel.RefusalFor(name, versions[m.Int(0)]);
    }
    if (!reason) continue;
    ALOFT_RETURN_IF_ERROR(
        c.Query("UPDATE rollout_devices SET skipped = ? WHERE rollout_id = ? AND device_id = ?",
                {*reason, r.id, m.Int(0)}));
  }
  if (c.engine() == db::Engine::kPostgres && members.size() > 1000) {
    // Fresh statistics, or the planner takes the new rows for a handful and joins row by row.
    ALOFT_RETURN_IF_ERROR(c.Query("ANALYZE rollout_devices"));
  }
  // One statement for the whole wave; a device with another open action waits for a later tick.
  ALOFT_ASSIGN_OR_RETURN(
      Rows created,
      c.Query("INSERT INTO actions (device_id, release_id, state, mode, created_ms, updated_ms, "
              "created_by, rollout_id, wave, push_due_ms) SELECT rd.device_id, ?, 'pending', ?, ?, "
              "?, ?, rd.rollout_id, rd.wave, CAST(? AS BIGINT) FROM rollout_devices rd WHERE "
              "rd.rollout_id = ? AND "
              "rd.wave = ? AND rd.action_id IS NULL AND rd.skipped IS NULL AND NOT EXISTS (SELECT "
              "1 FROM actions o WHERE o.device_id = rd.device_id AND o.open = 1) ON CONFLICT DO "
              "NOTHING RETURNING id",
              {rel.id, r.spec.mode, now, now, "rollout:" + r.spec.name,
               r.spec.push ? db::Value(now) : db::Value(), r.id, wave}));
  if (created.empty()) return OkStatus();
  tx.ActionsWritten();
  int64_t lo = created[0].Int(0), hi = lo;
  for (const auto& row : created) {
    lo = std::min(lo, row.Int(0));
    hi = std::max(hi, row.Int(0));
  }
  if (c.engine() == db::Engine::kPostgres && created.size() > 1000) {
    ALOFT_RETURN_IF_ERROR(c.Query("ANALYZE actions"));
  }
  ALOFT_RETURN_IF_ERROR(
      c.Query("UPDATE rollout_devices SET action_id = a.id FROM actions a WHERE a.device_id = "
              "rollout_devices.device_id AND a.rollout_id = rollout_devices.rollout_id AND "
              "a.open = 1 AND rollout_devices.rollout_id = ? AND rollout_devices.wave = ? AND "
              "rollout_devices.action_id IS NULL AND rollout_devices.skipped IS NULL",
              {r.id, wave}));
  ALOFT_RETURN_IF_ERROR(c.Query(
      "INSERT INTO action_events (action_id, at_ms, status, details) SELECT id, ?, 'created', ? "
      "FROM actions WHERE rollout_id = ? AND id >= ? AND id <= ?",
      {now, "by rollout " + r.spec.name + ", wave " + std::to_string(wave), r.id, lo, hi}));
  return OkStatus();
}

Result<RolloutEngine::InstallWindow> RolloutEngine::WindowFor(
    int64_t rollout_id, std::chrono::system_clock::time_point now) {
  std::shared_ptr<Cached> cached;
  {
    std::lock_guard lock(cache_mu_);
    auto it = cache_.find(rollout_id);
    if (it != cache_.end()) cached = it->second;
  }
  if (!cached) {
    cached = std::make_shared<Cached>();
    ALOFT_RETURN_IF_ERROR(store_.Read([&](Tx& tx) -> aloft::Status {
      ALOFT_ASSIGN_OR_RETURN(
          Rows rows, tx.connection().Query("SELECT maintenance_window FROM rollouts WHERE id = ?",
                                           {rollout_id}));
      if (rows.empty() || rows[0].IsNull(0)) return OkStatus();
      json w = json::parse(rows[0].Text(0), nullptr, false);
      cached->spec =
          WindowSpec{w.value("schedule", ""), w.value("duration", ""), w.value("time_zone", "UTC")};
      ALOFT_ASSIGN_OR_RETURN(
          cached->window, MaintenanceWindow::Parse(cached->spec->schedule, cached->spec->duration,
                                                   cached->spec->time_zone));
      return OkStatus();
    }));
    std::lock_guard lock(cache_mu_);
    if (cache_.size() > 10000) cache_.clear();
    cache_[rollout_id] = cached;
  }
  InstallWindow out;
  if (!cached->window) return out;
  out.spec = cached->spec;
  const int64_t minute =
      std::chrono::duration_cast<std::chrono::minutes>(now.time_since_epoch()).count();
  std::lock_guard lock(cache_mu_);
  if (cached->minute != minute) {  // IsOpen scans the window minute by minute: once a minute
    cached->minute = minute;
    cached->open = cached->window->IsOpen(now);
    cached->next_start = cached->window->NextStart(now);
  }
  out.open = cached->open;
  out.next_start = cached->next_start;
  return out;
}

}  // namespace aloft::server
