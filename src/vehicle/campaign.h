// A vehicle campaign, all or nothing across ECUs (issue 22; the first part: no journal yet, no
// bundle): phase 1 transfers every ECU (buses in parallel, one transfer at a time on a bus), the
// images checked by each ECU but not committed; phase 2 activates them; a failure before every
// ECU runs its new version sends every ECU back to its old one: an A/B ECU not yet committed is
// simply reset, a committed one switched back (31 01 FF 02), a single-bank ECU re-flashed from
// the backup the gateway holds.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/encoding.h"
#include "core/event_loop.h"
#include "uds/client.h"
#include "uds/flasher.h"
#include "vehicle/agent_ecus.h"
#include "vehicle/journal.h"

namespace aloft::vehicle {

struct EcuJob {
  std::string name;
  std::string bus;  // transfers on one bus run one at a time
  uds::Client* client = nullptr;
  bool ab = false;  // uds-ab (else single bank, programmed in place)
  uint64_t address = 0;
  Bytes image;  // the new image, and the version it reports
  std::string version;
  // When set, the new image is read from here instead (rebuilt from a delta as it goes out).
  std::shared_ptr<RandomAccessSource> source{};
  Bytes sha256{};  // the new image's, as signed: what the ECU's check routine is given
  // An ECU that decrypts itself: `image` is the payload as the bundle stores it (sealed), sent
  // with the content key wrapped for the ECU (docs/encryption.md).
  std::optional<uds::SealedTransfer> sealed{};
  uint64_t size() const { return source ? source->size() : image.size(); }
  Bytes backup{};  // single bank: the current image, held before its erase
  std::string backup_version{};
  std::function<Bytes(std::span<const uint8_t> seed)> key{};  // security access (null: none)
  // Authentication (29) before programming, for an ECU that takes it (null: none).
  std::shared_ptr<const uds::TesterCredentials> credentials{};
  // ECUs (by name) whose transfer must be done before this one's begins and that are activated
  // before it.
  std::vector<std::string> after{};
  // Called after each TransferData block.
  std::function<void(uint64_t sent, uint64_t total)> progress{};
  // The ECU's erase block: a transfer resumes from the first one the ECU does not hold (0: off).
  uint32_t erase_block = 0;
  // Transfers tried before the campaign fails (the ECU reset and the transfer resumed between).
  int attempts = 3;
  // An ECU that runs aloft-agent itself (the `agent` install method): its own signed package,
  // offered as action `action` through the gateway's in-car device API; no client.
  AgentEcuServer* agent = nullptr;
  std::shared_ptr<const Bytes> package{};
  int64_t action = 0;
  std::chrono::seconds agent_timeout{1800};  // its agent's silence before the job fails
};

enum class Outcome { kAllNew, kAllOld, kFailed };
const char* ToString(Outcome o);

struct CampaignReport {
  Outcome outcome = Outcome::kFailed;
  std::vector<std::string> log;  // one line per step and ECU
  std::string first_failure;
};

class Campaign {
 public:
  // `journal` (may be null) is saved before each step; when a save fails the campaign stops
  // where it is, as the gateway would with its power gone.
  Campaign(EventLoop& loop, std::vector<EcuJob> jobs, CampaignJournal* journal = nullptr);
  void Run(std::function<void(CampaignReport)> done);
  // At start-up: an unfinished campaign in the journal is taken to all-old (every ECU it touched
  // goes back); a finished one, or none, ends at once with the journal's outcome.
  void Recover(std::function<void(CampaignReport)> done);
  bool dead() const { return dead_; }

  // Stops at a safe point (a precondition was lost): no transfer or activation starts; an A/B ECU
  // whose transfer is under way or done is reset onto its old bank (its transfer starts again
  // later); a single-bank ECU that was erased finishes its transfer and is activated, since it
  // must not stay without a bootable image. `safe` once no ECU is left in the programming session
  // and every ECU holds a bootable image: each ECU that was in it acknowledged its reset (an A/B
  // one onto its old bank, a single-bank one onto its new, checked image).
  void Pause(const std::string& why, std::function<void()> safe);
  // Goes on from where Pause left it (or goes back, when it failed or was aborted meanwhile).
  void Resume();
  // Gives up (the deadline passed): every ECU goes back; a paused campaign goes back once
  // resumed, since going back resets and re-flashes ECUs too.
  void Abort(const std::string& why);
  bool paused() const { return paused_; }
  // Whether the campaign began activating (the point from which it no longer pauses mid-way).
  const std::string& phase() const { return phase_; }

 private:
  enum class State {
    kPending,
    kTransferring,
    kRetrying,  // reset after a failed transfer, waiting for the next attempt
    kTransferred,
    kActivating,
    kActivated,
    kFailed
  };
  struct Ecu {
    EcuJob job;
    State state = State::kPending;
    bool touched = false;        // its transfer began: it may have to go back
    bool back = false;           // rolled back
    bool pause_counted = false;  // a pause waits for it to reach a safe point
    int attempts = 0;            // failed transfers so far
    bool erased = false;         // its erase was asked for: its flash may have changed
    std::unique_ptr<uds::Flasher> flasher{};
  };
  void NextTransfers();
  void Activate();
  void ActivateOne(size_t i);
  void ActivationDone(size_t i, Status r);
  void TransferDone(size_t i, Status r);
  void StartAgentTransfer(size_t i);
  void WatchAgent(size_t i, std::function<void(Status)> then);
  void SafeStep(int delta);
  void Rollback();
  void RollbackNext(size_t i);
  void RollbackAttempt(size_t i, int tries);
  void Finish(Outcome o);
  void Note(const std::string& line);
  // The new image (`backup` false) or the backup.
  void StartFlash(Ecu& e, uds::FlashPhases phases, bool backup);
  bool Ready(const Ecu& e, State least) const;

  EventLoop& loop_;
  std::vector<Ecu> ecus_;
  std::vector<size_t> activation_;  // indices into ecus_, dependencies first
  std::map<std::string, bool> bus_busy_;
  std::function<void(CampaignReport)> done_;
  CampaignReport report_;
  bool failing_ = false;
  int running_ = 0;     // transfers under way
  int activating_ = 0;  // activations under way
  CampaignJournal* journal_;
  std::string phase_ = "transfer";
  bool dead_ = false;
  bool paused_ = false;
  bool rolling_ = false;          // Rollback started
  bool rollback_failed_ = false;  // an ECU could not go back
  int unsafe_ = 0;                // pausing: ECUs still on their way to a safe point
  std::function<void()> safe_;
  // For the callbacks of timers and of the ECUs' clients, which may outlive the campaign.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  std::weak_ptr<bool> Alive() const { return alive_; }
  bool Record();
};

}  // namespace aloft::vehicle
