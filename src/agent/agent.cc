#include "agent/agent.h"

#include <filesystem>
#include <thread>

#include "agent/command.h"
#include "client/http_client.h"
#include "core/file.h"
#include "core/semver.h"
#include "delta/apply.h"
#include "pkg/package.h"

namespace aloft::agent {
namespace {

using json = nlohmann::json;

// Installs of one offer redone after resets undid them, before activation fails for good.
constexpr uint32_t kMaxReinstalls = 2;

// Reads payloads and keeps nothing: PackageReader checks every hash on the way.
class DiscardSink final : public pkg::PayloadSink {
 public:
  Status Begin(const pkg::Component&) override { return OkStatus(); }
  Status Write(ByteSpan) override { return OkStatus(); }
  Status End(const pkg::Component&) override { return OkStatus(); }
};

// What a component installs: its image, labelled with the release version.
boot::ImageSlot TargetSlot(const pkg::Component& c, const std::string& version) {
  return SlotFrom(version, c.image.size, c.image.sha256);
}

// The image a delta applies to, read from the storage being installed into.
class StorageBase final : public delta::Base {
 public:
  StorageBase(Storage& storage, uint64_t size) : storage_(storage), size_(size) {}
  uint64_t size() const override { return size_; }
  Status ReadAt(uint64_t offset, std::span<uint8_t> out) override {
    return storage_.ReadBase(offset, out);
  }

 private:
  Storage& storage_;
  uint64_t size_;
};

// Streams each component's image into its module's storage, telling `tick` of the bytes. A delta
// component's payload goes through the patcher, which reads the base from the same storage; the
// storage's EndInstall then reads the image back against the manifest's hash.
class InstallSink final : public pkg::PayloadSink {
 public:
  InstallSink(const std::vector<Module>& modules, std::string version,
              const delta::ApplyOptions& apply, std::function<void(uint64_t)> tick)
      : modules_(modules), version_(std::move(version)), apply_(apply), tick_(std::move(tick)) {}

  Status Begin(const pkg::Component& c) override {
    current_ = nullptr;
    patcher_.reset();
    for (const Module& m : modules_) {
      if (m.name == c.name) current_ = m.storage;
    }
    if (!current_) return Error(Code::kInternal, "no storage for module " + c.name);
    ALOFT_RETURN_IF_ERROR(current_->BeginInstall(TargetSlot(c, version_)));
    if (c.type == pkg::ComponentType::kDelta) {
      if (!c.base) return Error(Code::kMalformed, "delta component " + c.name + " has no base");
      base_.emplace(*current_, c.base->size);
      patcher_.emplace(*base_, *current_, apply_);
    }
    return OkStatus();
  }
  Status Write(ByteSpan data) override {
    if (patcher_) {
      if (Status s = patcher_->Write(data); !s.ok()) return s.error().WithContext("delta");
    } else {
      ALOFT_RETURN_IF_ERROR(current_->Write(data));
    }
    tick_(data.size());
    return OkStatus();
  }
  Status End(const pkg::Component& c) override {
    if (patcher_) {
      if (Status s = patcher_->Finish(); !s.ok()) return s.error().WithContext("delta");
      patcher_.reset();
    }
    return current_->EndInstall(TargetSlot(c, version_));
  }

