// One run of a scenario (docs/fleet-sim.md): the servers started, the fleet type, token and
// release set up through the management API, every device registered and checked in, the
// rollout created; then the loop: the fleet's requests, the scenario's events on time, one
// sample a second (rollout progress, check-ins and their latency, each server's CPU and
// memory, the simulator's own) until the rollout ends as expected, or the timeout; last, the
// checks of what the devices did against what the server recorded.
#pragma once

#include <atomic>
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "core/error.h"
#include "fleetsim/checks.h"
#include "fleetsim/fault_proxy.h"
#include "fleetsim/fleet.h"
#include "fleetsim/mqtt_sessions.h"
#include "fleetsim/scenario.h"

namespace aloft::fleetsim {

// One second of the run.
struct Sample {
  double t = 0;                        // seconds since the rollout started (negative: registration)
  uint64_t check_ins = 0, errors = 0;  // in this second
  uint64_t reports = 0;                // status reports (feedback) taken in this second
  double p50_ms = 0, p99_ms = 0;       // this second's check-ins
  uint64_t offered = 0, succeeded = 0, failed = 0, busy = 0;  // devices, so far
  int wave = 0;
  std::string state;
  std::vector<double> server_cpu;  // % of one core, each aloftd (0 while down)
  std::vector<double> server_rss_mib;
  double sim_cpu = 0, sim_rss_mib = 0;
  double pg_cpu = 0, pg_rss_mib = 0;  // PostgreSQL's processes together
};

struct RunResult {
  std::vector<Sample> samples;
  std::vector<std::string> events;  // "12.0 s: kill -9 aloftd 1"
  double register_s = 0;            // every device registered and checked in
  double dispatch_s = 0;            // the rollout's start to every member offered its action
  double updated_s = 0;             // to the end (finished, or paused with nothing open)
  double check_in_p50_ms = 0, check_in_p99_ms = 0;
  uint64_t check_ins = 0, check_in_errors = 0, downloads = 0, download_drops = 0, power_cuts = 0,
           feedbacks = 0, feedback_retries = 0;
  double sim_peak_rss_mib = 0, sim_cpu_s = 0;
  double pg_cpu_s = 0;
  double broker_cpu_s = 0, broker_peak_rss_mib = 0;  // Mosquitto, with MQTT devices
  FleetCounters fleet{};
  std::vector<std::string> notes;  // the fleet's first oddities
  MqttSessions::Counters mqtt{};
  FaultProxy::Counters proxy{};
  bool proxied = false;
  std::vector<double> server_peak_rss_mib, server_cpu_s;
  std::string final_state;  // the first rollout's (the boards', else the vehicles')
  int final_wave = 0;
  struct Rollout {
    std::string name, release, state;
    int wave = 0;
  };
  std::vector<Rollout> rollouts;  // "sim" (boards) and "sim-car" (vehicles), as they ended
  bool timed_out = false;
  CheckReport checks;
};

struct RunOptions {
  std::string work_dir;     // made if missing; the servers' data and logs
  std::string aloftd;       // the aloftd program
  std::string scripts_dir;  // scripts/ (pg.sh)
  uint64_t seed = 1;
  std::ostream* log = nullptr;  // progress lines, one every few seconds
  // Set (by a signal handler): the run ends at once, the servers it started are stopped.
  const std::atomic<bool>* stop = nullptr;
};

Result<RunResult> RunScenario(const Scenario& scenario, const RunOptions& options);

}  // namespace aloft::fleetsim
