// The Store's answer to "what changed?" for the dashboard's live feed (store.h, events.h): every
// query reads an index by time or id, so that a look costs the same with 100 or 100,000 devices.
#include "server/store.h"

namespace aloft::server {

using db::Rows;

namespace {

// Rows of `sql` (whose parameters are a time and a limit, and whose last column is the row's
// updated_ms) changed after `mark` - `overlap_ms`, each made into a T by `fill`; `mark` is raised
// to the newest.
template <typename T, typename Fill>
Status Newer(db::Connection& c, const char* sql, int64_t overlap_ms, int64_t limit, int64_t& mark,
             std::vector<T>& out, Fill fill) {
  ALOFT_ASSIGN_OR_RETURN(Rows rows, c.Query(sql, {mark - overlap_ms, limit}));
  int64_t newest = mark;
  for (const auto& r : rows) {
    T t = fill(r);
    t.updated_ms = r.Int(r.size() - 1);
    newest = std::max(newest, t.updated_ms);
    out.push_back(std::move(t));
  }
  mark = newest;
  return OkStatus();
}

}  // namespace

Result<Changes> Tx::ChangesSince(const ChangeMarks& since, int64_t overlap_ms, int64_t limit) {
  Changes out;
  out.marks = since;
  ALOFT_RETURN_IF_ERROR(
      Newer(c_,
            "SELECT id, name, state, wave, updated_ms FROM rollouts WHERE updated_ms > ? ORDER BY "
            "updated_ms LIMIT ?",
            overlap_ms, limit, out.marks.rollouts_ms, out.rollouts, [](const db::Row& r) {
              return Changes::Rollout{.id = r.Int(0),
                                      .wave = r.Int(3),
                                      .updated_ms = 0,
                                      .name = r.Text(1),
                                      .state = r.Text(2)};
            }));
  ALOFT_RETURN_IF_ERROR(Newer(
      c_,
      "SELECT a.id, d.name, a.state, r.name, a.updated_ms FROM actions a JOIN devices d ON d.id = "
      "a.device_id LEFT JOIN rollouts r ON r.id = a.rollout_id WHERE a.updated_ms > ? ORDER BY "
      "a.updated_ms LIMIT ?",
      overlap_ms, limit, out.marks.actions_ms, out.actions, [](const db::Row& r) {
        return Changes::Action{.id = r.Int(0),
                               .updated_ms = 0,
                               .device = r.Text(1),
                               .state = r.Text(2),
                               .rollout = r.OptText(3)};
      }));
  ALOFT_RETURN_IF_ERROR(Newer(
      c_,
      "SELECT x.id, r.name || ' ' || r.version, x.base_version, x.state, x.updated_ms FROM deltas "
      "x JOIN releases r ON r.id = x.release_id WHERE x.updated_ms > ? ORDER BY x.updated_ms "
      "LIMIT ?",
      overlap_ms, limit, out.marks.deltas_ms, out.deltas, [](const db::Row& r) {
        return Changes::Delta{.id = r.Int(0),
                              .updated_ms = 0,
                              .release = r.Text(1),
                              .base = r.Text(2),
                              .state = r.Text(3)};
      }));
  // Whether any device made contact: the newest contact time (one index read) is enough.
  ALOFT_ASSIGN_OR_RETURN(Rows seen, c_.Query("SELECT MAX(last_seen_ms) FROM devices"));
  if (auto ms = seen.at(0).OptInt(0); ms && *ms > since.seen_ms) {
    out.devices_seen = true;
    out.marks.seen_ms = *ms;
  }
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