 private:
  const std::vector<Module>& modules_;
  std::string version_;
  delta::ApplyOptions apply_;
  std::function<void(uint64_t)> tick_;
  Storage* current_ = nullptr;
  std::optional<StorageBase> base_;
  std::optional<delta::Patcher> patcher_;
};

bool Transient(const Error& e) { return e.code() == Code::kUnavailable; }

}  // namespace

Agent::Agent(AgentConfig config, std::vector<Module> modules, Staging* staging, Uplink* uplink)
    : config_(std::move(config)),
      modules_(std::move(modules)),
      staging_(staging),
      uplink_(uplink),
      poll_interval_(config_.poll_interval),
      payload_keys_(config_.encryption_key_file.empty() ? config_.state_dir + "/encryption.key"
                                                        : config_.encryption_key_file) {
  if (!uplink_) {
    own_uplink_ = MakeHttpUplink(config_.server, config_.device, config_.token, config_.tls());
    uplink_ = own_uplink_.get();
  }
}

Module* Agent::FindModule(const std::string& name) {
  for (auto& m : modules_) {
    if (m.name == name) return &m;
  }
  return nullptr;
}

std::vector<std::string> Agent::AuthHeaders() const { return client::BearerHeaders(config_.token); }

Status Agent::Go(Event e) {
  ALOFT_ASSIGN_OR_RETURN(State next, Next(journal_.state, e));
  journal_.state = next;
  journal_.attempts = 0;
  return SaveJournal(journal_path(), journal_);
}

Status Agent::Fail(const Error& e) {
  Outcome o;
  o.success = false;
  o.code = static_cast<int>(e.code());
  o.details.push_back(std::string(StateName(journal_.state)) + ": " + e.ToString());
  journal_.outcome = std::move(o);
  return Go(Event::kFailed);
}

boot::ImageSlot Agent::Target(const pkg::Component& c) const {
  return TargetSlot(c, journal_.offer ? journal_.offer->version : "");
}

Result<Agent::StagedPackage> Agent::OpenStaged() {
  StagedPackage p;
  p.source = staging_->Open(journal_.offer->size);
  if (!p.source) return Error(Code::kIo, staging_->Describe() + ": cannot read the package");
  ALOFT_ASSIGN_OR_RETURN(p.reader,
                         pkg::PackageReader::Open(*p.source, staging_->Describe(), &config_.trust));
  p.reader->set_max_window(config_.max_window);
  ALOFT_ASSIGN_OR_RETURN(
      auto key, payload_keys_.ContentKeyFor(p.reader->manifest(), journal_.offer->wrapped_key));
  if (key) p.reader->set_content_key(*key);  // decrypted while it installs
  return p;
}

Result<pkg::Envelope> Agent::OfferedEnvelope() const {
  if (!journal_.offer) return Error(Code::kInternal, "no offer in the journal");
  return pkg::ParseEnvelope(journal_.offer->manifest);
}

Status Agent::Admit(const pkg::Manifest& m) {
  const std::string pkg = "package " + m.name + " " + m.version.ToString();
  if (std::find(m.hardware.begin(), m.hardware.end(), config_.device_type) == m.hardware.end()) {
    std::string list;
    for (const auto& h : m.hardware) list += (list.empty() ? "" : ", ") + h;
    return Error(Code::kUnsupported, pkg + " is for " + list + "; this device is a " +
                                         config_.device_type + " (wrong hardware)");
  }
  for (const pkg::Component& c : m.components) {
    Module* mod = FindModule(c.name);
    if (!mod) {
      return Error(Code::kUnsupported, pkg + ": module '" + c.name + "' is not on this device");
    }
    ALOFT_ASSIGN_OR_RETURN(StorageStatus st, mod->storage->GetStatus());
    const std::string where = pkg + ", module " + c.name;
    if (c.security_counter < st.security_counter) {
      return Error(Code::kPermissionDenied,
                   where + ": security counter " + std::to_string(c.security_counter) +
                       " is below the device's " + std::to_string(st.security_counter) +
                       " (anti-rollback)");
    }
    auto installed = SemVer::Parse(st.confirmed.version);
    if (installed.ok() && !config_.allow_downgrade && !(m.version > *installed)) {
      return Error(Code::kPermissionDenied,
                   where + ": " + m.version.ToString() + " is not newer than the installed " +
                       installed->ToString() + " (downgrade refused; allow_downgrade is off)");
    }
    if (c.image.size > mod->storage->image_capacity()) {
      return Error(Code::kOutOfRange, where + ": no space: the image has " +
                                          std::to_string(c.image.size) + " bytes, the slot " +
                                          std::to_string(mod->storage->image_capacity()));
    }
    if (c.type == pkg::ComponentType::kDelta) {
      const std::string active = SlotSha256(st.confirmed);
      if (!c.base || c.base->sha256 != active) {
        return Error(Code::kIntegrity, where + ": delta base mismatch: the delta applies to " +
                                           (c.base ? c.base->version + " (sha256 " +
                                                         c.base->sha256.substr(0, 12) + "…)"
                                                   : std::string("nothing")) +
                                           ", the device runs " + DescribeSlot(st.confirmed));
      }
    }
  }
  // Encrypted payloads: the key wrapped for this device opens them (known before the download).
  auto key = payload_keys_.ContentKeyFor(m, journal_.offer ? journal_.offer->wrapped_key : "");
  if (!key.ok()) return std::move(key).error().WithContext(pkg);
  return OkStatus();
}

void Agent::Feedback(const std::string& status, int progress) {
  json body = {{"status", status}};
  if (progress >= 0) body["progress"] = progress;
  (void)SendFeedback(body);  // progress is best effort; the final report is not
}

Status Agent::SendFeedback(const json& body) {
  if (!journal_.offer) return OkStatus();
  return uplink_->Feedback(journal_.offer->action, body);
}

int64_t Agent::NowMs() const {
  const Clock& c = config_.clock ? *config_.clock : SystemClock::Instance();
  return std::chrono::duration_cast<std::chrono::milliseconds>(c.Wall().time_since_epoch()).count();
}

Status Agent::OpenUptane() {
  if (uptane_ || !config_.uptane) return OkStatus();
  ALOFT_ASSIGN_OR_RETURN(
      uptane_, UptaneLink::Open(*config_.uptane, config_.state_dir, config_.device,
                                {{config_.device, {{"hardware_id", config_.device_type}}}},
                                config_.server, config_.tls()));
  return OkStatus();
}

Result<json> Agent::CheckIn() {
  json versions = json::object();
  for (auto& m : modules_) {
    auto st = m.storage->GetStatus();
    if (st.ok() && !st->confirmed.version.empty()) versions[m.name] = st->confirmed.version;
  }
  json body = {{"versions", versions}, {"attributes", config_.attributes}};
  // The device's encryption key, enrolled with the first check-in after a start.
  if (!key_enrolled_) {
    if (auto pub = payload_keys_.PublicKey(); pub.ok()) body["encryption_key"] = *pub;
  }
  ALOFT_RETURN_IF_ERROR(OpenUptane());
  if (uptane_) {
    ALOFT_ASSIGN_OR_RETURN(body["uptane"],
                           uptane_->client().CheckInPart({{config_.device, versions}}));
  }
  ALOFT_ASSIGN_OR_RETURN(json j, uplink_->CheckIn(body));
  if (body.contains("encryption_key")) key_enrolled_ = true;
  if (j.contains("poll_interval_s") && j["poll_interval_s"].is_number_integer()) {
    poll_interval_ = std::chrono::seconds(j["poll_interval_s"].get<int64_t>());
  }
  if (uptane_) uptane_->Answer(j, NowMs());
  return j.contains("action") ? j["action"] : json();
}

Status Agent::Check(bool& idle) {
  ALOFT_ASSIGN_OR_RETURN(const json a, CheckIn());
  if (a.is_object() && a.value("cancel", false)) {
    // Canceled while this device held nothing of it (a journal lost, say): acknowledge.
    journal_.offer = Offer{};
    journal_.offer->action = a.value("id", int64_t{0});
    Status acked = SendFeedback({{"status", "canceled"}});
    journal_.offer.reset();  // never journaled: this offer was only the feedback's address
    ALOFT_RETURN_IF_ERROR(acked);
  }
  const bool finished = a.is_object() && a.contains("id") && a["id"].is_number_integer() &&
                        a["id"].get<int64_t>() == journal_.finished && journal_.finished != 0;
  if (!a.is_object() || a.value("cancel", false) || finished) {
    // `finished`: its final report left over MQTT and has not been handled yet; nothing to redo.
    idle = true;
    return Go(Event::kNoUpdate);
  }
  Offer o;
  try {
    o.action = a.at("id").get<int64_t>();
    o.release = a.value("release", "");
    o.version = a.value("version", "");
    o.mode = a.value("mode", "forced");
    o.install = a.value("install", true);
    const json& d = a.at("download");
    o.url = d.at("url").get<std::string>();
    o.size = d.at("size").get<uint64_t>();
    o.sha256 = d.at("sha256").get<std::string>();
    if (a.contains("manifest") && a["manifest"].is_object()) o.manifest = a["manifest"].dump();
    if (a.contains("encryption") && a["encryption"].is_object()) {
      o.wrapped_key = a["encryption"].value("wrapped_key", "");
    }
  } catch (const json::exception& e) {
    return Error(Code::kUnavailable, std::string("check-in: unexpected answer: ") + e.what());
  }
  journal_.offer = o;
  journal_.downloaded = 0;
  journal_.outcome.reset();
  if (o.manifest.empty()) {
    return Fail(Error(Code::kUnsupported, "release " + o.release + " " + o.version +
                                              " is a plain artifact, not an .aloft package"));
  }
  // Uptane: the Director lists it for this device and the Image repository agrees.
  if (uptane_) {
    auto wrapped = uptane_->VerifyOffer(o.action, config_.device, config_.device_type, o.size,
                                        o.sha256, NowMs());
    if (!wrapped.ok()) return Fail(wrapped.error());
    if (!wrapped->empty()) journal_.offer->wrapped_key = *wrapped;  // the Director's, signed
  }
  // Verify what we are offered before downloading a byte.
  auto envelope = pkg::ParseEnvelope(o.manifest);
  Status admitted =
      envelope.ok() ? pkg::VerifySignatures(*envelope, config_.trust) : Status(envelope.error());
  if (admitted.ok()) admitted = Admit(envelope->manifest);
  if (!admitted.ok()) return Fail(admitted.error());
  return Go(Event::kOffer);
}

Status Agent::DoDownload() {
  Feedback("downloading", 0);
  last_progress_ = 0;
  DownloadRequest req;
  req.url = journal_.offer->url;
  req.headers = AuthHeaders();
  req.size = journal_.offer->size;
  req.sha256 = journal_.offer->sha256;
  DownloadOptions o = config_.download;
  o.ca_file = config_.ca_file;
  o.cert_file = config_.cert_file;
  o.key_file = config_.key_file;
  auto checkpoint = [this](uint64_t durable) {
    journal_.downloaded = durable;
    return SaveJournal(journal_path(), journal_);
  };
  auto progress = [this](uint64_t done, uint64_t total) {
    int pct = total ? static_cast<int>(done * 100 / total) : 100;
    if (pct / 10 > last_progress_ / 10) {
      last_progress_ = pct;
      Feedback("downloading", pct);
    }
  };
  auto stats = Download(req, o, *staging_, journal_.downloaded, checkpoint, progress);
  if (!stats.ok()) return stats.error();
  Feedback("downloaded", 100);
  return OkStatus();
}

Status Agent::DoVerify() {
  ALOFT_ASSIGN_OR_RETURN(pkg::Envelope offered, OfferedEnvelope());
  ALOFT_ASSIGN_OR_RETURN(StagedPackage p, OpenStaged());  // signatures checked on opening
  if (p.reader->manifest().signed_json != offered.manifest.signed_json) {
    return Error(Code::kIntegrity, "the downloaded package's manifest is not the one offered");
  }
  ALOFT_RETURN_IF_ERROR(Admit(p.reader->manifest()));
  DiscardSink discard;
  return p.reader->ReadPayloads(discard);
}

Status Agent::DoHold(bool& waiting) {
  waiting = false;
  ALOFT_ASSIGN_OR_RETURN(const json a, CheckIn());
  const int64_t id = journal_.offer->action;
  const bool same = a.is_object() && a.contains("id") && a["id"].is_number_integer() &&
                    a["id"].get<int64_t>() == id;
  if (!same || a.value("cancel", false)) {
    // Canceled (say so, which closes it at the server), or closed there already: drop it.
    if (same) ALOFT_RETURN_IF_ERROR(SendFeedback({{"status", "canceled"}}));
    (void)staging_->Clear();
    last_outcome_ =
        Outcome{false,
                static_cast<int>(Code::kPermissionDenied),
                {"action " + std::to_string(id) +
                 (same ? " was canceled by the server" : " is no longer offered by the server")}};
    journal_.offer.reset();
    journal_.downloaded = 0;
    return Go(Event::kDropped);
  }
  journal_.offer->install = a.value("install", true);
  if (journal_.offer->install) {
    // The server's last word: the window may have closed since the check-in. A refusal holds
    // the package as "install": false would; an unreachable server leaves the check-in's word.
    Status gate = uplink_->StartInstall(id);
    if (!gate.ok() && gate.error().code() == Code::kAlreadyExists) {
      held_reason_ = gate.error().message();
      journal_.offer->install = false;
    }
  }
  if (!journal_.offer->install) {
    waiting = true;  // download-only, or outside the maintenance window: ask again later
    return SaveJournal(journal_path(), journal_);
  }
  return Go(Event::kDone);
}

Status Agent::DoInstall() {
  ALOFT_ASSIGN_OR_RETURN(StagedPackage p, OpenStaged());
  uint64_t total = 0, done = 0;
  for (const auto& c : p.reader->manifest().components) total += c.image.size;
  int last = 0;
  delta::ApplyOptions apply;
  apply.max_window = config_.max_window;
  InstallSink sink(modules_, journal_.offer->version, apply, [&](uint64_t n) {
    done += n;
    int pct = total ? static_cast<int>(done * 100 / total) : 100;
    if (pct / 25 > last / 25) {
      last = pct;
      Feedback("installing", pct);
    }
  });
  return p.reader->ReadPayloads(sink);
}

Status Agent::DoActivate() {
  ALOFT_ASSIGN_OR_RETURN(pkg::Envelope e, OfferedEnvelope());
  for (const auto& c : e.manifest.components) {
    Status s = FindModule(c.name)->storage->Activate(Target(c), config_.tries);
    if (!s.ok() && s.error().code() == Code::kIntegrity && journal_.reinstalls < kMaxReinstalls) {
      // A reset between install and activation made the bootloader restore the old image (the
      // backup layout does that with an unfinished write): install again, from the staged package.
      ++journal_.reinstalls;
      return Go(Event::kUndone);
    }
    ALOFT_RETURN_IF_ERROR(s);
  }
  Feedback("installed", 100);
  journal_.boot_id = config_.boot_id;
  return Go(Event::kDone);
}

Status Agent::DoConfirm() {
  ALOFT_ASSIGN_OR_RETURN(pkg::Envelope e, OfferedEnvelope());
  for (const auto& c : e.manifest.components) {
    Module* m = FindModule(c.name);
    if (!m) return Error(Code::kInternal, "module " + c.name + " vanished");
    ALOFT_ASSIGN_OR_RETURN(bool booted, m->storage->BootedNew(Target(c)));
    if (!booted) {
      ALOFT_ASSIGN_OR_RETURN(StorageStatus st, m->storage->GetStatus());
      journal_.outcome =
          Outcome{false,
                  static_cast<int>(Code::kUnavailable),
                  {"confirm: the bootloader did not start " + c.name + " " +
                   journal_.offer->version + "; it runs " + DescribeSlot(st.running)}};
      return Go(Event::kUnhealthy);
    }
  }
  if (!config_.health_check.empty()) {
    auto healthy = RunCommand(
        config_.health_check, config_.health_timeout,
        {"ALOFT_VERSION=" + journal_.offer->version, "ALOFT_RELEASE=" + journal_.offer->release});
    if (!healthy.ok()) {
      journal_.outcome = Outcome{false,
                                 static_cast<int>(healthy.error().code()),
                                 {"health check: " + healthy.error().message()}};
      return Go(Event::kUnhealthy);
    }
  }
  return Go(Event::kHealthy);
}

Status Agent::DoCommit() {
  ALOFT_ASSIGN_OR_RETURN(pkg::Envelope e, OfferedEnvelope());
  for (const auto& c : e.manifest.components) {
    Module* m = FindModule(c.name);
    ALOFT_ASSIGN_OR_RETURN(bool booted, m->storage->BootedNew(Target(c)));
    if (!booted) {
      journal_.outcome = Outcome{false,
                                 static_cast<int>(Code::kUnavailable),
                                 {"commit: the bootloader went back before the commit held"}};
      return Go(Event::kUnhealthy);
    }
    ALOFT_RETURN_IF_ERROR(m->storage->Commit(Target(c), c.security_counter));
  }
  journal_.outcome = Outcome{true, 0, {"installed " + journal_.offer->version}};
  return Go(Event::kDone);
}

Result<bool> Agent::DoRollback() {
  bool reboot = false;
  std::string now;
  for (auto& m : modules_) {
    ALOFT_ASSIGN_OR_RETURN(bool r, m.storage->Rollback());
    reboot = reboot || r;
    ALOFT_ASSIGN_OR_RETURN(StorageStatus st, m.storage->GetStatus());
    now += (now.empty() ? "" : ", ") + m.name + " " + DescribeSlot(st.confirmed);
  }
  if (reboot) return true;
  if (!journal_.outcome) journal_.outcome = Outcome{false, static_cast<int>(Code::kInternal), {}};
  journal_.outcome->details.push_back("rolled back: running " + now);
  return false;
}

Status Agent::DoReport() {
  json body;
  if (journal_.outcome && journal_.outcome->success) {
    body = {{"status", "success"}, {"details", journal_.outcome->details}};
  } else {
    Outcome o = journal_.outcome.value_or(Outcome{});
    body = {{"status", "failure"}, {"code", o.code}, {"details", o.details}};
  }
  ALOFT_RETURN_IF_ERROR(SendFeedback(body));
  (void)staging_->Clear();
  last_outcome_ = journal_.outcome.value_or(Outcome{});
  journal_.finished = journal_.offer->action;
  journal_.offer.reset();
  journal_.downloaded = 0;
  journal_.boot_id.clear();
  journal_.reinstalls = 0;
  return Go(Event::kDone);
}

Result<Agent::Step> Agent::Run() {
  last_outcome_.reset();  // an outcome is told once, by the Run that reported it
  held_reason_.clear();
  ALOFT_ASSIGN_OR_RETURN(journal_, LoadJournal(journal_path()));
  bool checked = false;
  for (;;) {
    const State state = journal_.state;
    Status s = OkStatus();
    switch (state) {
      case State::kIdle:
        if (checked) return Step::kIdle;
        s = Go(Event::kStart);
        break;
      case State::kCheck: {
        if (checked) return Step::kIdle;
        checked = true;
        bool idle = false;
        s = Check(idle);
        if (s.ok() && idle) return Step::kIdle;
        break;
      }
      case State::kDownload:
        s = DoDownload();
        if (s.ok()) s = Go(Event::kDone);
        break;
      case State::kVerify:
        s = DoVerify();
        if (s.ok()) s = Go(Event::kDone);
        break;
      case State::kHold: {
        bool waiting = false;
        s = DoHold(waiting);
        if (s.ok() && waiting) return Step::kIdle;
        break;
      }
      case State::kInstall:
        s = DoInstall();
        if (s.ok()) s = Go(Event::kDone);
        break;
      case State::kActivate:
        s = DoActivate();
        if (s.ok() && journal_.state == State::kReboot) return Step::kReboot;
        break;
      case State::kReboot:
        if (journal_.boot_id == config_.boot_id) return Step::kReboot;  // not rebooted yet
        s = Go(Event::kDone);
        break;
      case State::kConfirm:
        s = DoConfirm();
        break;
      case State::kCommit:
        s = DoCommit();
        break;
      case State::kRollback: {
        if (!journal_.boot_id.empty() && journal_.boot_id == config_.boot_id) {
          return Step::kReboot;
        }
        auto reboot = DoRollback();
        if (!reboot.ok()) {
          s = reboot.error();
        } else if (*reboot) {
          journal_.boot_id = config_.boot_id;
          s = SaveJournal(journal_path(), journal_);
          if (s.ok()) return Step::kReboot;
        } else {
          s = Go(Event::kDone);
        }
        break;
      }
      case State::kReport:
        s = DoReport();
        if (s.ok()) return Step::kIdle;
        break;
    }
    if (s.ok()) continue;
    // Download, verify, install and activate fail for good on a permanent error, or after
    // max_state_attempts transient ones (network, power). Every other state is retried by the
    // next Run from where the journal stands: a rollback or a report never gives up.
    const bool can_fail = state == State::kDownload || state == State::kVerify ||
                          state == State::kInstall || state == State::kActivate;
    ++journal_.attempts;
    if (can_fail && (!Transient(s.error()) || journal_.attempts >= config_.max_state_attempts)) {
      ALOFT_RETURN_IF_ERROR(Fail(s.error()));
      continue;
    }
    (void)SaveJournal(journal_path(), journal_);
    return s.error();
  }
}

Result<std::string> Agent::StatusText() {
  ALOFT_ASSIGN_OR_RETURN(Journal j, LoadJournal(journal_path()));
  std::string s = "device " + config_.device + " (" + config_.device_type + ")\n";
  s += "state: " + std::string(StateName(j.state));
  if (j.offer) {
    s += " (action " + std::to_string(j.offer->action) + ": " + j.offer->release + " " +
         j.offer->version + ", " + std::to_string(j.downloaded) + " of " +
         std::to_string(j.offer->size) + " bytes downloaded)";
  }
  s += "\n";
  for (auto& m : modules_) {
    ALOFT_ASSIGN_OR_RETURN(StorageStatus st, m.storage->GetStatus());
    s += "module " + m.name + ": running " + DescribeSlot(st.running) +
         (st.trial ? " on trial" : "") + ", security counter " +
         std::to_string(st.security_counter) + "\n";
    s += st.describe;
  }
  return s;
}

}  // namespace aloft::agent
