// A rollout's status for the management API (rollout.h, docs/rollouts.md): counts per wave and
// state, rates, bytes, durations, and its progress over time.
#include <algorithm>
#include <cmath>

#include "server/rollout.h"
#include "server/rollout_rows.h"

namespace aloft::server {

using db::Rows;

namespace {

// The rollout's results counted in steps of time, grouped by the database (one row per step and
// state, however many devices): cumulative counts at the end of each step.
aloft::Status Timeline(Tx& tx, int64_t rollout_id, std::vector<RolloutStatus::Point>& out) {
  constexpr const char* kDone = "rollout_id = ? AND state IN ('succeeded', 'failed')";
  ALOFT_ASSIGN_OR_RETURN(
      Rows span,
      tx.connection().Query(
          std::string("SELECT MIN(updated_ms), MAX(updated_ms) FROM actions WHERE ") + kDone,
          {rollout_id}));
  if (span.empty() || span[0].IsNull(0)) return OkStatus();
  const int64_t first = span[0].Int(0), last = span[0].Int(1);
  const int64_t step = std::max<int64_t>(1000, (last - first) / 100 + 1);
  ALOFT_ASSIGN_OR_RETURN(
      Rows rows,
      tx.connection().Query(std::string("SELECT (updated_ms - ?) / ?, state, COUNT(*) FROM actions "
                                        "WHERE ") +
                                kDone + " GROUP BY 1, 2 ORDER BY 1",
                            {first, step, rollout_id}));
  RolloutStatus::Point p;
  int64_t bucket = -1;
  for (const auto& r : rows) {
    if (r.Int(0) != bucket) {
      if (bucket >= 0) out.push_back(p);
      bucket = r.Int(0);
      p.at_ms = first + (bucket + 1) * step;
    }
    (r.Text(1) == "succeeded" ? p.succeeded : p.failed) += r.Int(2);
  }
  if (bucket >= 0) out.push_back(p);
  return OkStatus();
}

}  // namespace

Result<RolloutStatus> RolloutEngine::StatusOf(const std::string& name) {
  RolloutStatus st;
  ALOFT_RETURN_IF_ERROR(store_.Read([&](Tx& tx) -> aloft::Status {
    ALOFT_ASSIGN_OR_RETURN(st.rollout, GetRollout(tx, name));
    const int64_t id = st.rollout.id;
    st.waves.clear();
    for (size_t i = 0; i < st.rollout.spec.waves.size(); ++i) {
      st.waves.push_back({static_cast<int64_t>(i + 1), 0, {}});
    }
    ALOFT_ASSIGN_OR_RETURN(auto counts, MemberCounts(tx, id, std::nullopt));
    for (auto& [w, ws] : counts) {
      if (w < 1 || w > static_cast<int64_t>(st.waves.size())) continue;
      st.waves[w - 1] = std::move(ws);
    }
    for (const auto& ws : st.waves) {
      st.devices += ws.devices;
      st.succeeded += ws.succeeded();
      st.failed += ws.failed();
    }
    ALOFT_ASSIGN_OR_RETURN(Release rel, tx.GetReleaseById(st.rollout.release_id));
    const int64_t full = static_cast<int64_t>(rel.artifact.size);
    ALOFT_ASSIGN_OR_RETURN(
        Rows bytes,
        tx.connection().Query(
            "SELECT COUNT(*), COALESCE(SUM(CASE WHEN x.size IS NULL THEN ? ELSE x.size END), 0), "
            "COALESCE(SUM(CASE WHEN x.size IS NULL THEN 0 ELSE ? - x.size END), 0) FROM actions a "
            "LEFT JOIN deltas x ON x.id = a.delta_id WHERE a.rollout_id = ? AND (a.state IN "
            "('downloaded', 'installing', 'installed', 'succeeded') OR EXISTS (SELECT 1 FROM "
            "action_events e WHERE e.action_id = a.id AND e.status = 'downloaded'))",
            {full, full, id}));
    st.downloads = bytes.at(0).Int(0);
    st.download_bytes = bytes.at(0).Int(1);
    st.bytes_saved = bytes.at(0).Int(2);
    ALOFT_ASSIGN_OR_RETURN(
        Rows durations,
        tx.connection().Query("SELECT updated_ms - created_ms FROM actions WHERE rollout_id = ? "
                              "AND state = 'succeeded' ORDER BY 1",
                              {id}));
    ALOFT_RETURN_IF_ERROR(Timeline(tx, id, st.timeline));
    if (!durations.empty()) {
      auto at = [&](double q) {
        size_t i = static_cast<size_t>(std::ceil(q * static_cast<double>(durations.size()))) - 1;
        return durations[std::min(i, durations.size() - 1)].Int(0);
      };
      st.median_ms = at(0.5);
      st.p95_ms = at(0.95);
    }
    return OkStatus();
  }));
  return st;
}

}  // namespace aloft::server
