// The gateway's in-car device API for the ECUs that run aloft-agent themselves (a head unit, a
// telematics unit: the bundle's `agent` install method). Each such ECU's agent has the gateway
// as its server (`server = "http://GATEWAY:8470"`, its own token) and speaks the native device
// API to it (docs/device-api.md): check-in with its versions, the artifact (Range for resuming),
// feedback. The manager offers an ECU its package download-only first (the agent downloads,
// verifies it against its own keys and holds it: phase 1 of a campaign), then lets it install
// (phase 2); the agent installs into its inactive slot, restarts, checks its health and commits,
// or goes back by itself, and reports which.
//
//   POST /device/v1/{ecu}/check-in                  -> {"device", "poll_interval_s", "action"}
//   GET  /device/v1/{ecu}/actions/{id}/artifact     -> the package (206 for a Range)
//   POST /device/v1/{ecu}/actions/{id}/feedback     -> {"id", "state"}; 409 "installing" while
//                                                      held, or for an action that is not open
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/encoding.h"
#include "core/error.h"

namespace aloft::vehicle {

class AgentEcuServer {
 public:
  struct Ecu {
    std::string name;   // the ECU, and its agent's device name at the gateway
    std::string token;  // its agent's token
  };
  // What the gateway knows of an agent ECU.
  struct State {
    bool seen = false;                            // it checked in
    std::map<std::string, std::string> versions;  // module -> version, from its last check-in
    int64_t action = 0;                           // the open offer (0: none)
    bool install = false;                         // the offer may be installed
    std::string status;                           // the offer's last feedback ("downloaded", ...)
    nlohmann::json details;                       // and its details
  };

  explicit AgentEcuServer(std::vector<Ecu> ecus);
  ~AgentEcuServer();
  // Binds `listen` ("127.0.0.1:8470"; port 0 picks one) and serves on a thread of its own.
  Status Start(const std::string& listen);
  uint16_t port() const;
  void Stop();

  // From the ECU's next check-in, `package` (a signed .aloft for the ECU itself) is offered as
  // action `id`, download-only until Allow. kNotFound for an ECU not served here; kMalformed
  // for a package whose manifest does not read.
  Status Offer(const std::string& ecu, std::shared_ptr<const Bytes> package, int64_t id);
  void Allow(const std::string& ecu);
  // The offer is gone: the agent drops what it holds (an install under way reports its end).
  void Withdraw(const std::string& ecu);
  State state(const std::string& ecu) const;
  std::vector<std::string> names() const;

  // Each feedback as it arrives (on a thread of the server): the ECU and the body.
  std::function<void(const std::string& ecu, const nlohmann::json& feedback)> on_feedback;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace aloft::vehicle
