// Rollouts as JSON: the spec operators write (docs/rollouts.md), its stored parts, and the
// management API's views of rollouts and their status.
#include "server/rollout_json.h"

#include <cmath>
#include <utility>

#include "core/canonical_json.h"
#include "core/clock.h"
#include "pkg/manifest.h"
#include "server/rollout.h"

namespace aloft::server {
namespace {

using json = nlohmann::json;

Error Invalid(std::string message) { return Error(Code::kInvalidArgument, std::move(message)); }

constexpr std::pair<RolloutState, std::string_view> kStateNames[] = {
    {RolloutState::kAwaitingApproval, "awaiting-approval"},
    {RolloutState::kScheduled, "scheduled"},
    {RolloutState::kRunning, "running"},
    {RolloutState::kAwaitingConfirmation, "awaiting-confirmation"},
    {RolloutState::kPaused, "paused"},
    {RolloutState::kFinished, "finished"},
    {RolloutState::kCanceled, "canceled"},
    {RolloutState::kExpired, "expired"},
};

Result<std::vector<std::string>> StringList(const json& j, const std::string& field, size_t max) {
  if (!j.is_array()) return Invalid("field '" + field + "' must be an array of strings");
  if (j.size() > max) {
    return Invalid("field '" + field + "' has " + std::to_string(j.size()) + " entries; at most " +
                   std::to_string(max));
  }
  std::vector<std::string> out;
  for (const auto& e : j) {
    if (!e.is_string() || e.get<std::string>().empty()) {
      return Invalid("field '" + field + "' must hold non-empty strings");
    }
    out.push_back(e.get<std::string>());
  }
  return out;
}

Result<std::string> String(const json& j, const std::string& field) {
  if (!j.is_string() || j.get<std::string>().empty()) {
    return Invalid("field '" + field + "' must be a non-empty string");
  }
  return j.get<std::string>();
}

Result<int> Percent(const json& j, const std::string& field) {
  if (!j.is_number() || j.get<double>() < 0 || j.get<double>() > 100) {
    return Invalid("field '" + field + "' must be a percentage from 0 to 100");
  }
  return static_cast<int>(std::lround(j.get<double>()));
}

Result<int64_t> Time(const json& j, const std::string& field) {
  if (j.is_number_integer()) return j.get<int64_t>();  // milliseconds since the epoch
  if (!j.is_string()) return Invalid("field '" + field + "' must be an RFC 3339 time");
  auto t = ParseRfc3339(j.get<std::string>());
  if (!t) {
    return Invalid("field '" + field + "': '" + j.get<std::string>() +
                   "' is not an RFC 3339 time like 2026-11-22T02:00:00Z");
  }
  return std::chrono::duration_cast<std::chrono::milliseconds>(t->time_since_epoch()).count();
}

}  // namespace

// ---- the spec as JSON ----

Result<RolloutFilter> ParseFilter(const json& j) {
  RolloutFilter f;
  if (!j.is_object()) return Invalid("field 'filter' must be an object");
  for (const auto& [k, v] : j.items()) {
    std::string field = "filter." + k;
    if (k == "device_type") {
      ALOFT_ASSIGN_OR_RETURN(f.device_type, String(v, field));
    } else if (k == "module") {
      ALOFT_ASSIGN_OR_RETURN(f.module, String(v, field));
    } else if (k == "groups") {
      ALOFT_ASSIGN_OR_RETURN(f.groups, StringList(v, field, 1000));
    } else if (k == "tags") {
      ALOFT_ASSIGN_OR_RETURN(f.tags, StringList(v, field, 1000));
    } else if (k == "devices") {
      ALOFT_ASSIGN_OR_RETURN(f.devices, StringList(v, field, 10000));
    } else if (k == "versions") {
      ALOFT_ASSIGN_OR_RETURN(f.versions, StringList(v, field, 1000));
    } else if (k == "attributes") {
      if (!v.is_object()) return Invalid("field 'filter.attributes' must be an object");
      for (const auto& [ak, av] : v.items()) {
        f.attributes[ak] = av.is_string() ? av.get<std::string>() : DumpJson(av);
      }
    } else {
      return Invalid("unknown field '" + field +
                     "' (known: device_type, module, groups, tags, devices, versions, attributes)");
    }
  }
  return f;
}

Result<WaveSpec> ParseWave(const json& j, size_t index) {
  WaveSpec w;
  std::string at = "waves[" + std::to_string(index) + "]";
  if (!j.is_object()) return Invalid("field '" + at + "' must be an object");
  for (const auto& [k, v] : j.items()) {
    std::string field = at + "." + k;
    if (k == "percent") {
      if (!v.is_number() || v.get<double>() <= 0 || v.get<double>() > 100) {
        return Invalid("field '" + field + "' must be a number above 0 and at most 100");
      }
      w.percent = v.get<double>();
    } else if (k == "count") {
      if (!v.is_number_integer() || v.get<int64_t>() < 1) {
        return Invalid("field '" + field + "' must be a positive integer");
      }
      w.count = v.get<int64_t>();
    } else if (k == "success_threshold") {
      ALOFT_ASSIGN_OR_RETURN(w.success_threshold, Percent(v, field));
    } else if (k == "error_threshold") {
      ALOFT_ASSIGN_OR_RETURN(w.error_threshold, Percent(v, field));
    } else if (k == "confirm") {
      if (!v.is_boolean()) return Invalid("field '" + field + "' must be true or false");
      w.confirm = v.get<bool>();
    } else {
      return Invalid("unknown field '" + field +
                     "' (known: percent, count, success_threshold, error_threshold, confirm)");
    }
  }
  if (w.percent && w.count) return Invalid("field '" + at + "' has both 'percent' and 'count'");
  return w;
}

json FilterJson(const RolloutFilter& f) {
  json j = json::object();
  if (f.device_type) j["device_type"] = *f.device_type;
  if (f.module) j["module"] = *f.module;
  if (!f.groups.empty()) j["groups"] = f.groups;
  if (!f.tags.empty()) j["tags"] = f.tags;
  if (!f.devices.empty()) j["devices"] = f.devices;
  if (!f.versions.empty()) j["versions"] = f.versions;
  if (!f.attributes.empty()) j["attributes"] = f.attributes;
  return j;
}

json WavesJson(const std::vector<WaveSpec>& waves) {
  json out = json::array();
  for (const auto& w : waves) {
    json j = {{"success_threshold", w.success_threshold},
              {"error_threshold", w.error_threshold},
              {"confirm", w.confirm}};
    if (w.percent) j["percent"] = *w.percent;
    if (w.count) j["count"] = *w.count;
    out.push_back(std::move(j));
  }
  return out;
}

json WindowJson(const WindowSpec& w) {
  return {{"schedule", w.schedule}, {"duration", w.duration}, {"time_zone", w.time_zone}};
}

std::string_view RolloutStateName(RolloutState s) {
  for (const auto& [state, name] : kStateNames) {
    if (state == s) return name;
  }
  return "?";
}

Result<RolloutState> ParseRolloutState(std::string_view name) {
  for (const auto& [state, n] : kStateNames) {
    if (n == name) return state;
  }
  return Invalid("unknown rollout state '" + std::string(name) + "'");
}

bool IsTerminal(RolloutState s) {
  return s == RolloutState::kFinished || s == RolloutState::kCanceled ||
         s == RolloutState::kExpired;
}

Result<RolloutSpec> ParseRolloutSpec(std::string_view text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded()) return Invalid("the rollout is not valid JSON");
  if (!j.is_object()) return Invalid("the rollout must be a JSON object");
  RolloutSpec s;
  bool has_name = false, has_release = false;
  for (const auto& [k, v] : j.items()) {
    if (k == "name") {
      ALOFT_ASSIGN_OR_RETURN(s.name, String(v, k));
      if (!pkg::IsValidName(s.name, 128)) {
        return Invalid("rollout name '" + s.name +
                       "' must be 1-128 letters, digits, '.', '_', '-' and start with a letter or "
                       "digit");
      }
      has_name = true;
    } else if (k == "release") {
      ALOFT_ASSIGN_OR_RETURN(s.release, String(v, k));
      auto at = s.release.find('@');
      if (at == std::string::npos || at == 0 || at + 1 == s.release.size()) {
        return Invalid("field 'release' must be NAME@VERSION, got '" + s.release + "'");
      }
      has_release = true;
    } else if (k == "filter") {
      ALOFT_ASSIGN_OR_RETURN(s.filter, ParseFilter(v));
    } else if (k == "waves") {
      if (!v.is_array() || v.empty() || v.size() > 100) {
        return Invalid("field 'waves' must be an array of 1 to 100 waves");
      }
      for (size_t i = 0; i < v.size(); ++i) {
        ALOFT_ASSIGN_OR_RETURN(WaveSpec w, ParseWave(v[i], i));
        s.waves.push_back(w);
      }
    } else if (k == "mode") {
      ALOFT_ASSIGN_OR_RETURN(s.mode, String(v, k));
      if (s.mode != "forced" && s.mode != "soft" && s.mode != "download-only") {
        return Invalid("mode '" + s.mode + "' is not one of forced, soft, download-only");
      }
    } else if (k == "dynamic") {
      if (!v.is_boolean()) return Invalid("field 'dynamic' must be true or false");
      s.dynamic = v.get<bool>();
    } else if (k == "approval") {
      if (!v.is_boolean()) return Invalid("field 'approval' must be true or false");
      s.needs_approval = v.get<bool>();
    } else if (k == "push") {
      if (!v.is_boolean()) return Invalid("field 'push' must be true or false");
      s.push = v.get<bool>();
    } else if (k == "start_at") {
      ALOFT_ASSIGN_OR_RETURN(s.start_ms, Time(v, k));
    } else if (k == "expires_at") {
      ALOFT_ASSIGN_OR_RETURN(s.expires_ms, Time(v, k));
    } else if (k == "maintenance_window") {
      if (!v.is_object()) return Invalid("field 'maintenance_window' must be an object");
      WindowSpec w;
      for (const auto& [wk, wv] : v.items()) {
        std::string field = "maintenance_window." + wk;
        if (wk == "schedule") {
          ALOFT_ASSIGN_OR_RETURN(w.schedule, String(wv, field));
        } else if (wk == "duration") {
          ALOFT_ASSIGN_OR_RETURN(w.duration, String(wv, field));
        } else if (wk == "time_zone") {
          ALOFT_ASSIGN_OR_RETURN(w.time_zone, String(wv, field));
        } else {
          return Invalid("unknown field '" + field + "' (known: schedule, duration, time_zone)");
        }
      }
      auto parsed = MaintenanceWindow::Parse(w.schedule, w.duration, w.time_zone);
      if (!parsed.ok()) {
        return Invalid("field 'maintenance_window': " + parsed.error().message());
      }
      s.window = std::move(w);
    } else {
      return Invalid("unknown field '" + k +
                     "' (known: name, release, filter, waves, mode, dynamic, approval, push, "
                     "start_at, expires_at, maintenance_window)");
    }
  }
  if (!has_name) return Invalid("field 'name' is missing");
  if (!has_release) return Invalid("field 'release' is missing");
  if (s.waves.empty()) s.waves.push_back(WaveSpec{});
  if (s.start_ms && s.expires_ms && *s.expires_ms <= *s.start_ms) {
    return Invalid("field 'expires_at' must be after 'start_at'");
  }
  return s;
}

