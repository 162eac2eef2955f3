// The rollout engine's reads that its parts share (private to src/server): rollout.cc (the
// engine's changes and steps) and rollout_status.cc (a rollout's status for the API).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "server/rollout.h"
#include "server/store.h"

namespace aloft::server {

// The rollout named `name`; kNotFound names it.
Result<Rollout> GetRollout(Tx& tx, const std::string& name);
// Members per wave and state (WaveStatus::by_state); only wave `wave` when given.
Result<std::map<int64_t, WaveStatus>> MemberCounts(Tx& tx, int64_t rollout_id,
                                                   std::optional<int64_t> wave);

}  // namespace aloft::server
