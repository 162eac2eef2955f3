#include "vehicle/campaign.h"

#include "vehicle/uds_steps.h"

namespace aloft::vehicle {

const char* ToString(Outcome o) {
  switch (o) {
    case Outcome::kAllNew:
      return "all-new";
    case Outcome::kAllOld:
      return "all-old";
    case Outcome::kFailed:
      return "failed";
  }
  return "?";
}

Campaign::Campaign(EventLoop& loop, std::vector<EcuJob> jobs, CampaignJournal* journal)
    : loop_(loop), journal_(journal) {
  for (auto& j : jobs) ecus_.push_back(Ecu{std::move(j)});
  // Activation order: each ECU after those it follows, otherwise in the jobs' order (a cycle,
  // which the bundle checks refuse, would leave the rest in the jobs' order).
  std::vector<bool> placed(ecus_.size());
  while (activation_.size() < ecus_.size()) {
    size_t before = activation_.size();
    for (size_t i = 0; i < ecus_.size(); ++i) {
      if (placed[i]) continue;
      bool ready = true;
      for (const std::string& name : ecus_[i].job.after) {
        for (size_t j = 0; j < ecus_.size(); ++j) ready &= ecus_[j].job.name != name || placed[j];
      }
      if (!ready) continue;
      placed[i] = true;
      activation_.push_back(i);
    }
    if (activation_.size() == before) {
      for (size_t i = 0; i < ecus_.size(); ++i) {
        if (!placed[i]) activation_.push_back(i);
      }
    }
  }
}

void Campaign::Note(const std::string& line) { report_.log.push_back(line); }

// The ECU's flasher for `phases` of its new image or its backup (the version it then reports
// checked, except after a transfer alone); the caller runs it.
void Campaign::StartFlash(Ecu& e, uds::FlashPhases phases, bool backup) {
  uds::FlashPlan plan{.phases = phases,
                      .image = backup ? e.job.backup : e.job.image,
                      .address = e.job.address,
                      .key = e.job.key,
                      .expect_version = backup ? e.job.backup_version
                                        : phases == uds::FlashPhases::kTransfer ? ""
                                                                                : e.job.version,
                      .progress = e.job.progress,
                      .resume_block = e.job.erase_block};
  if (!backup) {
    plan.source = e.job.source;
    plan.sha256 = e.job.sha256;
    plan.sealed = e.job.sealed;
  }
  plan.credentials = e.job.credentials;
  plan.on_erase = [&e] { e.erased = true; };
  plan.on_reset = [this, &e] {
    if (!e.pause_counted) return;
    e.pause_counted = false;  // paused: it leaves the programming session for its new image
    SafeStep(-1);
  };
  e.flasher = std::make_unique<uds::Flasher>(*e.job.client, std::move(plan));
}

bool Campaign::Record() {
  if (dead_) return false;
  if (!journal_) return true;
  JournalState s;
  s.phase = phase_;
  for (const Ecu& e : ecus_) {
    const bool allowed = e.job.agent && e.state == State::kActivating;
    s.ecus[e.job.name] = e.back                         ? "back"
                         : e.state == State::kActivated ? "activated"
                         : allowed                      ? "allowed"
                         : e.touched                    ? "touched"
                                                        : "pending";
    if (e.job.agent) s.actions[e.job.name] = e.job.action;
  }
  if (phase_ == "done") s.outcome = ToString(report_.outcome);
  if (!journal_->Save(s).ok()) {
    dead_ = true;  // the gateway's power is gone: nothing more happens
    for (auto& e : ecus_) {
      if (e.job.client) e.job.client->StopTesterPresent();
    }
    return false;
  }
  return true;
}

void Campaign::Recover(std::function<void(CampaignReport)> done) {
  done_ = std::move(done);
  Result<std::optional<JournalState>> loaded =
      journal_ ? journal_->Load() : Result<std::optional<JournalState>>(std::nullopt);
  if (!loaded.ok() || !*loaded || (*loaded)->phase == "done") {
    report_.outcome = loaded.ok() && *loaded && (*loaded)->outcome == "all-new" ? Outcome::kAllNew
                                                                                : Outcome::kAllOld;
    Note("recover: nothing unfinished");
    auto d = std::move(done_);
    if (d) d(std::move(report_));
    return;
  }
  std::vector<size_t> allowed;
  bool others_activated = true;
  for (size_t i = 0; i < ecus_.size(); ++i) {
    Ecu& e = ecus_[i];
    auto it = (*loaded)->ecus.find(e.job.name);
    const std::string st = it == (*loaded)->ecus.end() ? "pending" : it->second;
    e.touched = st == "touched" || st == "activated" || st == "allowed";
    e.erased = e.touched && !e.job.agent;  // not known after a restart: as if it were
    e.back = st == "back";
    if (auto a = (*loaded)->actions.find(e.job.name); a != (*loaded)->actions.end()) {
      e.job.action = a->second;
    }
    if (st == "allowed" && e.job.agent) allowed.push_back(i);  // at least one was let install
    if (!e.job.agent && st != "activated") others_activated = false;
  }
  if (!allowed.empty() && others_activated && (*loaded)->phase == "activate") {
    // Every other ECU runs its new version, and an ECU with its own agent was let install: it
    // commits by itself, so its outcome decides. Its action is offered again, allowed; its
    // success (or a check-in with the new version) ends the campaign all-new, its failure
    // sends the others back.
    phase_ = "activate";
    for (size_t i = 0; i < ecus_.size(); ++i) {
      Ecu& e = ecus_[i];
      const std::string& st = (*loaded)->ecus[e.job.name];
      if (!e.job.agent || st == "activated") {
        e.state = State::kActivated;
        continue;
      }
      // An ECU with its own agent, let install or about to be (the last wave goes at once).
      Note("recover: " + e.job.name + " goes on installing " + e.job.version +
           ": its outcome decides");
      e.state = State::kActivating;
      ++activating_;
      if (Status s = e.job.agent->Offer(e.job.name, e.job.package, e.job.action); !s.ok()) {
        loop_.Post([this, i, s] { ActivationDone(i, s); });
        continue;
      }
      e.job.agent->Allow(e.job.name);
      WatchAgent(i, [this, i](Status s) { ActivationDone(i, std::move(s)); });
    }
    return;
  }
  Note("recover: an unfinished campaign (" + (*loaded)->phase + "): back to the old images");
  failing_ = true;
  Rollback();
}

void Campaign::Run(std::function<void(CampaignReport)> done) {
  done_ = std::move(done);
  NextTransfers();
}

// Phase 1: one transfer per bus at a time, buses in parallel.
void Campaign::NextTransfers() {
  if (dead_ || paused_) return;  // paused: not even a rollback resets or flashes an ECU
  if (failing_) {
    if (running_ == 0 && activating_ == 0) Rollback();
    return;
  }
  bool all_transferred = true;
  for (size_t i = 0; i < ecus_.size(); ++i) {
    Ecu& e = ecus_[i];
    if (e.state != State::kTransferred && e.state != State::kActivated &&
        e.state != State::kActivating) {
      all_transferred = false;
    }
    if (e.state != State::kPending || bus_busy_[e.job.bus] || !Ready(e, State::kTransferred)) {
      continue;
    }
    phase_ = "transfer";
    e.touched = true;
    if (!Record()) return;  // journaled before its first byte reaches it
    bus_busy_[e.job.bus] = true;
    e.state = State::kTransferring;
    ++running_;
    if (e.job.agent) {
      StartAgentTransfer(i);
      continue;
    }
    StartFlash(e, uds::FlashPhases::kTransfer, false);
    e.flasher->Run([this, i](Result<uds::FlashReport> r) {
      TransferDone(i, r.ok() ? OkStatus() : Status(std::move(r).error()));
    });
  }
  if (all_transferred && running_ == 0) Activate();
}

// A transfer ended (`r`): transferred, retried (a UDS ECU: reset, then resumed), or failed.
void Campaign::TransferDone(size_t i, Status r) {
  if (dead_) return;
  Ecu& ecu = ecus_[i];
  --running_;
  bus_busy_[ecu.job.bus] = false;
  if (r.ok()) {
    ecu.state = State::kTransferred;
    // Its session must last until it is activated.
    if (ecu.job.client) ecu.job.client->StartTesterPresent();
    Note(ecu.job.name + ": transferred " + ecu.job.version +
         (ecu.job.sealed ? " (sealed: the ECU decrypted it)" : ""));
    if (paused_ && !failing_ && !ecu.job.agent) {
      // Paused meanwhile: a single-bank ECU is activated now, to be bootable again (once
      // this flasher's callback has returned: activating replaces it).
      loop_.Post([this, i] {
        if (!dead_) ActivateOne(i);
      });
      return;
    }
  } else if (!ecu.job.agent && ++ecu.attempts < ecu.job.attempts && !failing_ && !paused_) {
    // A transport hiccup or a fault of the ECU's: it is reset and its transfer resumed
    // (from the first erase block it does not hold) a while later.
    Note(ecu.job.name + ": transfer failed (" + r.error().message() + "), attempt " +
         std::to_string(ecu.attempts + 1) + " of " + std::to_string(ecu.job.attempts) + " follows");
    ecu.state = State::kRetrying;
    bus_busy_[ecu.job.bus] = true;
    ++running_;
    ecu.job.client->Request({0x11, 0x01}, [this, i, alive = Alive()](Result<uds::Response>) {
      if (alive.expired() || dead_) return;
      loop_.After(std::chrono::seconds(1), [this, i, alive] {
        if (alive.expired() || dead_) return;
        --running_;
        Ecu& again = ecus_[i];
        bus_busy_[again.job.bus] = false;
        again.state = State::kPending;
        NextTransfers();
      });
    });
    return;
  } else {
    ecu.state = State::kFailed;
    failing_ = true;
    report_.first_failure = ecu.job.name + ": " + r.error().message();
    Note(ecu.job.name + ": transfer failed: " + r.error().message());
  }
  if (ecu.pause_counted) {  // it failed: the rollback deals with it
    ecu.pause_counted = false;
    SafeStep(-1);
  }
  loop_.Post([this] { NextTransfers(); });
}

void Campaign::Pause(const std::string& why, std::function<void()> safe) {
  if (dead_ || paused_ || failing_ || phase_ == "done" || phase_ == "rollback") {
    if (safe) loop_.Post(safe);
    return;
  }
  paused_ = true;
  safe_ = std::move(safe);
  unsafe_ = 1;  // released at the end of this function
  Note("paused: " + why);
  for (size_t i = 0; i < ecus_.size(); ++i) {
    Ecu& e = ecus_[i];
    if (e.state == State::kActivating) {  // it finishes: a moment
      e.pause_counted = true;
      SafeStep(+1);
      continue;
    }
    if (e.state != State::kTransferring && e.state != State::kTransferred) continue;
    if (e.job.agent) continue;  // its download touches nothing that runs
    if (!e.job.ab) {
      e.pause_counted = true;
      SafeStep(+1);
      // Its transfer finishes (NextTransfers' callback activates it); or it is activated now.
      if (e.state == State::kTransferred) ActivateOne(i);
      continue;
    }
    // An A/B ECU: its old bank still starts. Its transfer stops; a reset takes it there.
    if (e.state == State::kTransferring) {
      e.flasher.reset();
      --running_;
      bus_busy_[e.job.bus] = false;
    }
    e.job.client->StopTesterPresent();
    e.state = State::kPending;
    SafeStep(+1);
    e.job.client->Request({0x11, 0x01}, [this, i, alive = Alive()](Result<uds::Response>) {
      if (alive.expired() || dead_) return;
      // Acknowledged: it leaves the programming session and starts its old bank, which it
      // never stopped holding.
      Note(ecus_[i].job.name + ": reset onto its old bank (paused)");
      SafeStep(-1);
    });
  }
  SafeStep(-1);
}

void Campaign::SafeStep(int delta) {
  unsafe_ += delta;
  if (unsafe_ == 0 && safe_) {
    auto safe = std::move(safe_);
    safe_ = nullptr;
    safe();
  }
}

void Campaign::Resume() {
  if (dead_ || !paused_) return;
  paused_ = false;
  Note("resumed");
  loop_.Post([this] { NextTransfers(); });
}

void Campaign::Abort(const std::string& why) {
  if (dead_ || failing_ || phase_ == "done") return;
  failing_ = true;
  if (report_.first_failure.empty()) report_.first_failure = why;
  Note("aborted: " + why + (paused_ ? "; going back once resumed" : ""));
  loop_.Post([this] { NextTransfers(); });
}

// Whether every ECU `e` follows is transferred (the jobs come in an order that respects them).
// Whether every ECU `e` follows got as far as `least` (transferred: transferred or further).
bool Campaign::Ready(const Ecu& e, State least) const {
  for (const std::string& name : e.job.after) {
    for (const Ecu& other : ecus_) {
      if (other.job.name != name) continue;
      const bool far = other.state == State::kActivated ||
                       (least == State::kTransferred &&
                        (other.state == State::kTransferred || other.state == State::kActivating));
      if (!far) return false;
    }
  }
  return true;
}

// Phase 2: every ECU transferred; each activated once those it follows run their new version,
// the others at the same time.
void Campaign::Activate() {
  if (dead_ || failing_ || paused_) return;  // Resume goes through NextTransfers, back here
  size_t done = 0;
  // ECUs with their own agent go last, once every other one runs its new version: they commit
  // by themselves, so nothing may fail after them.
  bool others_done = true;
  for (const Ecu& e : ecus_)
    others_done = others_done && (e.job.agent || e.state == State::kActivated);
  for (size_t i : activation_) {
    Ecu& e = ecus_[i];
    if (e.state == State::kActivated) ++done;
    if (e.state != State::kTransferred || !Ready(e, State::kActivated)) continue;
    if (e.job.agent && !others_done) continue;
    phase_ = "activate";
    ActivateOne(i);
    if (dead_) return;
  }
  if (done == ecus_.size()) Finish(Outcome::kAllNew);
}

void Campaign::ActivateOne(size_t i) {
  Ecu& e = ecus_[i];
  if (e.job.agent) e.state = State::kActivating;  // journaled as allowed before it is
  if (!Record()) return;
  e.state = State::kActivating;
  ++activating_;
  if (e.job.agent) {
    // Its agent installs, restarts into the new image, checks its health and commits, or goes
    // back by itself.
    e.job.agent->Allow(e.job.name);
    Note(e.job.name + ": its agent may install " + e.job.version);
    WatchAgent(i, [this, i](Status s) { ActivationDone(i, std::move(s)); });
    return;
  }
  StartFlash(e, uds::FlashPhases::kActivate, false);
  e.flasher->Run([this, i](Result<uds::FlashReport> r) {
    ActivationDone(i, r.ok() ? OkStatus() : Status(std::move(r).error()));
  });
}

void Campaign::ActivationDone(size_t i, Status r) {
  if (dead_) return;
  Ecu& ecu = ecus_[i];
  --activating_;
  if (ecu.job.client) ecu.job.client->StopTesterPresent();
  if (ecu.pause_counted) {
    ecu.pause_counted = false;
    SafeStep(-1);
  }
  if (r.ok()) {
    ecu.state = State::kActivated;
    Note(ecu.job.name + ": runs " + ecu.job.version);
    // Another one may have failed meanwhile: then the rollback waits for this one.
    loop_.Post([this] { failing_ ? NextTransfers() : Activate(); });
    return;
  }
  ecu.state = State::kFailed;
  ecu.touched = true;
  if (report_.first_failure.empty()) {
    report_.first_failure = ecu.job.name + ": " + r.error().message();
  }
  Note(ecu.job.name + ": activation failed: " + r.error().message());
  failing_ = true;
  loop_.Post([this] { NextTransfers(); });
}

// An agent ECU's transfer: its package offered download-only; its agent downloads, verifies and
// holds it ("downloaded"), or refuses it ("failure", with its reason).
void Campaign::StartAgentTransfer(size_t i) {
  Ecu& e = ecus_[i];
  if (Status s = e.job.agent->Offer(e.job.name, e.job.package, e.job.action); !s.ok()) {
    loop_.Post([this, i, s] { TransferDone(i, s); });
    return;
  }
  WatchAgent(i, [this, i](Status s) { TransferDone(i, std::move(s)); });
}

// Until the agent's feedback on the offer is "downloaded" (a transfer) or "success" (an
// activation), or "failure": `then` gets the outcome; its silence past the job's agent_timeout
// is a failure too.
void Campaign::WatchAgent(size_t i, std::function<void(Status)> then) {
  const auto until = loop_.Now() + ecus_[i].job.agent_timeout;
  auto tick = std::make_shared<std::function<void()>>();
  std::weak_ptr<std::function<void()>> self = tick;
  *tick = [this, i, then, until, self, alive = Alive()] {
    if (alive.expired() || dead_) return;
    const Ecu& e = ecus_[i];
    const AgentEcuServer::State s = e.job.agent->state(e.job.name);
    const bool activating = e.state == State::kActivating;
    if (s.action == e.job.action && s.status == (activating ? "success" : "downloaded")) {
      return then(OkStatus());
    }
    // Committed before the gateway's restart: its agent does not take the same action again,
    // and its check-in says what it runs.
    if (activating && s.seen && !s.versions.empty() &&
        s.versions.begin()->second == e.job.version) {
      return then(OkStatus());
    }
    if (s.action == e.job.action && s.status == "failure") {
      std::string why = s.details.is_string() ? s.details.get<std::string>() : s.details.dump();
      if (s.details.is_array() && !s.details.empty() && s.details[0].is_string()) {
        why = s.details[0].get<std::string>();
      }
      return then(Error(Code::kUnavailable, "its agent reports a failure: " + why));
    }
    if (loop_.Now() >= until) {
      return then(Error(
          Code::kUnavailable,
          "no word from its agent within " +
              std::to_string(
                  std::chrono::duration_cast<std::chrono::seconds>(e.job.agent_timeout).count()) +
              " s (last: " + (s.status.empty() ? "nothing" : s.status) + ")"));
    }
    if (auto again = self.lock())
      loop_.After(std::chrono::milliseconds(250), [again] { (*again)(); });
  };
  loop_.Post([tick] { (*tick)(); });
}

void Campaign::Rollback() {
  if (dead_ || rolling_) return;
  rolling_ = true;
  for (auto& e : ecus_) {
    if (e.job.client) e.job.client->StopTesterPresent();
    // An agent ECU holding its package drops it (one that failed went back by itself).
    if (e.job.agent && e.touched && e.state != State::kActivated) e.job.agent->Withdraw(e.job.name);
  }
  phase_ = "rollback";
  if (!Record()) return;
  Note("rolling back every ECU");
  RollbackNext(0);
}

// Each ECU that was touched goes back to its old image; an ECU that is away (resetting, power
// lost) is tried again, five times, a second apart.
void Campaign::RollbackNext(size_t i) {
  if (dead_) return;
  if (i == ecus_.size()) return Finish(rollback_failed_ ? Outcome::kFailed : Outcome::kAllOld);
  // Untouched ones, and ones whose flash never changed (they failed before their erase), stay.
  if (!ecus_[i].touched || ecus_[i].back || !ecus_[i].erased) return RollbackNext(i + 1);
  RollbackAttempt(i, 1);
}

void Campaign::RollbackAttempt(size_t i, int tries) {
  Ecu& ecu = ecus_[i];
  auto next = [this, i, tries](Status s) {
    if (dead_) return;
    Ecu& again = ecus_[i];
    if (s.ok()) {
      again.back = true;
      if (!Record()) return;
      Note(again.job.name + ": back on " +
           (again.job.ab ? std::string("its old bank") : again.job.backup_version));
      loop_.Post([this, i] { RollbackNext(i + 1); });
      return;
    }
    if (tries >= 5) {
      // The others still go back; the campaign stays unfinished, to be tried again.
      Note(again.job.name + ": rollback failed: " + s.error().message());
      rollback_failed_ = true;
      loop_.Post([this, i] { RollbackNext(i + 1); });
      return;
    }
    loop_.After(std::chrono::seconds(1), [this, i, tries, alive = Alive()] {
      if (!alive.expired() && !dead_) RollbackAttempt(i, tries + 1);
    });
  };
  if (ecu.job.ab) {
    // Whatever was committed goes back to the other bank; then a reset.
    RunSequence(*ecu.job.client,
                {{0x10, 0x03},
                 {0x31, 0x01, 0x02, 0x03},
                 {0x10, 0x02},
                 {0x27, 0x01},
                 {0x31, 0x01, 0xFF, 0x02},
                 {0x11, 0x01}},
                {ecu.job.key, ecu.job.credentials}, [this, next](Status s) {
                  if (dead_) return;
                  if (!s.ok()) return next(s);
                  loop_.After(std::chrono::milliseconds(300), [next] { next(OkStatus()); });
                });
    return;
  }
  StartFlash(ecu, uds::FlashPhases::kAll, true);
  ecu.flasher->Run([next](Result<uds::FlashReport> r) {
    next(r.ok() ? OkStatus() : Status(std::move(r).error()));
  });
}

void Campaign::Finish(Outcome o) {
  if (dead_) return;
  report_.outcome = o;
  // A rollback that could not finish stays unfinished in the journal: the next start tries again.
  if (o != Outcome::kFailed) phase_ = "done";
  if (!Record()) return;
  Note(std::string("campaign: ") + ToString(o));
  auto done = std::move(done_);
  if (done) done(std::move(report_));
}

}  // namespace aloft::vehicle
