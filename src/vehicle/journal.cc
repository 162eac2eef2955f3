#include "vehicle/journal.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/file.h"

namespace aloft::vehicle {

std::string JournalState::ToJson() const {
  nlohmann::json j;
  j["phase"] = phase;
  j["ecus"] = ecus;
  if (!actions.empty()) j["actions"] = actions;
  j["outcome"] = outcome;
  return j.dump(2) + "\n";
}

Result<JournalState> JournalState::FromJson(const std::string& text, const std::string& origin) {
  auto bad = [&](const std::string& why) {
    return Error(Code::kMalformed, origin + ": campaign journal " + why);
  };
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return bad("is not a JSON object");
  JournalState s;
  if (!j.contains("phase") || !j["phase"].is_string()) return bad("has no phase");
  s.phase = j["phase"];
  if (s.phase != "transfer" && s.phase != "activate" && s.phase != "rollback" &&
      s.phase != "done") {
    return bad("phase '" + s.phase + "' is unknown");
  }
  if (!j.contains("ecus") || !j["ecus"].is_object()) return bad("has no ecus");
  for (const auto& [name, state] : j["ecus"].items()) {
    if (!state.is_string()) return bad("state of " + name + " is not a string");
    s.ecus[name] = state;
  }
  if (j.contains("outcome") && j["outcome"].is_string()) s.outcome = j["outcome"];
  if (j.contains("actions")) {
    if (!j["actions"].is_object()) return bad("actions is not an object");
    for (const auto& [name, id] : j["actions"].items()) {
      if (!id.is_number_integer()) return bad("action of " + name + " is not an integer");
      s.actions[name] = id.get<int64_t>();
    }
  }
  return s;
}

Status FileJournal::Save(const JournalState& state) {
  return WriteFileAtomic(path_, state.ToJson(), 0600);
}

Result<std::optional<JournalState>> FileJournal::Load() {
  if (!std::filesystem::exists(path_)) return std::optional<JournalState>();
  ALOFT_ASSIGN_OR_RETURN(std::string text, ReadFile(path_, 1 << 20));
  ALOFT_ASSIGN_OR_RETURN(JournalState s, JournalState::FromJson(text, path_));
  return std::optional<JournalState>(std::move(s));
}

}  // namespace aloft::vehicle
