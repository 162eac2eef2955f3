// The device agent: check in with aloftd, download with resume, verify, install into the
// module's storage, activate, reboot, confirm with a health check, commit or roll back, report.
// Everything it does is driven by the journal (journal.h), so a kill or power cut at any instant
// is resumed by the next Run().
//
//   Agent agent(config, {{"main", storage.get()}}, staging.get());
//   for (;;) {
//     auto step = agent.Run();        // until idle, or until a reboot is needed
//     if (step.ok() && *step == Agent::Step::kReboot) reboot();
//     sleep(agent.poll_interval());
//   }
#pragma once

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "agent/downloader.h"
#include "agent/journal.h"
#include "agent/payload_keys.h"
#include "agent/staging.h"
#include "agent/storage.h"
#include "agent/uplink.h"
#include "agent/uptane_link.h"
#include "core/clock.h"
#include "crypto/trust.h"
#include "pkg/manifest.h"
#include "pkg/package.h"
#include "tuf/uptane_client.h"

namespace aloft::agent {

struct AgentConfig {
  std::string server;  // "http://127.0.0.1:8080"
  std::string device;
  std::string token;
  std::string device_type;
  std::string state_dir;
  std::string boot_id;  // changes at every boot (Linux: /proc/sys/kernel/random/boot_id)
  crypto::TrustSet trust;
  bool allow_downgrade = false;
  // The largest compression window a package may need to be decoded (pkg/compress.h): the RAM
  // the decoder takes. Larger packages are refused at verification.
  uint64_t max_window = 8 << 20;
  uint8_t tries = 3;         // boots an image may take to be confirmed
  std::string health_check;  // shell command; exit 0 = healthy; empty: always healthy
  std::chrono::seconds health_timeout{60};
  std::chrono::seconds poll_interval{300};  // until the server says otherwise
  uint32_t max_state_attempts = 5;  // transient failures in one state before giving up on it
  DownloadOptions download;
  std::string ca_file;
  // A device certificate and its key (docs/identity.md): the device needs no token.
  std::string cert_file, key_file;
  client::TlsFiles tls() const { return {ca_file, cert_file, key_file}; }
  nlohmann::json attributes = nlohmann::json::object();
  // Uptane full verification (docs/trust.md): with these set, an offer is installed only when
  // the Director lists it for this device and the Image repository agrees.
  std::optional<UptaneSettings> uptane;
  // The device's encryption key (docs/encryption.md; made when missing): empty means
  // STATE_DIR/encryption.key.
  std::string encryption_key_file;
  const Clock* clock = nullptr;  // the wall clock metadata expiry is read against; null: system
};

struct Module {
  std::string name;
  Storage* storage = nullptr;
};

class Agent {
 public:
  enum class Step { kIdle, kReboot };

  // `uplink`: how check-ins and feedback go (push mode: MQTT); nullptr: HTTP to config.server.
  Agent(AgentConfig config, std::vector<Module> modules, Staging* staging,
        Uplink* uplink = nullptr);

  // Runs the state machine from the journal: at most one check-in, then on until the agent is idle
  // again (kIdle) or needs a reboot (kReboot: reboot, then call Run again). A transient failure
  // (server unreachable, power lost) returns its error and leaves the journal where it was.
  Result<Step> Run();

  // The journal, versions and storage, for `aloft-agent status`.
  Result<std::string> StatusText();

  std::chrono::seconds poll_interval() const { return poll_interval_; }
  const Journal& journal() const { return journal_; }
  // The outcome of the update the last Run reported, if it reported one.
  const std::optional<Outcome>& last_outcome() const { return last_outcome_; }
  // Why the last Run holds a verified package instead of installing it, when the server refused
  // to let it start ("" otherwise).
  const std::string& held_reason() const { return held_reason_; }

 private:
  Status Go(Event e);
  Status Fail(const Error& e);
  Status Check(bool& idle);
  // The check-in: reports versions and attributes; the answer's "action" (null when none).
  Result<nlohmann::json> CheckIn();
  // hold: a check-in decides. `waiting` when the server says not yet (install: false).
  Status DoHold(bool& waiting);
  Status DoDownload();
  Status DoVerify();
  Status DoInstall();
  Status DoConfirm();
  Status DoCommit();
  Result<bool> DoRollback();  // true: reboot needed
  Status DoReport();
  Status DoActivate();
  // Checks a manifest (whose signatures were verified) against this device: hardware, modules,
  // versions, security counters, space, delta base.
  Status Admit(const pkg::Manifest& m);
  // The staged package, opened with the trust set (signatures verified).
  struct StagedPackage {
    std::unique_ptr<ByteSource> source;
    std::unique_ptr<pkg::PackageReader> reader;
  };
  Result<StagedPackage> OpenStaged();
  Module* FindModule(const std::string& name);
  boot::ImageSlot Target(const pkg::Component& c) const;
  Result<pkg::Envelope> OfferedEnvelope() const;
  void Feedback(const std::string& status, int progress = -1);
  Status SendFeedback(const nlohmann::json& body);
  std::vector<std::string> AuthHeaders() const;
  std::string journal_path() const { return config_.state_dir + "/journal.json"; }

  AgentConfig config_;
  std::vector<Module> modules_;
  Staging* staging_;
  std::unique_ptr<Uplink> own_uplink_;  // HTTP, when the caller gave none
  Uplink* uplink_;
  Journal journal_;
  std::chrono::seconds poll_interval_;
  int last_progress_ = -1;
  std::optional<Outcome> last_outcome_;
  std::string held_reason_;
  // Uptane: opened at the first check-in.
  Status OpenUptane();
  int64_t NowMs() const;
  std::unique_ptr<UptaneLink> uptane_;
  // Encrypted payloads: the device's key; its public half goes with the first check-in.
  PayloadKeys payload_keys_;
  bool key_enrolled_ = false;
};

}  // namespace aloft::agent
