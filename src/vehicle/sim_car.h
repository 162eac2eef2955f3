// A simulated car (aloft-ecu-sim's, from a vehicle description) and the gateway's connections to
// it, on one SimLoop: what `aloft-vehicle plan` predicts with, and what tests and the benchmark
// run campaigns against, on simulated time.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "doip/client.h"
#include "ecusim/vehicle.h"
#include "vehicle/network.h"

namespace aloft::vehicle {

class SimCar {
 public:
  // The ECUs' flash lives in `dir`. The gateway has the CAN buses in `direct` (all when
  // `all_direct`) and reaches the others through the DoIP edge node.
  static Result<std::unique_ptr<SimCar>> Create(const ecusim::VehicleSpec& spec,
                                                const std::string& dir,
                                                std::set<std::string> direct = {},
                                                bool all_direct = true);
  ~SimCar();

  SimLoop& loop() { return loop_; }
  ecusim::Vehicle& vehicle() { return *vehicle_; }
  Network& network() { return *network_; }
  // The gateway starts again: new connections (a new DoIP connection, new clients).
  Status RestartGateway();
  // Each ECU's security access key, from the vehicle description (the gateway's key store).
  std::function<Bytes(const std::string& ecu, std::span<const uint8_t> seed)> Keys() const;

 private:
  SimCar() = default;
  SimLoop loop_;
  ecusim::VehicleSpec spec_;
  std::set<std::string> direct_;
  std::unique_ptr<ecusim::Vehicle> vehicle_;
  std::map<std::string, std::unique_ptr<can::SimPort>> ports_;
  std::unique_ptr<doip::Client> doip_;
  std::unique_ptr<Network> network_;
  std::vector<std::unique_ptr<Network>> retired_;  // a dead gateway's clients, as they were
  std::vector<std::unique_ptr<doip::Client>> retired_doip_;
};

}  // namespace aloft::vehicle
