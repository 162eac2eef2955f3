// A simulated car built from a VehicleSpec on one EventLoop: its CAN buses, each ECU on its bus
// (ISO-TP physical and functional channels answering UDS), the DoIP edge node routing diagnostic
// messages to ECUs on Ethernet and, over the gateway's own ISO-TP channels, to CAN ECUs behind
// it, and the vehicle signals published on a bus. On a SimLoop it runs on simulated time; on a
// RealLoop (aloft-ecu-sim) beside the bus hub and the DoIP sockets.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "can/sim_bus.h"
#include "doip/entity.h"
#include "ecusim/ecu.h"
#include "ecusim/vehicle_spec.h"
#include "isotp/channel.h"
#include "uds/memory_link.h"

namespace aloft::ecusim {

class Vehicle {
 public:
  // ECU flash files live in `state_dir`; an ECU with a new (blank) flash is provisioned with its
  // `software` version.
  static Result<std::unique_ptr<Vehicle>> Create(EventLoop& loop, VehicleSpec spec,
                                                 const std::string& state_dir);
  ~Vehicle();

  can::SimBus* bus(const std::string& name);
  Ecu* ecu(const std::string& name);
  doip::Entity* entity() { return entity_.get(); }
  const VehicleSpec& spec() const { return spec_; }
  Signals& signals() { return spec_.signals; }
  // One line per ECU: what it would start now, its session, online or not.
  std::vector<std::string> Status();
  // A control command ("status", "fault ecm reset_at_block 10", "bus body error_rate 0.01",
  // "busoff ecm", "power ecm 500", "signal speed 30"); the reply text, or an error naming the
  // problem. docs/vehicle-network.md lists them.
  Result<std::string> Control(const std::string& command);

 private:
  struct Node;
  Vehicle(EventLoop& loop, VehicleSpec spec);
  void PublishSignals();

  EventLoop& loop_;
  VehicleSpec spec_;
  std::map<std::string, std::unique_ptr<can::SimBus>> buses_;
  std::map<std::string, std::unique_ptr<can::SimPort>> gateway_ports_;
  std::unique_ptr<doip::Entity> entity_;
  std::vector<std::unique_ptr<Node>> nodes_;
  std::unique_ptr<can::SimPort> state_port_;  // the vehicle state node, when [signals] bus is set
  TimerId signal_timer_ = 0;
};

}  // namespace aloft::ecusim