namespace {
json SpecObject(const RolloutSpec& s) {
  json j = {{"name", s.name},
            {"release", s.release},
            {"filter", FilterJson(s.filter)},
            {"waves", WavesJson(s.waves)},
            {"mode", s.mode},
            {"dynamic", s.dynamic},
            {"approval", s.needs_approval},
            {"push", s.push}};
  if (s.window) j["maintenance_window"] = WindowJson(*s.window);
  if (s.start_ms) j["start_at"] = *s.start_ms;
  if (s.expires_ms) j["expires_at"] = *s.expires_ms;
  return j;
}
}  // namespace

std::string RolloutSpecJson(const RolloutSpec& s) { return DumpJson(SpecObject(s)); }

// ---- the API's JSON ----

namespace {

json RolloutObject(const Rollout& r) {
  json j = SpecObject(r.spec);
  if (r.spec.start_ms) j["start_at"] = FormatRfc3339Ms(*r.spec.start_ms);
  if (r.spec.expires_ms) j["expires_at"] = FormatRfc3339Ms(*r.spec.expires_ms);
  j["id"] = r.id;
  j["state"] = RolloutStateName(r.state);
  j["wave"] = r.wave;
  j["reason"] = r.reason;
  j["created"] = FormatRfc3339Ms(r.created_ms);
  j["created_by"] = r.created_by;
  j["updated"] = FormatRfc3339Ms(r.updated_ms);
  if (r.approved_by) {
    j["approved_by"] = *r.approved_by;
    j["approved"] = FormatRfc3339Ms(r.approved_ms.value_or(0));
  }
  return j;
}

double Rate(int64_t part, int64_t whole) {
  return whole == 0 ? 0.0 : std::round(1000.0 * static_cast<double>(part) / whole) / 10.0;
}

}  // namespace

