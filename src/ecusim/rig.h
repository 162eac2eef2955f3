// One simulated ECU and a tester on one simulated CAN bus, on simulated time: what tests and
// bench/vehicle-net.sh drive. The helpers run the loop until the answer is in.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "can/sim_bus.h"
#include "doip/client.h"
#include "doip/entity.h"
#include "ecusim/ecu.h"
#include "isotp/channel.h"
#include "net/stream.h"
#include "uds/client.h"
#include "uds/flasher.h"
#include "uds/memory_link.h"

namespace aloft::ecusim {

struct RigOptions {
  can::BitRates rates{500'000};
  bool fd = false;
  // DoIP instead of CAN: the tester reaches the ECU (logical address 0x1001) through a DoIP
  // entity over a simulated 100 Mbit/s Ethernet link.
  bool doip = false;
  uint64_t ethernet_bit_rate = 100'000'000;
  isotp::Address tester{.tx_id = 0x7E0, .rx_id = 0x7E8};
  isotp::Address ecu{.tx_id = 0x7E8, .rx_id = 0x7E0};
};

class Rig {
 public:
  // The ECU's flash files go in `dir`.
  static Result<std::unique_ptr<Rig>> Create(EcuConfig config, RigOptions options,
                                             const std::string& dir);

  // A flash plan for `image` at the ECU's application address with its key.
  uds::FlashPlan Plan(const Bytes& image) const;
  // Runs the whole programming sequence (at most an hour of simulated time).
  Result<uds::FlashReport> Flash(uds::FlashPlan plan);
  // One request and its final answer (at most a minute of simulated time).
  Result<uds::Response> Ask(std::vector<uint8_t> request);
  // 10 03, 31 01 02 03, 10 02, 27 01/02: ready to program.
  Status Unlock();

  SimLoop& loop() { return loop_; }
  can::SimBus& bus() { return *bus_; }
  Ecu& ecu() { return *ecu_; }
  uds::Client& client() { return *client_; }
  isotp::Channel& tester_channel() { return *tester_channel_; }
  doip::Entity* entity() { return entity_.get(); }

 private:
  Rig() = default;
  SimLoop loop_;
  std::unique_ptr<can::SimBus> bus_;
  std::unique_ptr<can::SimPort> tester_port_, ecu_port_;
  std::unique_ptr<isotp::Channel> tester_channel_, ecu_channel_;
  std::unique_ptr<uds::IsoTpLink> tester_isotp_, ecu_isotp_;
  std::unique_ptr<uds::MemoryLink> entity_side_, ecu_side_;
  std::unique_ptr<doip::Entity> entity_;
  std::unique_ptr<doip::Client> doip_;
  std::unique_ptr<uds::Link> doip_link_;
  uds::Link* tester_link_ = nullptr;
  std::unique_ptr<Ecu> ecu_;
  std::unique_ptr<uds::Client> client_;
  Bytes secret_;
};

}  // namespace aloft::ecusim
