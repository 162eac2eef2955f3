// The agent's persisted state machine: one transition table, and the journal that records where
// the agent is. The journal is written (fsync of the file and of its directory, atomic rename)
// before every side effect that belongs to the next state, so an agent killed or power-cut in any
// state resumes from it and never repeats a step whose effect it cannot see.
//
//   idle -> check -> download -> verify -> hold -> install -> activate -> reboot -> confirm
//        -> commit | rollback -> report -> idle
//
// hold: the verified package waits for the server's word before a byte is installed (a check-in:
// install now, not yet, or cancel).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace aloft::agent {

enum class State {
  kIdle,
  kCheck,
  kDownload,
  kVerify,
  kInstall,
  kActivate,
  kReboot,
  kConfirm,
  kCommit,
  kRollback,
  kReport,
  kHold,
};

enum class Event {
  kStart,      // idle: a cycle begins
  kNoUpdate,   // check: nothing to do
  kOffer,      // check: an action to carry out
  kDone,       // the state's work succeeded
  kFailed,     // the state's work failed for good (the result says why)
  kHealthy,    // confirm: the new image passed its health check
  kUnhealthy,  // confirm: it did not, or the bootloader already went back
  kUndone,     // activate: a reset undid the install (the bootloader restored the old image)
  kDropped,    // hold: the server canceled the action or no longer offers it
};

std::string_view StateName(State s);
Result<State> ParseState(std::string_view name);
std::string_view EventName(Event e);

// The transition table; kInternal naming both when the pair is not in it.
Result<State> Next(State from, Event event);

// What the server offered (from the check-in answer).
struct Offer {
  int64_t action = 0;
  std::string release, version, mode;
  std::string url, sha256, etag;
  uint64_t size = 0;
  std::string manifest;     // the signed envelope, canonical JSON text
  bool install = true;      // the server's word at the last check-in: install now
  std::string wrapped_key;  // an encrypted package's content key, wrapped for this device
};

struct Outcome {
  bool success = false;
  int code = 0;  // 0 on success; else the aloft::Code of the failure
  std::vector<std::string> details;
};

struct Journal {
  State state = State::kIdle;
  std::optional<Offer> offer;
  uint64_t downloaded = 0;  // bytes of the package durably staged
  std::optional<Outcome> outcome;
  uint32_t attempts = 0;    // failed attempts at the current state (for backoff and giving up)
  std::string boot_id;      // the boot a reboot was asked in (reboot and rollback states)
  uint32_t reinstalls = 0;  // installs of this offer redone after a reset undid them
  // The last action whose final report was sent. An offer of it again is a report still on its
  // way (MQTT), not work to redo: commands are idempotent by action id.
  int64_t finished = 0;
};

// A missing file is an idle journal. kMalformed names the file for a damaged one.
Result<Journal> LoadJournal(const std::string& path);
Status SaveJournal(const std::string& path, const Journal& j);

}  // namespace aloft::agent
