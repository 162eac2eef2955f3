// aloft-vehicle as a daemon (`aloft-vehicle --config FILE`): the vehicle is a device of aloftd
// whose modules are its ECUs. Each cycle checks in with every ECU's version (read over UDS) and
// the VIN, downloads an offered vehicle bundle with the agent's downloader (resumable, verified),
// installs it with the Manager, and reports progress and the result per ECU on the action, over
// the agent's uplinks (HTTP, or MQTT push with HTTP as fallback): one implementation, not a copy.
// A campaign cut short by a restart is recovered first and its result reported on its action.
//
//   server = "http://127.0.0.1:8080"
//   device = "WALOFTDEMO0000001"      # the vehicle's name at the server (its VIN, typically)
//   token_file = "/etc/aloft/vehicle.token"
//   state_dir = "/var/lib/aloft-vehicle"
//   poll_interval_s = 300
//   hmi = "127.0.0.1:8469"            # the driver's screen API ("off": none)
//   defer_interval_s = 3600           # a deferred update is asked about again after this
//   [network]
//   vehicle = "/etc/aloft/car.toml"   # the vehicle description
//   hub = "127.0.0.1:29536"
//   doip = "127.0.0.1:13400"
//   doip_tls_ca = "/etc/aloft/doip-ca.crt"  # optional: doip is then the TLS port (3496)
//   doip_tls_name = "gateway.car"           # optional: the name its certificate carries
//   tester_cert = "/etc/aloft/tester.crt"   # optional: UDS 0x29 (docs/identity.md)
//   tester_key = "/etc/aloft/tester.key"
//   [trust]
//   keys = ["/etc/aloft/release.pub"]
//   [uptane]                          # optional: Uptane full verification (docs/trust.md)
//   director_root = "/etc/aloft/director.root.json"
//   image_root = "/etc/aloft/image.root.json"
#pragma once

#include <chrono>
#include <functional>
#include <mutex>
#include <ostream>
#include <string>

#include "agent/downloader.h"
#include "agent/payload_keys.h"
#include "agent/uplink.h"
#include "agent/uptane_link.h"
#include "core/clock.h"
#include "vehicle/manager.h"

namespace aloft::vehicle {

struct DaemonConfig {
  std::string server, device, token, state_dir, ca_file;
  std::string cert_file, key_file;  // the vehicle's certificate instead of a token
  client::TlsFiles tls() const { return {ca_file, cert_file, key_file}; }
  std::string network, hub, doip;          // [network]
  std::string doip_tls_ca, doip_tls_name;  // [network] DoIP over TLS: the entity's CA, its name
  std::string tester_cert, tester_key;     // [network] UDS 0x29: the gateway's tester identity
  crypto::TrustSet trust;
  std::chrono::seconds poll_interval{300};
  agent::DownloadOptions download;
  std::string mqtt_url, mqtt_ca_file;
  std::chrono::seconds push_poll_interval{3600};
  std::string hmi = "127.0.0.1:8469";         // the driver's screen API (hmi.h); "" or "off": none
  std::chrono::seconds defer_interval{3600};  // a deferred question is asked again after this
  // ECUs that run aloft-agent: "NAME=TOKEN_FILE" ([[agent_ecu]] name, token_file), served the
  // in-car device API (agent_ecus.h) on agent_listen.
  std::vector<std::string> agent_ecus;
  std::string agent_listen = "127.0.0.1:8470";
  // Uptane: the gateway verifies each offer through the Director and the Image repository, and
  // checks that the bundle updates exactly the ECUs the Director names.
  std::optional<agent::UptaneSettings> uptane;
  const Clock* clock = nullptr;  // the wall clock metadata expiry is read against; null: system
};

// kInvalidArgument naming the file and key (docs/vehicle-bundle.md lists them).
Result<DaemonConfig> LoadDaemonConfig(const std::string& path);

// The content key of the bundle of the action being installed (docs/encryption.md): the key
// wrapped for this gateway (STATE_DIR/action.json), opened with its own key
// (STATE_DIR/encryption.key). The Manager's ManagerConfig::content_key, also after a restart.
ContentKeyFor ActionContentKey(const std::string& state_dir);

class VehicleAgent {
 public:
  // `on_loop(fn)` runs `fn` on the thread of the Manager's event loop and waits for it.
  VehicleAgent(DaemonConfig config, agent::Uplink& uplink, Manager& manager,
               std::function<void(const std::function<void()>&)> on_loop, std::ostream& log);

  // One cycle; the interval until the next one, as the server asked (or the configured one).
  Result<std::chrono::seconds> RunOnce();

 private:
  Status Recover();
  Inventory ReadInventory();
  Status Handle(const nlohmann::json& action, const Inventory& inventory);
  // The offered bundle's manifest alone, from the first bytes of its download (an HTTP Range
  // request), checked as Install checks it (Manager::Check) before the rest is fetched. nullopt
  // when the manifest cannot be read that way: the checks then come after the download.
  std::optional<std::vector<std::string>> Precheck(const std::string& url,
                                                   const Inventory& inventory);
  InstallReport Install(int64_t action, const std::string& path);
  // Uptane: the check-in's part (the link opened the first time); the downloaded bundle's ECUs
  // against the Director's; an offer refused by either, reported with the reason.
  Status UptaneCheckIn(const Inventory& inventory, nlohmann::json& body);
  Status CheckBundleEcus(int64_t action, const std::string& path, const Inventory& inventory);
  Status RefuseUntrusted(int64_t action, const Error& e);
  std::string wrapped_key_;  // the offered action's content key, wrapped for this gateway
  int64_t NowMs() const;
  nlohmann::json Details(const InstallReport* report);
  void Feedback(int64_t action, const nlohmann::json& body);

  DaemonConfig config_;
  agent::Uplink& uplink_;
  Manager& manager_;
  std::function<void(const std::function<void()>&)> on_loop_;
  std::ostream& log_;
  std::unique_ptr<agent::UptaneLink> uptane_;
  agent::PayloadKeys payload_keys_;  // encrypted bundles: the gateway's own key
  bool key_enrolled_ = false;
  std::mutex mu_;                                // guards progress_ (written on the loop's thread)
  std::map<std::string, std::string> progress_;  // per ECU: "transfer 40 %"
  std::map<std::string, uint64_t> done_, total_;
};

}  // namespace aloft::vehicle
