#include "vehicle/signals.h"

#include <cstdio>

namespace aloft::vehicle {

namespace {

std::string Number(double v, int decimals) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

}  // namespace

SignalWatcher::SignalWatcher(can::CanBus& bus, uint32_t id) : bus_(bus), id_(id) {
  listener_ = bus_.AddListener([this](const can::CanEvent& e) {
    if (e.kind != can::CanEvent::Kind::kFrame || e.frame.extended) return;
    const auto& d = e.frame.data;
    if (e.frame.id == id_ && d.size() >= 6) {
      state_.speed_kph = ((d[0] << 8) | d[1]) / 100.0;
      state_.gear = static_cast<int8_t>(d[2]);
      static const char* kModes[] = {"OFF", "ACC", "ON", "START"};
      state_.power_mode = d[3] < 4 ? kModes[d[3]] : "?";
      state_.low_voltage = ((d[4] << 8) | d[5]) / 100.0;
    } else if (e.frame.id == id_ + 1 && d.size() >= 3) {
      state_.soc = ((d[0] << 8) | d[1]) / 10.0;
      state_.charging = d[2] != 0;
    } else {
      return;
    }
    state_.seen = true;
    state_.at = bus_.loop().Now();
    if (on_change) on_change(state_);
  });
}

SignalWatcher::~SignalWatcher() { bus_.RemoveListener(listener_); }

std::string GearName(int gear) {
  switch (gear) {
    case 126:
      return "P";
    case 127:
      return "D";
    case 0:
      return "N";
    case -1:
      return "R";
  }
  return std::to_string(gear);
}

std::vector<std::string> Unmet(const Preconditions& p, const VehicleState& s,
                               EventLoop::TimePoint now, std::chrono::milliseconds stale) {
  std::vector<std::string> out;
  if (!p.any()) return out;
  if (!s.seen || now - s.at > stale) {
    out.push_back(
        s.seen
            ? "the vehicle signals stopped (none for " +
                  std::to_string(
                      std::chrono::duration_cast<std::chrono::milliseconds>(now - s.at).count()) +
                  " ms)"
            : "no vehicle signals yet");
    return out;
  }
  if (p.max_speed_kph && s.speed_kph > *p.max_speed_kph) {
    out.push_back("Vehicle.Speed is " + Number(s.speed_kph, 2) + " km/h, above " +
                  Number(*p.max_speed_kph, 2));
  }
  if (!p.gears.empty() && std::find(p.gears.begin(), p.gears.end(), s.gear) == p.gears.end()) {
    out.push_back("Vehicle.Powertrain.Transmission.SelectedGear is " + GearName(s.gear));
  }
  if (!p.power_modes.empty() &&
      std::find(p.power_modes.begin(), p.power_modes.end(), s.power_mode) == p.power_modes.end()) {
    out.push_back("Vehicle.LowVoltageSystemState is " + s.power_mode);
  }
  if (p.min_low_voltage && s.low_voltage < *p.min_low_voltage) {
    out.push_back("Vehicle.LowVoltageBattery.CurrentVoltage is " + Number(s.low_voltage, 2) +
                  " V, below " + Number(*p.min_low_voltage, 2));
  }
  if (p.min_soc && s.soc < *p.min_soc) {
    out.push_back("Vehicle.Powertrain.TractionBattery.StateOfCharge.Current is " +
                  Number(s.soc, 1) + " %, below " + Number(*p.min_soc, 1));
  }
  if (p.not_charging && s.charging) {
    out.push_back("Vehicle.Powertrain.TractionBattery.Charging.IsCharging is true");
  }
  return out;
}

}  // namespace aloft::vehicle
