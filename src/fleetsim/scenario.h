// A fleet simulation's scenario (docs/fleet-sim.md): the servers, the fleet's make-up, the
// release and its rollout plan, the faults over time, and what must hold at the end. Read from
// TOML; every error names the file, the table and the key.
//
//   ALOFT_ASSIGN_OR_RETURN(fleetsim::Scenario s, fleetsim::LoadScenario("chaos.toml"));
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"

namespace aloft::fleetsim {

// What can go wrong on a device, as probabilities (0 to 1) per action.
struct DeviceFaults {
  double download_drop = 0;  // the download's connection drops half-way; it resumes (Range)
  double health_fail = 0;    // the new image fails its health check: rolled back, failure
  double power_cut = 0;      // the power goes during the install: the old image starts, it
                             // installs again
  double vanish = 0;         // never heard from again once the action arrived
};

// How a device talks to the servers: the native device API over HTTP (polling), MQTT push
// (docs/mqtt.md: a persistent session, otaCheck, reports on up/report; downloads and the
// installing report over HTTP), or hawkBit DDI over HTTP (docs/ddi.md).
enum class Protocol : uint8_t { kNative, kMqtt, kDdi };
const char* ToString(Protocol p);

// A share of the fleet: `count` devices alike.
struct DeviceGroup {
  std::string name = "devices";
  uint32_t count = 0;
  Protocol protocol = Protocol::kNative;
  std::string version = "1.0.0";             // what they run at the start
  std::chrono::milliseconds poll{60'000};    // between check-ins without an action (jittered)
  uint64_t bandwidth_bps = 1'000'000;        // download speed, bytes per second
  std::chrono::milliseconds install{5'000};  // a vehicle: per ECU
  std::chrono::milliseconds reboot{2'000};   // a power cut's restart
  DeviceFaults faults{};
  // Vehicles (docs/vehicle-bundle.md): one module per ECU, as aloft-vehicle reports them; the
  // bundle's ECUs flashed `parallel_ecus` at a time; a failed one takes the whole car back.
  std::vector<std::string> ecus{};
  int parallel_ecus = 0;  // 0: all at once
  bool vehicle() const { return !ecus.empty(); }
  // ECUs flashed at once (all of them when parallel_ecus is 0 or above their number).
  int ecus_at_once() const {
    const int n = static_cast<int>(ecus.size());
    return parallel_ecus > 0 && parallel_ecus < n ? parallel_ecus : n;
  }
};

struct Wave {
  double percent = 100;
  int success_threshold = 90;
  int error_threshold = 10;
};

// Something done to the world during the rollout: at `at` after the rollout started, or once
// the rollout reached wave `at_wave`.
struct Event {
  enum class Kind {
    kKillServer,       // kill -9 of aloftd `server`
    kStartServer,      // aloftd `server` started again
    kRestartPostgres,  // PostgreSQL stopped and started (fast shutdown)
    kRestartBroker,    // Mosquitto stopped and started (its persistence kept)
    kCutNetwork,       // the fault proxy drops every device connection for `duration`
    kFaults,           // every device's fault probabilities become `faults` from now on
  };
  Kind kind = Kind::kFaults;
  std::optional<std::chrono::milliseconds> at{};
  std::optional<int> at_wave{};
  int server = 0;
  std::chrono::milliseconds duration{0};
  DeviceFaults faults{};
  std::string Describe() const;
};

struct Expectation {
  std::string rollout = "finished";  // the rollout's state at the end: finished | paused
  std::optional<int> wave{};         // and its wave (paused at wave 2)
};

struct Scenario {
  std::string path, name;
  std::string database = "sqlite";  // sqlite | postgres
  int servers = 1;                  // aloftd processes (more than one needs postgres)
  int connections = 64;             // concurrent HTTP requests the fleet keeps in flight
  std::chrono::milliseconds register_window{0};  // spreads the first check-ins over this long
  std::chrono::milliseconds timeout{600'000};    // the rollout's end must come by then
  std::string release_name = "fw", release_version = "2.0.0";
  uint64_t release_size = 64 << 10;
  std::vector<DeviceGroup> groups;
  std::vector<Wave> waves;
  std::vector<Event> events;
  Expectation expect;
  uint32_t devices() const;
  bool Uses(Protocol p) const;
  bool HasVehicles() const;
  bool HasBoards() const;  // devices that are not vehicles
  // Every vehicle group's ECUs, each once, in order of appearance.
  std::vector<std::string> Ecus() const;
  // Devices reach the servers through the fault proxy (a cut-network event needs it).
  bool Proxied() const;
};

Result<Scenario> LoadScenario(const std::string& path);
// `text` as if read from `path` (tests).
Result<Scenario> ParseScenario(const std::string& text, const std::string& path);

}  // namespace aloft::fleetsim
