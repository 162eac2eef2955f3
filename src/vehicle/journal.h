// The campaign's journal: where a campaign stands, saved (written whole, fsync'd, renamed into
// place) before each step whose effect it could not see after a power cut of the gateway. A
// campaign found unfinished at start-up converges to all-old: images transferred but not
// committed die with the programming session anyway, so going back is the one end every state
// can reach (docs/vehicle-network.md, "Campaigns across ECUs").
#pragma once

#include <map>
#include <optional>
#include <string>

#include "core/error.h"

namespace aloft::vehicle {

struct JournalState {
  std::string phase = "transfer";  // transfer, activate, rollback, done
  // Per ECU: pending (untouched), touched (its transfer began), allowed (an ECU with its own
  // agent was let install: it commits by itself), activated, back (rolled back).
  std::map<std::string, std::string> ecus;
  // Per ECU with its own agent: the action its package was offered as.
  std::map<std::string, int64_t> actions;
  std::string outcome;  // when done: all-new, all-old, failed
  std::string ToJson() const;
  // kMalformed naming `origin` for anything else.
  static Result<JournalState> FromJson(const std::string& text, const std::string& origin);
};

class CampaignJournal {
 public:
  virtual ~CampaignJournal() = default;
  // An error means the gateway is gone (the step must not happen).
  virtual Status Save(const JournalState& state) = 0;
  // nullopt when there is no journal (no campaign ever ran).
  virtual Result<std::optional<JournalState>> Load() = 0;
};

class FileJournal final : public CampaignJournal {
 public:
  explicit FileJournal(std::string path) : path_(std::move(path)) {}
  Status Save(const JournalState& state) override;
  Result<std::optional<JournalState>> Load() override;

 private:
  std::string path_;
};

}  // namespace aloft::vehicle
