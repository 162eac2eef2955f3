#include "agent/journal.h"

#include <array>
#include <nlohmann/json.hpp>

#include "core/file.h"

namespace aloft::agent {
namespace {

using json = nlohmann::json;

constexpr std::array<std::string_view, 12> kStateNames = {
    "idle",   "check",   "download", "verify",   "install", "activate",
    "reboot", "confirm", "commit",   "rollback", "report",  "hold"};

struct Transition {
  State from;
  Event event;
  State to;
};

// The whole state machine. Anything else is a bug.
constexpr Transition kTable[] = {
    {State::kIdle, Event::kStart, State::kCheck},
    {State::kCheck, Event::kNoUpdate, State::kIdle},
    {State::kCheck, Event::kOffer, State::kDownload},
    {State::kCheck, Event::kFailed, State::kReport},  // refused before a byte is downloaded
    {State::kDownload, Event::kDone, State::kVerify},
    {State::kDownload, Event::kFailed, State::kReport},
    {State::kVerify, Event::kDone, State::kHold},
    {State::kHold, Event::kDone, State::kInstall},
    {State::kHold, Event::kDropped, State::kIdle},
    {State::kVerify, Event::kFailed, State::kReport},
    {State::kInstall, Event::kDone, State::kActivate},
    {State::kInstall, Event::kFailed, State::kRollback},
    {State::kActivate, Event::kDone, State::kReboot},
    {State::kActivate, Event::kFailed, State::kRollback},
    {State::kActivate, Event::kUndone, State::kInstall},
    {State::kReboot, Event::kDone, State::kConfirm},
    {State::kConfirm, Event::kHealthy, State::kCommit},
    {State::kConfirm, Event::kUnhealthy, State::kRollback},
    {State::kCommit, Event::kDone, State::kReport},
    {State::kCommit, Event::kUnhealthy, State::kRollback},  // reverted before the commit held
    {State::kRollback, Event::kDone, State::kReport},
    {State::kReport, Event::kDone, State::kIdle},
};

}  // namespace

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Offer, action, release, version, mode, url, sha256, etag, size,
                                   manifest, install, wrapped_key)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Outcome, success, code, details)

std::string_view StateName(State s) { return kStateNames[static_cast<size_t>(s)]; }

Result<State> ParseState(std::string_view name) {
  for (size_t i = 0; i < kStateNames.size(); ++i) {
    if (kStateNames[i] == name) return static_cast<State>(i);
  }
  return Error(Code::kMalformed, "unknown state '" + std::string(name) + "'");
}

std::string_view EventName(Event e) {
  switch (e) {
    case Event::kStart:
      return "start";
    case Event::kNoUpdate:
      return "no-update";
    case Event::kOffer:
      return "offer";
    case Event::kDone:
      return "done";
    case Event::kFailed:
      return "failed";
    case Event::kHealthy:
      return "healthy";
    case Event::kUnhealthy:
      return "unhealthy";
    case Event::kUndone:
      return "undone";
    case Event::kDropped:
      return "dropped";
  }
  return "?";
}

Result<State> Next(State from, Event event) {
  for (const Transition& t : kTable) {
    if (t.from == from && t.event == event) return t.to;
  }
  return Error(Code::kInternal, "no transition from " + std::string(StateName(from)) + " on " +
                                    std::string(EventName(event)));
}

Result<Journal> LoadJournal(const std::string& path) {
  auto text = ReadFile(path, 4 << 20);
  if (!text.ok()) {
    if (text.error().code() == Code::kNotFound) return Journal{};
    return text.error();
  }
  json j = json::parse(*text, nullptr, false);
  auto bad = [&](const std::string& why) { return Error(Code::kMalformed, path + ": " + why); };
  if (!j.is_object()) return bad("not a JSON object");
  try {
    Journal out;
    auto state = ParseState(j.at("state").get<std::string>());
    if (!state.ok()) return bad(state.error().message());
    out.state = *state;
    out.downloaded = j.value("downloaded", uint64_t{0});
    out.attempts = j.value("attempts", uint32_t{0});
    out.boot_id = j.value("boot_id", std::string());
    out.reinstalls = j.value("reinstalls", uint32_t{0});
    out.finished = j.value("finished", int64_t{0});
    if (j.contains("offer") && !j["offer"].is_null()) {
      const json& o = j["offer"];
      out.offer = Offer{o.at("action").get<int64_t>(),        o.at("release").get<std::string>(),
                        o.at("version").get<std::string>(),   o.at("mode").get<std::string>(),
                        o.at("url").get<std::string>(),       o.at("sha256").get<std::string>(),
                        o.at("etag").get<std::string>(),      o.at("size").get<uint64_t>(),
                        o.at("manifest").get<std::string>(),  o.value("install", true),
                        o.value("wrapped_key", std::string())};
    }
    if (j.contains("outcome") && !j["outcome"].is_null()) {
      const json& r = j["outcome"];
      out.outcome = Outcome{r.at("success").get<bool>(), r.at("code").get<int>(),
                            r.at("details").get<std::vector<std::string>>()};
    }
    return out;
  } catch (const json::exception& e) {
    return bad(e.what());
  }
}

Status SaveJournal(const std::string& path, const Journal& j) {
  json out = {{"state", StateName(j.state)},
              {"downloaded", j.downloaded},
              {"attempts", j.attempts},
              {"boot_id", j.boot_id},
              {"reinstalls", j.reinstalls},
              {"finished", j.finished},
              {"offer", j.offer ? json(*j.offer) : json(nullptr)},
              {"outcome", j.outcome ? json(*j.outcome) : json(nullptr)}};
  return WriteFileAtomic(path, out.dump(2) + "\n", 0600);
}

}  // namespace aloft::agent
