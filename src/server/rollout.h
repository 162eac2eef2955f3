// Rollouts: a release sent to the devices a filter selects, wave after wave, each wave gated by a
// success threshold and stopped by an error threshold, inside a start time, an expiry and a
// maintenance window (docs/rollouts.md).
//
// The engine is a state machine over the database: operators change a rollout through
// Create/Approve/Pause/Resume/Confirm/Cancel, and Tick(now) moves every live rollout on. Tick runs
// on one server of a cluster at a time: it holds the `rollouts` lease, and every transaction it
// commits first renews that lease conditionally, so a server that lost the lease (paused, cut
// off) cannot commit an action another server also creates.
//
//   RolloutEngine engine(store, "host-a:1234");
//   ALOFT_ASSIGN_OR_RETURN(RolloutSpec spec, ParseRolloutSpec(request_body));
//   ALOFT_ASSIGN_OR_RETURN(Rollout r, engine.Create(spec, "token:alice", now_ms));
//   ...
//   ALOFT_ASSIGN_OR_RETURN(bool leader, engine.Tick(now_ms));   // every second, on every server
//
// Errors: kNotFound for an unknown rollout or release; kInvalidArgument for a spec that breaks a
// rule (naming the field); kAlreadyExists for a change the rollout's state does not allow ("rollout
// 'r1' is finished; it cannot be paused"); kPermissionDenied when the approver is the creator.
// Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "server/schedule.h"
#include "server/store.h"

namespace aloft::server {

enum class RolloutState {
  kAwaitingApproval,
  kScheduled,
  kRunning,
  kAwaitingConfirmation,
  kPaused,
  kFinished,
  kCanceled,
  kExpired
};
std::string_view RolloutStateName(RolloutState s);
Result<RolloutState> ParseRolloutState(std::string_view name);
bool IsTerminal(RolloutState s);

// Each set field narrows the selection; a list matches any of its values.
struct RolloutFilter {
  std::optional<std::string> device_type;
  std::optional<std::string> module;  // whose version `versions` tests; default the release's first
  std::vector<std::string> groups, tags, devices, versions;
  std::map<std::string, std::string> attributes;  // every key must have this value
};

struct WaveSpec {
  std::optional<double> percent;  // of the devices matched at the start
  std::optional<int64_t> count;
  int success_threshold = 90;  // % of the wave succeeded: the next wave starts
  int error_threshold = 10;    // % of the wave failed (strictly more): the rollout pauses
  bool confirm = false;        // the next wave waits for Confirm
};

struct WindowSpec {
  std::string schedule, duration, time_zone = "UTC";
};

struct RolloutSpec {
  std::string name;
  std::string release;  // NAME@VERSION
  RolloutFilter filter;
  std::vector<WaveSpec> waves;  // at least one; the last takes every device left
  std::string mode = "forced";  // forced | soft | download-only
  bool dynamic = false;         // devices that match later join the current wave
  std::optional<WindowSpec> window;
  std::optional<int64_t> start_ms, expires_ms;
  bool needs_approval = false;
  bool push = false;  // each wave's commands are pushed over MQTT as it starts
};

// The JSON body of POST /api/v1/rollouts (docs/rollouts.md). kInvalidArgument names the field.
Result<RolloutSpec> ParseRolloutSpec(std::string_view json_text);
std::string RolloutSpecJson(const RolloutSpec& spec);

struct Rollout {
  int64_t id = 0;
  int64_t release_id = 0;
  RolloutSpec spec;
  RolloutState state = RolloutState::kScheduled;
  int64_t wave = 0;  // 1-based; 0 before the start
  std::string reason;
  int64_t errors_accepted_wave = 0;  // the wave whose errors an operator accepted by resuming
  int64_t created_ms = 0, updated_ms = 0;
  std::string created_by;
  std::optional<int64_t> approved_ms;
  std::optional<std::string> approved_by;
};

struct WaveStatus {
  int64_t index = 0;  // 1-based
  int64_t devices = 0;
  // Action states, plus "waiting" (no action yet: the device has another open one) and
  // "skipped" (the release may not go to it, or it already runs it).
  std::map<std::string, int64_t> by_state;
  int64_t counted() const { return devices - Get("skipped"); }  // what thresholds count
  int64_t succeeded() const { return Get("succeeded"); }
  int64_t failed() const { return Get("failed"); }
  int64_t Get(const std::string& s) const {
    auto it = by_state.find(s);
    return it == by_state.end() ? 0 : it->second;
  }
};

struct RolloutStatus {
  Rollout rollout;
  std::vector<WaveStatus> waves;
  int64_t devices = 0, succeeded = 0, failed = 0;
  int64_t downloads = 0;       // actions whose download completed
  int64_t download_bytes = 0;  // what those downloads were offered (delta or full image)
  int64_t bytes_saved = 0;     // full image size minus delta size, summed over delta downloads
  std::optional<int64_t> median_ms, p95_ms;  // created to succeeded
  // Progress over time: the devices succeeded and failed by the end of each of at most about 100
  // equal steps from the first result to the last (the dashboard's chart).
  struct Point {
    int64_t at_ms = 0, succeeded = 0, failed = 0;
  };
  std::vector<Point> timeline;
};

// The management API's JSON for a rollout (its spec, state and history), and for its status
// (that, plus per-wave counts, rates, bytes and durations).
std::string RolloutJson(const Rollout& r);
std::string RolloutStatusJson(const RolloutStatus& s);

class RolloutEngine {
 public:
  // `holder` names this server in the lease (host and process). `signed_only`: plain-artifact
  // releases are not rolled out (require_signed_releases).
  RolloutEngine(Store& store, std::string holder,
                std::chrono::milliseconds lease = std::chrono::seconds(10),
                bool signed_only = false);

