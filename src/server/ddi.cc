#include "server/ddi.h"

#include <algorithm>
#include <array>

#include "core/hash.h"

namespace aloft::server::ddi {

using json = nlohmann::json;

namespace {

Error Invalid(std::string message) { return Error(Code::kInvalidArgument, std::move(message)); }

constexpr std::array<std::string_view, 8> kExecutions = {"closed",     "proceeding", "canceled",
                                                         "scheduled",  "rejected",   "resumed",
                                                         "downloaded", "download"};
constexpr std::array<std::string_view, 3> kFinished = {"success", "failure", "none"};

template <size_t N>
bool OneOf(const std::array<std::string_view, N>& names, const std::string& s) {
  return std::find(names.begin(), names.end(), s) != names.end();
}

// A member that must be a string when present.
Result<std::optional<std::string>> OptString(const json& j, const char* key, const char* path) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::optional<std::string>();
  if (!it->is_string()) {
    return Invalid(std::string(path) + " must be a string, not " + it->type_name());
  }
  return std::optional<std::string>(it->get<std::string>());
}

Result<std::optional<int64_t>> OptInt(const json& j, const char* key, const char* path) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::optional<int64_t>();
  if (!it->is_number_integer()) {
    return Invalid(std::string(path) + " must be an integer, not " + it->type_name());
  }
  return std::optional<int64_t>(it->get<int64_t>());
}

}  // namespace

Result<Feedback> ParseFeedback(const json& body) {
  // "id" (older clients send the action id), "time" and "timestamp" are accepted and not used:
  // the server's clock dates every event.
  auto st = body.find("status");
  if (st == body.end() || !st->is_object()) {
    return Invalid("feedback needs a 'status' object with 'execution' and 'result'");
  }
  Feedback f;
  ALOFT_ASSIGN_OR_RETURN(auto execution, OptString(*st, "execution", "status.execution"));
  if (!execution) return Invalid("missing status.execution");
  f.execution = *execution;
  if (!OneOf(kExecutions, f.execution)) {
    return Invalid("status.execution '" + f.execution +
                   "' is not one of closed, proceeding, canceled, scheduled, rejected, resumed, "
                   "downloaded, download");
  }
  auto result = st->find("result");
  if (result == st->end() || !result->is_object()) {
    return Invalid("feedback needs status.result (an object with 'finished')");
  }
  ALOFT_ASSIGN_OR_RETURN(auto finished, OptString(*result, "finished", "status.result.finished"));
  if (!finished) return Invalid("missing status.result.finished");
  f.finished = *finished;
  if (!OneOf(kFinished, f.finished)) {
    return Invalid("status.result.finished '" + f.finished +
                   "' is not one of success, failure, none");
  }
  if (auto p = result->find("progress"); p != result->end() && !p->is_null()) {
    if (!p->is_object()) return Invalid("status.result.progress must be an object {cnt, of}");
    ALOFT_ASSIGN_OR_RETURN(auto cnt, OptInt(*p, "cnt", "status.result.progress.cnt"));
    ALOFT_ASSIGN_OR_RETURN(auto of, OptInt(*p, "of", "status.result.progress.of"));
    if (cnt && of && *of > 0 && *cnt >= 0) f.progress = std::min<int64_t>(100, *cnt * 100 / *of);
  }
  ALOFT_ASSIGN_OR_RETURN(f.code, OptInt(*st, "code", "status.code"));
  if (auto d = st->find("details"); d != st->end() && !d->is_null()) {
    if (!d->is_array()) return Invalid("status.details must be an array of strings");
    for (const auto& e : *d) {
      if (!e.is_string()) return Invalid("status.details must contain only strings");
      f.details += (f.details.empty() ? "" : "\n") + e.get<std::string>();
    }
  }
  if (f.details.size() > 64 * 1024) return Invalid("status.details exceed 65536 bytes");
  return f;
}

bool MayMeanInstalling(const Feedback& f) {
  return f.execution == "proceeding" || f.execution == "scheduled" || f.execution == "resumed";
}

