// OTA mode: the state a car is put in while its ECUs are programmed. Entering sends, on every bus
// involved, functional 10 03 (extended session), 85 02 (DTC setting off) and 28 03 01 (normal
// communication off), and keeps those sessions with functional tester present (3E 80); ECUs on
// Ethernet get the same requests physically. Leaving sends 28 00 01, 85 01, 10 01 and clears the
// DTCs (14 FF FF FF) the campaign may have caused. Functional requests go with the suppress bit
// where the service has one; an ECU that does not hear them is not an error (its flash sequence
// repeats what it needs).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "vehicle/network.h"

namespace aloft::vehicle {

class OtaMode {
 public:
  // `ecus`: the ECUs the campaign programs; their buses (and DoIP ECUs) are the ones involved.
  OtaMode(Network& network, std::vector<std::string> ecus);
  ~OtaMode();
  void Enter(std::function<void()> done);
  void Leave(std::function<void()> done);
  bool active() const { return active_; }
  // Every request sent, "powertrain: 10 83" or "hu: 10 03", in order (for tests and logs).
  const std::vector<std::string>& sent() const { return sent_; }

 private:
  void Send(const std::vector<std::vector<uint8_t>>& requests, std::function<void()> done);

  Network& network_;
  std::vector<std::string> buses_, ethernet_;  // CAN buses the gateway has; ECUs through DoIP
  std::vector<std::unique_ptr<uds::Client>> functional_;  // one per involved bus with a link
  bool active_ = false;
  std::vector<std::string> sent_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace aloft::vehicle
