// The Eclipse hawkBit Direct Device Integration (DDI) API, version 1: the JSON it speaks and how
// its feedback maps onto Aloft's action states. aloftd's routes (app.cc) use these; the mapping is
// in docs/ddi.md.
//
// A hawkBit "software module" is an Aloft release (its id is the release id); its one artifact is
// the release's file, a signed .aloft package or a plain artifact such as an SWUpdate .swu.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "core/error.h"
#include "server/store.h"

namespace aloft::server::ddi {

// A feedback body, as POSTed to deploymentBase/{id}/feedback and cancelAction/{id}/feedback.
// Both the older body ({"id", "time", "status"}) and the current one ({"timestamp", "status"})
// parse; members this code does not know are ignored, as hawkBit ignores them.
struct Feedback {
  // closed | proceeding | canceled | scheduled | rejected | resumed | downloaded | download
  std::string execution;
  std::string finished;             // success | failure | none
  std::optional<int64_t> progress;  // percent, from result.progress {cnt, of}
  std::optional<int64_t> code;      // status.code
  std::string details;              // status.details, one per line
};

// kInvalidArgument names the member and the problem: "status.execution 'done' is not one of ...".
Result<Feedback> ParseFeedback(const nlohmann::json& body);

// Whether deploymentBase feedback `f` can mean the device began installing (proceeding,
// scheduled, resumed): only then does DeploymentTransition look at the maintenance window.
bool MayMeanInstalling(const Feedback& f);

// The state deploymentBase feedback moves an action in `current` to, or nullopt when it is only
// recorded. `window_open`: false while the action's rollout's maintenance window is closed (the
// device was told `update: skip`, so "proceeding" after "downloaded" does not mean installing).
std::optional<ActionState> DeploymentTransition(const Feedback& f, ActionState current,
                                                bool window_open);

// The state cancelAction feedback moves a canceling action to: canceled when the device confirms
// (canceled, or closed), `resume` when it rejects the cancellation, nullopt otherwise.
std::optional<ActionState> CancelTransition(const Feedback& f, ActionState resume);

// deployment.download and deployment.update: "skip", "attempt" or "forced".
struct Handling {
  std::string download, update;
};
// `mode`: forced | soft | download-only; `window_open`: false while a maintenance window is closed.
Handling HandlingFor(const std::string& mode, bool window_open);

// One downloadable file of a deployment.
struct ArtifactLinks {
  std::string download;  // where the bytes are
  std::string md5sum;    // where "<md5>  <filename>" is
};

// The "artifacts" member of a chunk (and the answer to softwaremodules/{id}/artifacts).
nlohmann::json ArtifactJson(const Release& r, const ArtifactLinks& links);

// The deploymentBase (and installedBase) resource. `window`: nullopt when the action's rollout
// has no maintenance window, else whether it is open now. `history`: the actionHistory member
// (null: left out). `encryption`: an encrypted release's {"key_id", "wrapped_key" or "error"}
// for this device (docs/encryption.md), given as the chunk's metadata
// "aloft.encryption.key_id" and "aloft.encryption.wrapped_key" (or ".error"); null: none.
nlohmann::json DeploymentJson(const Action& a, const Release& r, const ArtifactLinks& links,
                              const Handling& handling, std::optional<bool> window,
                              const nlohmann::json& history,
                              const nlohmann::json& encryption = nullptr);

// The "c" query value of the deploymentBase link: changes whenever what the device would be told
// changes (hawkBit clients compare links to notice a changed action).
std::string ChangeTag(const Action& a, const Handling& handling, std::optional<bool> window);

// actionHistory: the action's state and the newest `count` event messages (count < 0: all).
nlohmann::json HistoryJson(const Action& a, int64_t count);

// The content of an artifact's .MD5SUM: "<md5>  <filename>\n", as md5sum(1) writes it.
std::string Md5SumFile(const Release& r);

// The state an action had before it was asked to cancel: the newest of its events that names an
// open state (downloading, downloaded, installing, installed); pending when there is none.
ActionState StateBeforeCancel(const Action& a);

}  // namespace aloft::server::ddi