  // Checks the spec against the store (release, types, modules) and stores the rollout as
  // awaiting-approval or scheduled; audits it.
  Result<Rollout> Create(const RolloutSpec& spec, const std::string& actor, int64_t now);
  Result<Rollout> Get(const std::string& name);
  Result<std::vector<Rollout>> List();
  Result<RolloutStatus> StatusOf(const std::string& name);

  // The operator's changes; `remark` (may be "") is kept in the rollout's reason and the audit.
  Result<Rollout> Approve(const std::string& name, const std::string& actor, int64_t now,
                          const std::string& remark = "");
  // Refuses a rollout awaiting approval: it ends canceled, "denied by <actor>: <remark>".
  Result<Rollout> Deny(const std::string& name, const std::string& actor, int64_t now,
                       const std::string& remark = "");
  Result<Rollout> Pause(const std::string& name, const std::string& actor, int64_t now,
                        const std::string& remark = "");
  Result<Rollout> Resume(const std::string& name, const std::string& actor, int64_t now,
                         const std::string& remark = "");
  Result<Rollout> Confirm(const std::string& name, const std::string& actor, int64_t now,
                          const std::string& remark = "");
  // Cancels the rollout and its actions that have not started installing.
  Result<Rollout> Cancel(const std::string& name, const std::string& actor, int64_t now,
                         const std::string& remark = "");

  // Takes or renews the lease; when this server holds it, moves every live rollout on. Returns
  // whether this server is the leader. A rollout whose step fails is left as it was and the others
  // still move; its error is kept for TakeFailures (only a lost lease or database stops the tick).
  Result<bool> Tick(int64_t now);
  // The errors of rollouts whose step failed since the last call: "rollout 'x': <error>".
  std::vector<std::string> TakeFailures();

  // Whether a device with an action of rollout `id` may install at `now`: false outside the
  // rollout's maintenance window. The window of each rollout is read once and cached.
  struct InstallWindow {
    bool open = true;
    std::optional<WindowSpec> spec;  // none: the rollout has no window
    std::optional<std::chrono::system_clock::time_point> next_start;
  };
  Result<InstallWindow> WindowFor(int64_t rollout_id, std::chrono::system_clock::time_point now);

  const std::string& holder() const { return holder_; }

 private:
  std::mutex failures_mu_;
  std::vector<std::string> failures_;
  struct Cached {
    std::optional<MaintenanceWindow> window;
    std::optional<WindowSpec> spec;
    int64_t minute = -1;  // the minute `open` and `next_start` were computed for
    bool open = true;
    std::optional<std::chrono::system_clock::time_point> next_start;
  };

  Status Fence(Tx& tx, int64_t now);
  Status Step(Tx& tx, Rollout& r, int64_t now);
  Status Start(Tx& tx, Rollout& r, const Release& rel, int64_t now);
  Status JoinNewDevices(Tx& tx, Rollout& r, const Release& rel);
  Status CreateWaveActions(Tx& tx, const Rollout& r, const Release& rel, int64_t wave, int64_t now);
  Status AdvanceWave(Tx& tx, Rollout& r, const Release& rel, int64_t now);
  Status CancelActions(Tx& tx, const Rollout& r, const std::string& why, int64_t now);
  Status Save(Tx& tx, const Rollout& r, int64_t now);
  // Runs `change` on the named rollout in one transaction with an audit entry.
  Result<Rollout> Change(const std::string& name, const std::string& actor, int64_t now,
                         const char* audit_action, const std::string& remark,
                         const std::function<Status(Tx&, Rollout&)>& change);

  Store& store_;
  std::string holder_;
  std::chrono::milliseconds lease_;
  bool signed_only_;
  std::mutex cache_mu_;
  std::map<int64_t, std::shared_ptr<Cached>> cache_;
};

}  // namespace aloft::server
