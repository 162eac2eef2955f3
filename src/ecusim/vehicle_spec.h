// A simulated car described by a TOML file (docs/vehicle-network.md, "The vehicle file"): its CAN
// buses, its DoIP edge node, its ECUs (addresses, identification, flash, software, faults) and
// the vehicle signals one of them publishes.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "can/frame.h"
#include "doip/entity.h"
#include "ecusim/ecu.h"

namespace aloft::ecusim {

struct BusSpec {
  std::string name;
  can::BitRates rates{500'000};
  bool fd = false;
  double error_rate = 0;
};

struct EcuSpec {
  EcuConfig config;
  std::string bus;  // a bus name, or "doip" for an ECU on the Ethernet side of the edge node
  uint32_t request_id = 0x7E0, response_id = 0x7E8, functional_id = 0x7DF;
  bool extended_ids = false;
  std::optional<uint16_t> doip_address;  // reachable through the DoIP edge node
  std::string software = "1.0.0";        // what a new flash is provisioned with
  bool signals = false;                  // publishes the vehicle signals on its bus
  double drop_rate = 0;                  // receive overruns at this ECU
};

// The signals, with COVESA VSS names (docs/vehicle-network.md gives the frame layout).
struct Signals {
  double speed_kph = 0;           // Vehicle.Speed
  int gear = 126;                 // Vehicle.Powertrain.Transmission.SelectedGear (126 P, 127 D)
  std::string power_mode = "ON";  // Vehicle.LowVoltageSystemState: OFF, ACC, ON, START
  double low_voltage = 12.6;      // Vehicle.LowVoltageBattery.CurrentVoltage
  double soc = 80;                // Vehicle.Powertrain.TractionBattery.StateOfCharge.Current
  bool charging = false;          // Vehicle.Powertrain.TractionBattery.Charging.IsCharging
  uint32_t id = 0x3E8;            // the first of the two frames
  // When set, a vehicle state node on this bus publishes them (not a diagnostic node: 28 does
  // not silence it, as a gateway's routed state frames); else the ECU with `signals = true`.
  std::string bus{};
  std::chrono::milliseconds period{100};
};

struct VehicleSpec {
  std::string name = "car";
  std::string vin = "WALOFT00000000001";
  std::vector<BusSpec> buses;
  std::optional<doip::EntityConfig> doip;
  std::vector<EcuSpec> ecus;
  Signals signals;
};

// kInvalidArgument naming the file, table and key for anything wrong.
Result<VehicleSpec> LoadVehicleSpec(const std::string& path);
Result<VehicleSpec> ParseVehicleSpec(const std::string& text, const std::string& where);

// "P" -> 126, "D" -> 127, "R" -> -1, "N" -> 0, "1".."9"; nullopt otherwise.
std::optional<int> ParseGear(const std::string& text);

}  // namespace aloft::ecusim