std::string RolloutJson(const Rollout& r) { return DumpJson(RolloutObject(r)); }

std::string RolloutStatusJson(const RolloutStatus& s) {
  json j = RolloutObject(s.rollout);
  json waves = json::array();
  for (const auto& w : s.waves) {
    json wj = {{"wave", w.index}, {"devices", w.devices}, {"states", w.by_state}};
    const int64_t counted = w.counted();
    wj["success_rate"] = Rate(w.succeeded(), counted);
    wj["error_rate"] = Rate(w.failed(), counted);
    const WaveSpec& spec = s.rollout.spec.waves[w.index - 1];
    wj["success_threshold"] = spec.success_threshold;
    wj["error_threshold"] = spec.error_threshold;
    waves.push_back(std::move(wj));
  }
  j["waves"] = std::move(waves);
  j["devices"] = s.devices;
  j["succeeded"] = s.succeeded;
  j["failed"] = s.failed;
  j["success_rate"] = Rate(s.succeeded, s.devices);
  j["error_rate"] = Rate(s.failed, s.devices);
  j["downloads"] = s.downloads;
  j["download_bytes"] = s.download_bytes;
  j["bytes_saved"] = s.bytes_saved;
  j["duration_median_s"] = s.median_ms ? json(*s.median_ms / 1000.0) : json(nullptr);
  j["duration_p95_s"] = s.p95_ms ? json(*s.p95_ms / 1000.0) : json(nullptr);
  json timeline = json::array();
  for (const auto& p : s.timeline) {
    timeline.push_back(
        {{"at", FormatRfc3339Ms(p.at_ms)}, {"succeeded", p.succeeded}, {"failed", p.failed}});
  }
  j["timeline"] = std::move(timeline);
  return DumpJson(j);
}

}  // namespace aloft::server