std::optional<ActionState> DeploymentTransition(const Feedback& f, ActionState s,
                                                bool window_open) {
  using S = ActionState;
  if (f.execution == "closed") return f.finished == "failure" ? S::kFailed : S::kSucceeded;
  if (f.execution == "canceled") return S::kCanceled;
  if (s == S::kCanceling) return std::nullopt;  // only a final word changes it now
  const bool fresh = s == S::kPending || s == S::kDownloading;
  if (f.execution == "download") return fresh ? std::optional(S::kDownloading) : std::nullopt;
  if (f.execution == "downloaded") return fresh ? std::optional(S::kDownloaded) : std::nullopt;
  if (MayMeanInstalling(f)) {
    if (s == S::kPending) return S::kDownloading;
    if (s == S::kDownloaded && window_open) return S::kInstalling;
  }
  return std::nullopt;  // rejected, or nothing new
}

std::optional<ActionState> CancelTransition(const Feedback& f, ActionState resume) {
  if (f.execution == "canceled" || f.execution == "closed") return ActionState::kCanceled;
  if (f.execution == "rejected") return resume;
  return std::nullopt;
}

Handling HandlingFor(const std::string& mode, bool window_open) {
  if (mode == "download-only") return {"forced", "skip"};
  const std::string kind = mode == "soft" ? "attempt" : "forced";
  return {kind, window_open ? kind : "skip"};
}

json ArtifactJson(const Release& r, const ArtifactLinks& links) {
  return json::array(
      {{{"filename", r.filename},
        {"size", r.artifact.size},
        {"hashes",
         {{"sha1", r.artifact.sha1}, {"md5", r.artifact.md5}, {"sha256", r.artifact.sha256}}},
        {"_links",
         {{"download", {{"href", links.download}}},
          {"download-http", {{"href", links.download}}},
          {"md5sum", {{"href", links.md5sum}}},
          {"md5sum-http", {{"href", links.md5sum}}}}}}});
}

json DeploymentJson(const Action& a, const Release& r, const ArtifactLinks& links,
                    const Handling& handling, std::optional<bool> window, const json& history,
                    const json& encryption) {
  json chunk = {{"part", r.FirstModule()},
                {"version", r.version},
                {"name", r.name},
                {"artifacts", ArtifactJson(r, links)}};
  if (encryption.is_object()) {
    json metadata = json::array();
    for (const auto& [k, v] : encryption.items()) {
      metadata.push_back({{"key", "aloft.encryption." + k}, {"value", v}});
    }
    chunk["metadata"] = std::move(metadata);
  }
  json deployment = {{"download", handling.download},
                     {"update", handling.update},
                     {"chunks", json::array({std::move(chunk)})}};
  if (window) deployment["maintenanceWindow"] = *window ? "available" : "unavailable";
  json out = {{"id", std::to_string(a.id)}, {"deployment", std::move(deployment)}};
  if (!history.is_null()) out["actionHistory"] = history;
  return out;
}

std::string ChangeTag(const Action& a, const Handling& handling, std::optional<bool> window) {
  std::string key = std::to_string(a.id) + "/" + std::string(ActionStateName(a.state)) + "/" +
                    handling.download + "/" + handling.update + "/" +
                    (window ? (*window ? "open" : "closed") : "none");
  return Sha256Hex(AsBytes(key)).substr(0, 12);
}

json HistoryJson(const Action& a, int64_t count) {
  json messages = json::array();
  const auto& ev = a.events;
  const size_t n = count < 0 ? ev.size() : std::min(ev.size(), static_cast<size_t>(count));
  for (size_t i = 0; i < n; ++i) {  // newest first, as hawkBit lists them
    const ActionEvent& e = ev[ev.size() - 1 - i];
    messages.push_back(e.details.empty() ? e.status : e.status + ": " + e.details);
  }
  return {{"status", ActionStateName(a.state)}, {"messages", messages}};
}

std::string Md5SumFile(const Release& r) { return r.artifact.md5 + "  " + r.filename + "\n"; }

ActionState StateBeforeCancel(const Action& a) {
  bool before = false;  // walking back, past the newest cancel request
  for (auto it = a.events.rbegin(); it != a.events.rend(); ++it) {
    if (!before) {
      before = it->status == "canceling";
      continue;
    }
    auto s = ParseActionState(it->status);
    if (s.ok() && (*s == ActionState::kDownloading || *s == ActionState::kDownloaded ||
                   *s == ActionState::kInstalling || *s == ActionState::kInstalled)) {
      return *s;
    }
  }
  return ActionState::kPending;
}

}  // namespace aloft::server::ddi
