#include "vehicle/manager.h"

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/file.h"
#include "core/hash.h"
#include "core/io.h"
#include "crypto/key_wrap.h"
#include "pkg/package.h"
#include "vehicle/delta_image.h"
#include "vehicle/uds_steps.h"

namespace aloft::vehicle {

const char* ToString(InstallResult r) {
  switch (r) {
    case InstallResult::kRefused:
      return "refused";
    case InstallResult::kAllNew:
      return "all-new";
    case InstallResult::kAllOld:
      return "all-old";
    case InstallResult::kFailed:
      return "failed";
  }
  return "?";
}

std::string InstallReport::Summary() const {
  std::string s = std::string("bundle ") + (bundle.empty() ? "(unread)" : bundle) + ": " +
                  vehicle::ToString(result) + "\n";
  for (const auto& p : problems) s += "  refused: " + p + "\n";
  if (!campaign.first_failure.empty()) s += "  first failure: " + campaign.first_failure + "\n";
  for (const std::string& line : EcuLines()) s += "  " + line + "\n";
  return s;
}

std::vector<std::string> InstallReport::EcuLines() const {
  std::vector<std::string> lines;
  for (const auto& [name, id] : after) {
    auto b = before.find(name);
    const std::string was = b == before.end() ? "?" : b->second.software;
    lines.push_back(name + ": " + was +
                    (was == id.software ? " (unchanged)" : " -> " + id.software));
  }
  return lines;
}

struct Manager::Loaded {
  std::string path;
  VehicleBundle bundle;
  std::map<std::string, Bytes> images;
  std::map<std::string, SealedPayload> sealed;  // for the ECUs that decrypt themselves
  std::optional<crypto::ContentKey> key;
  std::map<std::string, std::pair<Bytes, std::string>> backups;  // single bank: image, version
  std::map<std::string, std::shared_ptr<const Bytes>> bases;     // delta components' bases
  InstallReport report;
};

Manager::Manager(EventLoop& loop, Network& network, ManagerConfig config)
    : loop_(loop),
      network_(network),
      config_(std::move(config)),
      driver_(loop),
      store_(config_.state_dir) {
  std::error_code ec;
  std::filesystem::create_directories(Path("backup"), ec);
  journal_ = std::make_unique<FileJournal>(Path("campaign.json"));
  if (can::CanBus* bus = network_.signal_bus()) {
    watcher_ = std::make_unique<SignalWatcher>(*bus, network_.spec().signals.id);
  }
}

Manager::~Manager() {
  *alive_ = false;
  if (watch_timer_) loop_.Cancel(watch_timer_);
  if (deadline_timer_) loop_.Cancel(deadline_timer_);
}

void Manager::Bases(Loaded& l) {
  for (const EcuTarget& t : l.bundle.ecus) {
    if (!t.base) continue;
    std::optional<std::pair<Bytes, std::string>> copy;
    if (auto b = l.backups.find(t.name); b != l.backups.end()) {
      copy = b->second;
    } else {
      copy = store_.Load(t.name);
    }
    if (!copy || copy->second != t.base->version) {
      l.report.problems.push_back(t.name + ": the gateway holds no copy of its " + t.base->version +
                                  " image for the delta to apply to (it needs a full image)");
      continue;
    }
    // A read-back copy spans the ECU's whole application area: the base is its start.
    Bytes& image = copy->first;
    if (image.size() < t.base->size ||
        Sha256Hex(std::span(image).first(t.base->size)) != t.base->sha256) {
      l.report.problems.push_back(t.name + ": its current image is not the delta's base (SHA-256 " +
                                  t.base->sha256.substr(0, 12) + "...): it needs a full image");
      continue;
    }
    image.resize(t.base->size);
    l.bases[t.name] = std::make_shared<const Bytes>(std::move(image));
  }
}

Bytes Manager::Key(const std::string& ecu, std::span<const uint8_t> seed) const {
  return config_.key ? config_.key(ecu, seed) : Bytes{};
}

Unlock Manager::UnlockFor(const std::string& ecu) {
  Unlock u;
  const ecusim::EcuSpec* spec = network_.ecu(ecu);
  const auto access = spec ? spec->config.access : ecusim::ProgrammingAccess::kSecurityAccess;
  if (access != ecusim::ProgrammingAccess::kAuthentication) {
    u.key = [this, ecu](std::span<const uint8_t> seed) { return Key(ecu, seed); };
  }
  if (access != ecusim::ProgrammingAccess::kSecurityAccess) u.credentials = config_.tester;
  return u;
}

void Manager::ReadInventory(std::function<void(Inventory)> done) {
  auto inv = std::make_shared<Inventory>();
  // ECUs with their own agent: what their last check-in with the gateway said.
  if (config_.agent_ecus) {
    for (const std::string& name : config_.agent_ecus->names()) {
      const AgentEcuServer::State s = config_.agent_ecus->state(name);
      EcuIdentity id{.name = name, .answered = s.seen};
      if (!s.seen) id.error = "its agent has not checked in with the gateway";
      if (!s.versions.empty()) id.software = s.versions.begin()->second;
      (*inv)[name] = std::move(id);
    }
  }
  auto names = std::make_shared<std::vector<std::string>>(network_.ecus());
  auto left = std::make_shared<size_t>(names->size());
  if (names->empty()) {
    loop_.Post([done, inv] { done(*inv); });
    return;
  }
  // Every ECU at once: each has its own client, and the buses interleave the requests.
  for (const std::string& name : *names) {
    ReadIdentity(*network_.client(name), name,
                 [inv, left, done, alive = std::weak_ptr<bool>(alive_)](EcuIdentity id) {
                   if (alive.expired()) return;
                   (*inv)[id.name] = std::move(id);
                   if (--*left == 0) done(*inv);
                 });
  }
}

std::optional<std::string> Manager::WrongModel(const VehicleBundle& b) const {
  if (b.model == network_.spec().name) return std::nullopt;
  return "the bundle is for vehicle model '" + b.model + "'; this vehicle is '" +
         network_.spec().name + "'";
}

std::vector<std::string> Manager::Check(const pkg::Envelope& envelope,
                                        const Inventory& inventory) const {
  if (Status s = pkg::VerifySignatures(envelope, config_.trust); !s.ok()) {
    return {s.error().message()};
  }
  auto bundle = ReadBundle(envelope.manifest, "the bundle");
  if (!bundle.ok()) return {bundle.error().message()};
  if (auto wrong = WrongModel(*bundle)) return {*wrong};
  return CheckBundle(*bundle, inventory, store_.LoadCounters());
}

Result<std::shared_ptr<Manager::Loaded>> Manager::Load(const std::string& path,
                                                       InstallReport& report) {
  auto l = std::make_shared<Loaded>();
  l->path = path;
  // An ECU the vehicle's description says decrypts itself gets its payload sealed, as stored.
  auto decrypts = [this](const pkg::Component& c) {
    const ecusim::EcuSpec* spec = network_.ecu(c.name);
    return spec && spec->config.decrypt_key != nullptr;
  };
  ALOFT_ASSIGN_OR_RETURN(BundleFile file,
                         ReadBundleFile(path, &config_.trust, config_.content_key, decrypts));
  l->bundle = std::move(file.bundle);
  l->images = std::move(file.images);
  l->sealed = std::move(file.sealed);
  l->key = file.key;
  report.bundle = l->bundle.name + " " + l->bundle.version;
  if (auto wrong = WrongModel(l->bundle)) return Error(Code::kUnsupported, path + ": " + *wrong);
  // An ECU with its own agent gets its own package: it must read as one (its agent checks the
  // signatures with its own keys).
  for (const EcuTarget& t : l->bundle.ecus) {
    if (t.method != InstallMethod::kAgent) continue;
    MemorySource payload(l->images[t.name]);
    if (auto r = pkg::PackageReader::Open(payload, t.name, nullptr); !r.ok()) {
      return Error(Code::kMalformed, path + ": " + t.name +
                                         ": its image is not a package for its agent (" +
                                         r.error().message() + ")");
    }
  }
  return l;
}

void Manager::Install(const std::string& path, std::function<void(InstallReport)> done) {
  InstallReport report;
  auto loaded = Load(path, report);
  if (!loaded.ok()) {
    report.problems.push_back(loaded.error().message());
    loop_.Post([done, report] { done(report); });
    return;
  }
  auto l = *loaded;
  l->report = std::move(report);
  ReadInventory([this, l, done](Inventory inv) {
    l->report.before = inv;
    l->report.problems = CheckBundle(l->bundle, inv, store_.LoadCounters());
    for (const EcuTarget& t : l->bundle.ecus) {
      const ecusim::EcuSpec* spec = network_.ecu(t.name);
      if (t.method != InstallMethod::kAgent && spec && !config_.tester &&
          spec->config.access != ecusim::ProgrammingAccess::kSecurityAccess) {
        l->report.problems.push_back(
            t.name +
            ": it programs only after UDS authentication (0x29), and the gateway has no "
            "tester certificate (--tester-cert, --tester-key)");
      }
    }
    if (!l->report.problems.empty()) {
      l->report.after = inv;
      return done(l->report);
    }
    // The update mode: the driver is told, or asked, or not involved.
    const CampaignPolicy& p = l->bundle.policy;
    activity_ = p.mode == UpdateMode::kConfirm ? "waiting for the driver" : "starting";
    driver_.Ask(l->report.bundle, p.mode, p.max_deferrals, config_.defer_interval,
                [this, l, done] { WaitForConditions(l, done); });
  });
}

std::vector<std::string> Manager::Unmet(const std::shared_ptr<Loaded>& l) const {
  const Preconditions& p = l->bundle.policy.preconditions;
  if (!watcher_) {
    if (!p.any()) return {};
    return {"the gateway does not see the vehicle signals' bus"};
  }
  return vehicle::Unmet(p, watcher_->state(), loop_.Now());
}

// The preconditions must hold before anything is touched; the campaign waits for them up to its
// deadline, then is refused.
void Manager::WaitForConditions(std::shared_ptr<Loaded> l,
                                std::function<void(InstallReport)> done) {
  if (!*alive_) return;
  if (started_ == EventLoop::TimePoint{}) started_ = loop_.Now();
  const std::vector<std::string> unmet = Unmet(l);
  if (unmet.empty()) return EnterOtaMode(l, false, std::move(done));
  if (loop_.Now() - started_ >= l->bundle.policy.max_duration) {
    for (const auto& u : unmet) l->report.problems.push_back("precondition not met: " + u);
    driver_.Close("update " + l->report.bundle + " postponed: " + unmet.front());
    activity_ = "idle";
    started_ = {};
    l->report.after = l->report.before;
    return done(l->report);
  }
  activity_ = "waiting for the preconditions: " + unmet.front();
  watch_timer_ = loop_.After(std::chrono::milliseconds(50), [this, l, done] {
    watch_timer_ = 0;
    WaitForConditions(l, done);
  });
}

void Manager::EnterOtaMode(std::shared_ptr<Loaded> l, bool recover,
                           std::function<void(InstallReport)> done) {
  if (started_ == EventLoop::TimePoint{}) started_ = loop_.Now();
  std::vector<std::string> names;
  for (const EcuTarget& t : l->bundle.ecus) {
    if (t.method != InstallMethod::kAgent) names.push_back(t.name);
  }
  ota_ = std::make_unique<OtaMode>(network_, names);
  activity_ = recover ? "recovering an unfinished campaign" : "installing " + l->report.bundle;
  ota_->Enter([this, l, recover, done] {
    if (recover) return RunCampaign(l, true, done);
    Backups(l, done);
  });
}

// During the campaign: a precondition lost stops it at a safe point; it goes on when they hold
// again, or goes back once the deadline passed. Checked on every state frame (at once) and every
// 50 ms (signals that stop coming).
void Manager::Watch(std::shared_ptr<Loaded> l) {
  auto check = [this, l] {
    if (!campaign_ || campaign_->phase() == "done" || campaign_->phase() == "rollback") return;
    const std::vector<std::string> unmet = Unmet(l);
    if (!unmet.empty() && !campaign_->paused()) {
      activity_ = "paused: " + unmet.front();
      const auto at = watcher_ && watcher_->state().seen ? watcher_->state().at : loop_.Now();
      campaign_->Pause(unmet.front(), [this, at, alive = std::weak_ptr<bool>(alive_)] {
        if (alive.expired()) return;
        pauses_.push_back(std::chrono::duration_cast<std::chrono::milliseconds>(loop_.Now() - at));
        // At the safe point the car runs as usual: communication, DTCs and sessions restored.
        if (ota_ && ota_->active()) ota_->Leave([] {});
      });
    } else if (unmet.empty() && campaign_->paused() && !resuming_) {
      activity_ = aborted_ ? "going back to the old software" : "installing " + l->report.bundle;
      resuming_ = true;
      auto resume = [this, alive = std::weak_ptr<bool>(alive_)] {
        if (alive.expired()) return;
        resuming_ = false;
        if (campaign_) campaign_->Resume();
      };
      if (ota_ && !ota_->active()) return ota_->Enter(resume);
      return resume();
    }
    if (campaign_->paused() && !aborted_ &&
        loop_.Now() - started_ >= l->bundle.policy.max_duration) {
      // Going back resets and re-flashes ECUs too: it starts once the preconditions hold again.
      aborted_ = true;
      activity_ =
          "the deadline passed: going back once the preconditions hold (" + unmet.front() + ")";
      campaign_->Abort("the preconditions did not return before the campaign's deadline (" +
                       std::to_string(l->bundle.policy.max_duration.count()) + " s)");
    }
  };
  if (watcher_) watcher_->on_change = [check](const VehicleState&) { check(); };
  std::function<void()> tick = [this, check, l] {
    watch_timer_ = 0;
    check();
    if (campaign_ && campaign_->phase() != "done") Watch(l);
  };
  watch_timer_ = loop_.After(std::chrono::milliseconds(50), tick);
}

// Every end goes through here: OTA mode is left whatever the outcome.
void Manager::End(std::shared_ptr<Loaded> l, std::function<void(InstallReport)> done) {
  if (watch_timer_) loop_.Cancel(watch_timer_);
  watch_timer_ = 0;
  if (watcher_) watcher_->on_change = nullptr;
  started_ = {};
  aborted_ = false;
  resuming_ = false;
  auto finish = [this, l, done] {
    if (ota_) {
      ota_sent_ = ota_->sent();
      // Called from inside its clients' callbacks: it goes once they have returned.
      std::shared_ptr<OtaMode> dying(ota_.release());
      loop_.Post([dying] {});
    }
    activity_ = "idle";
    driver_.Close(l->report.problems.empty() && l->report.result == InstallResult::kAllNew
                      ? "update " + l->report.bundle + " installed"
                      : "");
    ReadInventory([l, done](Inventory inv) {
      l->report.after = std::move(inv);
      done(l->report);
    });
  };
  if (ota_ && ota_->active()) return ota_->Leave(finish);
  finish();
}

// Each single-bank ECU's current image, verified, before anything is erased: from the store when
// it holds the version the ECU runs (and its hash matches), else read back from the ECU; one ECU
// at a time on each bus, the buses in parallel.
void Manager::Backups(std::shared_ptr<Loaded> l, std::function<void(InstallReport)> done) {
  std::map<std::string, std::vector<size_t>> chains;  // medium -> single-bank targets
  for (size_t i = 0; i < l->bundle.ecus.size(); ++i) {
    if (l->bundle.ecus[i].method == InstallMethod::kUds) {
      chains[network_.medium(l->bundle.ecus[i].name)].push_back(i);
    }
  }
  auto left = std::make_shared<size_t>(chains.size());
  auto joined = [this, l, left, done]() {
    if (--*left > 0) return;
    Bases(*l);
    if (!l->report.problems.empty()) return End(l, done);
    RunCampaign(l, false, done);
  };
  if (chains.empty()) {
    ++*left;
    return joined();
  }
  for (auto& [medium, chain] : chains) BackupChain(l, std::move(chain), 0, joined);
}

void Manager::BackupChain(std::shared_ptr<Loaded> l, std::vector<size_t> chain, size_t k,
                          std::function<void()> joined) {
  if (k == chain.size()) return joined();
  const EcuTarget& t = l->bundle.ecus[chain[k]];
  auto next = [this, l, chain, k, joined]() mutable {
    BackupChain(l, std::move(chain), k + 1, std::move(joined));
  };
  const std::string running = l->report.before[t.name].software;
  if (auto kept = store_.Load(t.name); kept && kept->second == running) {
    l->backups[t.name] = std::move(*kept);
    return next();
  }
  const ecusim::EcuSpec* spec = network_.ecu(t.name);
  if (on_progress) on_progress(t.name, "backup", 0, 1);
  ReadBack(*network_.client(t.name), t.address, spec->config.app_size, UnlockFor(t.name),
           spec->config.write_unit,
           [this, l, name = t.name, next, running,
            alive = std::weak_ptr<bool>(alive_)](Result<Bytes> image) mutable {
             if (alive.expired()) return;
             if (!image.ok() || image->empty()) {
               l->report.problems.push_back(
                   name + ": no backup of its current image (" +
                   (image.ok() ? std::string("it reads back empty") : image.error().message()) +
                   "): a single-bank ECU is not erased without one");
               return next();
             }
             MemoryRandomSource read(*image);
             if (Status saved = store_.Save(name, read, running); !saved.ok()) {
               l->report.problems.push_back(
                   name + ": its backup cannot be kept: " + saved.error().message());
               return next();
             }
             if (on_progress) on_progress(name, "backup", 1, 1);
             l->backups[name] = {std::move(*image), running};
             // The read-back ended with a reset: the ECU starts again before the next step.
             loop_.After(std::chrono::milliseconds(500), next);
           });
}

// An ECU with its own agent: its package (the component's payload, a signed .aloft of its own)
// offered through the gateway's in-car device API under a new action id.
EcuJob Manager::AgentJob(const Loaded& l, const EcuTarget& t) {
  int64_t id = 1;
  if (auto last = ReadFile(Path("agent_action"), 64); last.ok()) {
    try {
      id = std::stoll(*last) + 1;
    } catch (...) {
    }
  }
  (void)WriteFileAtomic(Path("agent_action"), std::to_string(id) + "\n", 0600);
  EcuJob j{.name = t.name,
           .bus = "agent:" + t.name,
           .client = nullptr,
           .ab = true,
           .address = 0,
           .image = {},
           .version = t.version,
           .key = nullptr,
           .after = t.after};
  j.agent = config_.agent_ecus;
  auto payload = l.images.find(t.name);
  j.package = std::make_shared<const Bytes>(payload == l.images.end() ? Bytes{} : payload->second);
  j.action = id;
  return j;
}

void Manager::RunCampaign(std::shared_ptr<Loaded> l, bool recover,
                          std::function<void(InstallReport)> done) {
  if (!recover && l->path != Path("bundle.aloft")) {
    // Kept for a restart: the campaign's journal refers to it.
    std::error_code ec;
    std::filesystem::copy_file(l->path, Path("bundle.aloft.tmp"),
                               std::filesystem::copy_options::overwrite_existing, ec);
    if (!ec) std::filesystem::rename(Path("bundle.aloft.tmp"), Path("bundle.aloft"), ec);
    if (ec) {
      l->report.problems.push_back("cannot keep the bundle in " + Path("bundle.aloft") + ": " +
                                   ec.message());
      return End(l, done);
    }
  }
  std::vector<EcuJob> jobs;
  for (const EcuTarget& t : l->bundle.ecus) {
    if (t.method == InstallMethod::kAgent) {
      jobs.push_back(AgentJob(*l, t));
      continue;
    }
    EcuJob j{.name = t.name,
             .bus = network_.medium(t.name),
             .client = network_.client(t.name),
             .ab = t.method == InstallMethod::kUdsAb,
             .address = t.address,
             .image = l->images[t.name],
             .version = t.version,
             .after = t.after,
             .erase_block = network_.ecu(t.name)->config.erase_block};
    Unlock unlock = UnlockFor(t.name);
    j.key = std::move(unlock.key);
    j.credentials = std::move(unlock.credentials);
    if (auto b = l->backups.find(t.name); b != l->backups.end()) {
      j.backup = b->second.first;
      j.backup_version = b->second.second;
    }
    if (auto sha = HexDecode(t.sha256); sha.ok()) j.sha256 = std::move(*sha);
    if (auto sealed = l->sealed.find(t.name); sealed != l->sealed.end() && l->key && !t.base) {
      // It decrypts itself: the ciphertext goes over the bus, the key wrapped for its own.
      j.image = sealed->second.bytes;
      j.sealed = uds::SealedTransfer{.compression = sealed->second.compression,
                                     .salt = sealed->second.salt,
                                     .image_size = t.size,
                                     .wrap = [key = *l->key](std::span<const uint8_t> ecu_public) {
                                       return crypto::WrapContentKey(
                                           key, Bytes(ecu_public.begin(), ecu_public.end()));
                                     }};
    }
    if (t.base) {
      // Rebuilt from its base as it goes out (none when recovering: only going back remains).
      j.image.clear();
      auto patch = std::make_shared<const Bytes>(l->images[t.name]);
      auto base = l->bases.find(t.name);
      j.source = std::make_shared<DeltaImage>(
          base == l->bases.end() ? std::make_shared<const Bytes>() : base->second, patch, t.size);
    }
    if (on_progress) {
      j.progress = [this, name = t.name](uint64_t sent, uint64_t total) {
        if (on_progress) on_progress(name, "transfer", sent, total);
      };
    }
    jobs.push_back(std::move(j));
  }
  // Longest first: the transfers that decide when a bus is done start first.
  std::stable_sort(jobs.begin(), jobs.end(),
                   [](const EcuJob& a, const EcuJob& b) { return a.size() > b.size(); });
  campaign_ = std::make_unique<Campaign>(loop_, std::move(jobs), journal_.get());
  auto finished = [this, l, done, alive = std::weak_ptr<bool>(alive_)](CampaignReport r) {
    if (alive.expired()) return;
    l->report.campaign = std::move(r);
    l->report.result = l->report.campaign.outcome == Outcome::kAllNew   ? InstallResult::kAllNew
                       : l->report.campaign.outcome == Outcome::kAllOld ? InstallResult::kAllOld
                                                                        : InstallResult::kFailed;
    if (l->report.result == InstallResult::kAllNew) {
      // The new images are the next campaign's backups; their counters are the floor now.
      Counters updated;
      for (const EcuTarget& t : l->bundle.ecus) {
        updated[t.name] = t.security_counter;
        // Every ECU's (the next delta's base; for a single-bank ECU its next backup too); an
        // agent ECU keeps its own.
        if (t.method == InstallMethod::kAgent) continue;
        if (t.base) {
          DeltaImage image(l->bases[t.name], std::make_shared<const Bytes>(l->images[t.name]),
                           t.size);
          (void)store_.Save(t.name, image, t.version);
        } else {
          MemoryRandomSource image(l->images[t.name]);
          (void)store_.Save(t.name, image, t.version);
        }
      }
      (void)store_.RaiseCounters(updated);
    }
    End(l, done);
  };
  if (recover) {
    campaign_->Recover(finished);
  } else {
    campaign_->Run(finished);
    Watch(l);
  }
}

void Manager::Recover(std::function<void(InstallReport)> done) {
  auto state = journal_->Load();
  if (!state.ok() || !*state || (*state)->phase == "done") {
    InstallReport report;
    report.result = state.ok() && *state && (*state)->outcome == "all-new" ? InstallResult::kAllNew
                                                                           : InstallResult::kAllOld;
    loop_.Post([done, report] { done(report); });
    return;
  }
  InstallReport report;
  auto loaded = Load(Path("bundle.aloft"), report);
  if (!loaded.ok()) {
    report.result = InstallResult::kFailed;
    report.problems.push_back("an unfinished campaign, and its bundle cannot be read: " +
                              loaded.error().message());
    loop_.Post([done, report] { done(report); });
    return;
  }
  auto l = *loaded;
  l->report = std::move(report);
  for (const EcuTarget& t : l->bundle.ecus) {
    if (t.method != InstallMethod::kUds) continue;
    if (auto kept = store_.Load(t.name)) l->backups[t.name] = std::move(*kept);
  }
  ReadInventory([this, l, done](Inventory inv) {
    l->report.before = std::move(inv);
    EnterOtaMode(l, true, done);
  });
}

}  // namespace aloft::vehicle
