// The Store's answer to "what changed?" for the dashboard's live feed (store.h, events.h): every
// query reads an index by time or id, so that a look costs the same with 100 or 100,000 devices.
#include "server/store.h"

namespace aloft::server {

using db::Rows;

Result<Changes> Tx::ChangesSince(const ChangeMarks& since, int64_t overlap_ms, int64_t limit) {
  Changes out;
  out.marks = since;
  ALOFT_ASSIGN_OR_RETURN(
      Rows rollouts,
      c_.Query("SELECT id, name, state, wave, updated_ms FROM rollouts WHERE updated_ms > ? "
               "ORDER BY updated_ms LIMIT ?",
               {since.rollouts_ms - overlap_ms, limit}));
  for (const auto& r : rollouts) {
    Changes::Rollout c;
    c.id = r.Int(0);
    c.name = r.Text(1);
    c.state = r.Text(2);
    c.wave = r.Int(3);
    c.updated_ms = r.Int(4);
    out.marks.rollouts_ms = std::max(out.marks.rollouts_ms, c.updated_ms);
    out.rollouts.push_back(std::move(c));
  }
  ALOFT_ASSIGN_OR_RETURN(
      Rows actions,
      c_.Query("SELECT a.id, d.name, a.state, r.name, a.updated_ms FROM actions a JOIN devices d "
               "ON d.id = a.device_id LEFT JOIN rollouts r ON r.id = a.rollout_id WHERE "
               "a.updated_ms > ? ORDER BY a.updated_ms LIMIT ?",
               {since.actions_ms - overlap_ms, limit}));
  for (const auto& r : actions) {
    Changes::Action c;
    c.id = r.Int(0);
    c.device = r.Text(1);
    c.state = r.Text(2);
    c.rollout = r.OptText(3);
    c.updated_ms = r.Int(4);
    out.marks.actions_ms = std::max(out.marks.actions_ms, c.updated_ms);
    out.actions.push_back(std::move(c));
  }
  ALOFT_ASSIGN_OR_RETURN(
      Rows deltas,
      c_.Query("SELECT x.id, r.name || ' ' || r.version, x.base_version, x.state, x.updated_ms "
               "FROM deltas x JOIN releases r ON r.id = x.release_id WHERE x.updated_ms > ? "
               "ORDER BY x.updated_ms LIMIT ?",
               {since.deltas_ms - overlap_ms, limit}));
  for (const auto& r : deltas) {
    Changes::Delta c;
    c.id = r.Int(0);
    c.release = r.Text(1);
    c.base = r.Text(2);
    c.state = r.Text(3);
    c.updated_ms = r.Int(4);
    out.marks.deltas_ms = std::max(out.marks.deltas_ms, c.updated_ms);
    out.deltas.push_back(std::move(c));
  }
  ALOFT_ASSIGN_OR_RETURN(
      Rows seen, c_.Query("SELECT COUNT(*), MAX(last_seen_ms) FROM devices WHERE last_seen_ms > ?",
                          {since.seen_ms}));
  out.devices_seen = seen.at(0).Int(0);
  if (auto ms = seen.at(0).OptInt(1)) out.marks.seen_ms = std::max(out.marks.seen_ms, *ms);
  ALOFT_ASSIGN_OR_RETURN(
      Rows ids, c_.Query("SELECT (SELECT MAX(id) FROM devices), (SELECT MAX(id) FROM releases), "
                         "(SELECT MAX(id) FROM audit_log)"));
  const int64_t device_id = ids.at(0).Int(0), release_id = ids.at(0).Int(1),
                audit_id = ids.at(0).Int(2);
  out.new_devices = device_id > since.device_id;
  out.new_releases = release_id > since.release_id;
  out.new_audit = audit_id > since.audit_id;
  out.marks.device_id = std::max(since.device_id, device_id);
  out.marks.release_id = std::max(since.release_id, release_id);
  out.marks.audit_id = std::max(since.audit_id, audit_id);
  return out;
}

Result<ChangeMarks> Tx::ChangeMarksNow() {
  ALOFT_ASSIGN_OR_RETURN(
      Rows rows,
      c_.Query("SELECT (SELECT MAX(updated_ms) FROM actions), (SELECT MAX(updated_ms) FROM "
               "rollouts), (SELECT MAX(updated_ms) FROM deltas), (SELECT MAX(last_seen_ms) FROM "
               "devices), (SELECT MAX(id) FROM devices), (SELECT MAX(id) FROM releases), "
               "(SELECT MAX(id) FROM audit_log)"));
  const auto& r = rows.at(0);
  ChangeMarks m;
  m.actions_ms = r.Int(0);
  m.rollouts_ms = r.Int(1);
  m.deltas_ms = r.Int(2);
  m.seen_ms = r.Int(3);
  m.device_id = r.Int(4);
  m.release_id = r.Int(5);
  m.audit_id = r.Int(6);
  return m;
}

}  // namespace aloft::server
