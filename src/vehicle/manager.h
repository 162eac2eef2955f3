// The OTA manager's job for one vehicle bundle (docs/vehicle-bundle.md, "What the manager
// does"): verify the bundle (signatures, then against the vehicle: each ECU's identity read over
// UDS) before any ECU is touched, hold a backup of every single-bank ECU's current image (from
// its store, or read back with 0x35), run the all-or-nothing campaign with its journal, then read
// the identities again and keep the new images as the next backups.
//
// Its state directory holds: campaign.json (the journal), bundle.aloft (the bundle of the
// campaign in progress, for a restart), backup/<ecu>.bin and .json (images and their versions),
// counters.json (anti-rollback counters per ECU).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "crypto/trust.h"
#include "vehicle/bundle.h"
#include "vehicle/campaign.h"
#include "vehicle/driver.h"
#include "vehicle/inventory.h"
#include "vehicle/network.h"
#include "vehicle/ota_mode.h"
#include "vehicle/signals.h"
#include "vehicle/store.h"
#include "vehicle/uds_steps.h"

namespace aloft::vehicle {

struct ManagerConfig {
  std::string state_dir{};
  crypto::TrustSet trust{};
  // The security access key of an ECU for a seed (the gateway's key store).
  std::function<Bytes(const std::string& ecu, std::span<const uint8_t> seed)> key{};
  // A deferred campaign is asked about again after this long.
  std::chrono::seconds defer_interval{3600};
  // The in-car device API of the ECUs that run aloft-agent (the `agent` install method).
  AgentEcuServer* agent_ecus = nullptr;
  // An encrypted bundle's content key (docs/encryption.md): the gateway decrypts it before it
  // flashes. Unset: an encrypted bundle is refused before any ECU is touched.
  ContentKeyFor content_key{};
  // The gateway's tester certificate and key for ECUs that program only after UDS
  // Authentication (0x29, docs/identity.md). Unset: a bundle for such an ECU is refused.
  std::shared_ptr<const uds::TesterCredentials> tester{};
};

enum class InstallResult { kRefused, kAllNew, kAllOld, kFailed };
const char* ToString(InstallResult r);

struct InstallReport {
  InstallResult result = InstallResult::kRefused;
  std::string bundle;                 // name and version
  std::vector<std::string> problems;  // why it was refused
  CampaignReport campaign;
  Inventory before, after;
  std::string Summary() const;  // several lines
  // Per ECU, "tcm: 2.0.7 -> 2.1.0" or "tcm: 2.0.7 (unchanged)".
  std::vector<std::string> EcuLines() const;
};

// Progress of one ECU: "transfer" with bytes, "activate", "rollback", "backup" with bytes.
using ProgressFn = std::function<void(const std::string& ecu, const std::string& stage,
                                      uint64_t done, uint64_t total)>;

class Manager {
 public:
  Manager(EventLoop& loop, Network& network, ManagerConfig config);
  ~Manager();

  void ReadInventory(std::function<void(Inventory)> done);
  // Verifies the bundle at `path`, then installs it.
  void Install(const std::string& path, std::function<void(InstallReport)> done);
  // What refuses `manifest` for this car, given its inventory: signatures and threshold, the
  // vehicle members, the model, then CheckBundle's problems (empty: it may be installed). What
  // Install checks before any ECU is touched, for a manifest alone (the daemon's check before
  // a download).
  std::vector<std::string> Check(const pkg::Envelope& envelope, const Inventory& inventory) const;
  // At start-up: a campaign the journal shows unfinished converges (to all-old) first.
  void Recover(std::function<void(InstallReport)> done);
  ProgressFn on_progress;

  // The driver's screen (update modes) and what the manager is doing, one line.
  DriverPrompt& driver() { return driver_; }
  std::string Activity() const { return activity_; }
  // The vehicle signals (null when the gateway does not have their bus).
  const SignalWatcher* signals() const { return watcher_.get(); }
  // Every request OTA mode sent, for the log and the tests.
  std::vector<std::string> ota_requests() const { return ota_sent_; }
  // For each pause of a campaign: how long after the precondition was lost the car was at a safe
  // point (no ECU in the programming session, every one bootable).
  const std::vector<std::chrono::milliseconds>& pauses() const { return pauses_; }

 private:
  struct Loaded;
  void WaitForConditions(std::shared_ptr<Loaded> l, std::function<void(InstallReport)> done);
  void EnterOtaMode(std::shared_ptr<Loaded> l, bool recover,
                    std::function<void(InstallReport)> done);
  void Watch(std::shared_ptr<Loaded> l);
  void End(std::shared_ptr<Loaded> l, std::function<void(InstallReport)> done);
  std::vector<std::string> Unmet(const std::shared_ptr<Loaded>& l) const;
  void Backups(std::shared_ptr<Loaded> l, std::function<void(InstallReport)> done);
  // Each delta component's base: the copy of the ECU's current image the gateway holds (its
  // backup), of the base's version, size and SHA-256; a problem for each one missing.
  void Bases(Loaded& l);
  std::optional<std::string> WrongModel(const VehicleBundle& b) const;
  EcuJob AgentJob(const Loaded& l, const EcuTarget& t);
  void BackupChain(std::shared_ptr<Loaded> l, std::vector<size_t> chain, size_t k,
                   std::function<void()> joined);
  void RunCampaign(std::shared_ptr<Loaded> l, bool recover,
                   std::function<void(InstallReport)> done);
  Result<std::shared_ptr<Loaded>> Load(const std::string& path, InstallReport& report);
  Bytes Key(const std::string& ecu, std::span<const uint8_t> seed) const;
  // How the gateway unlocks the programming of `ecu`: as its description says it takes it.
  Unlock UnlockFor(const std::string& ecu);
  std::string Path(const std::string& name) const { return config_.state_dir + "/" + name; }

  EventLoop& loop_;
  Network& network_;
  ManagerConfig config_;
  std::unique_ptr<FileJournal> journal_;
  std::unique_ptr<Campaign> campaign_;
  DriverPrompt driver_;
  ImageStore store_;
  std::unique_ptr<SignalWatcher> watcher_;
  std::unique_ptr<OtaMode> ota_;
  std::vector<std::string> ota_sent_;
  std::vector<std::chrono::milliseconds> pauses_;
  std::string activity_ = "idle";
  bool aborted_ = false;   // past the deadline while paused
  bool resuming_ = false;  // OTA mode being entered again before the campaign resumes
  TimerId watch_timer_ = 0, deadline_timer_ = 0;
  EventLoop::TimePoint started_{};
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace aloft::vehicle
