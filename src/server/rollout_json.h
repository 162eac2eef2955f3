// The stored form of a rollout's parts (private to src/server): the filter, the waves and the
// maintenance window as the JSON the rollouts table keeps, shared by rollout_json.cc (the API's
// JSON) and rollout.cc (the engine, which writes and reads the rows).
#pragma once

#include <nlohmann/json.hpp>
#include <vector>

#include "server/rollout.h"

namespace aloft::server {

// The filter / wave `index` from its JSON; kInvalidArgument names the field that is wrong.
Result<RolloutFilter> ParseFilter(const nlohmann::json& j);
Result<WaveSpec> ParseWave(const nlohmann::json& j, size_t index);
nlohmann::json FilterJson(const RolloutFilter& f);
nlohmann::json WavesJson(const std::vector<WaveSpec>& waves);
nlohmann::json WindowJson(const WindowSpec& w);

}  // namespace aloft::server
