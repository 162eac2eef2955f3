// The vehicle signals the gateway watches for a campaign's preconditions: the two state frames
// on a CAN bus (docs/vehicle-network.md, "Signals"), decoded into COVESA VSS values, and the
// preconditions they fail, each named by its VSS path.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "can/bus.h"
#include "vehicle/bundle.h"

namespace aloft::vehicle {

struct VehicleState {
  bool seen = false;              // a frame arrived (else the values are defaults)
  EventLoop::TimePoint at{};      // the latest frame
  double speed_kph = 0;           // Vehicle.Speed
  int gear = 126;                 // Vehicle.Powertrain.Transmission.SelectedGear
  std::string power_mode = "ON";  // Vehicle.LowVoltageSystemState
  double low_voltage = 0;         // Vehicle.LowVoltageBattery.CurrentVoltage
  double soc = 0;                 // Vehicle.Powertrain.TractionBattery.StateOfCharge.Current
  bool charging = false;          // Vehicle.Powertrain.TractionBattery.Charging.IsCharging
};

class SignalWatcher {
 public:
  SignalWatcher(can::CanBus& bus, uint32_t id = 0x3E8);
  ~SignalWatcher();
  SignalWatcher(const SignalWatcher&) = delete;
  SignalWatcher& operator=(const SignalWatcher&) = delete;
  const VehicleState& state() const { return state_; }
  // Called after each state frame.
  std::function<void(const VehicleState&)> on_change;

 private:
  can::CanBus& bus_;
  uint32_t id_;
  int listener_ = 0;
  VehicleState state_;
};

// The preconditions `s` fails at `now`, one line each ("Vehicle.Speed is 12.5 km/h, above 0");
// signals older than `stale` fail every precondition that is set.
std::vector<std::string> Unmet(const Preconditions& p, const VehicleState& s,
                               EventLoop::TimePoint now,
                               std::chrono::milliseconds stale = std::chrono::milliseconds(500));

// "P", "R", "N", "D", or the gear number.
std::string GearName(int gear);

}  // namespace aloft::vehicle
