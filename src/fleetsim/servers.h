// The real servers a fleet simulation runs against (docs/fleet-sim.md): a throwaway PostgreSQL
// (scripts/pg.sh) when the scenario asks for it, a Mosquitto broker (scripts/mqtt.sh) for MQTT
// devices, and one or several aloftd processes on it (or
// one on SQLite), sharing one artifacts directory; killed with SIGKILL and started again on
// demand, sampled for CPU and memory. Everything lives in a work directory of the caller's.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/error.h"
#include "fleetsim/scenario.h"

namespace aloft::fleetsim {

// A process's CPU time (user + system, ms) and resident memory (KiB), from /proc.
struct ProcessSample {
  int64_t cpu_ms = 0;
  int64_t rss_kib = 0;
  int64_t peak_rss_kib = 0;  // VmHWM
  int64_t anon_kib = 0;      // RssAnon: its own memory, not what it shares
};
ProcessSample SampleProcess(pid_t pid);

class Servers {
 public:
  struct Options {
    std::string work_dir;
    std::string aloftd;       // the aloftd program
    std::string scripts_dir;  // where pg.sh lives
    int rollout_tick_ms = 200;
    std::string extra_config{};  // more of aloftd.toml (the trusted release key)
  };
  Servers(const Scenario& scenario, Options options);
  ~Servers();  // stops everything it started

  // PostgreSQL (if the scenario asks for it), then every aloftd; waits for each to listen.
  Status Start();
  // kill -9 of aloftd `k` (and reaping it).
  Status Kill(int k);
  Status StartServer(int k);
  // PostgreSQL stopped (fast) and started on the same port.
  Status RestartPostgres();
  // Mosquitto stopped and started with the same files (sessions and queued messages kept).
  Status RestartBroker();
  void StopAll();

  size_t size() const { return procs_.size(); }
  const std::string& base(int k) const { return procs_[k].base; }
  uint16_t port(int k) const { return procs_[k].port; }
  std::vector<std::string> bases() const;
  pid_t pid(int k) const { return procs_[k].pid; }  // 0 while it is down
  bool up(int k) const { return procs_[k].pid > 0; }
  const std::string& admin_token() const { return admin_token_; }
  // PostgreSQL's processes together (the postmaster and its children): their CPU time, and in
  // rss_kib their own memory (RssAnon; their shared buffers would count once per process);
  // zero without it.
  ProcessSample SamplePostgres() const;
  const std::string& database() const { return database_; }
  // The MQTT broker (scripts/mqtt.sh) when the scenario has MQTT devices: "" and 0 otherwise.
  const std::string& broker_url() const { return broker_url_; }
  uint16_t broker_port() const { return broker_port_; }
  pid_t broker_pid() const;

 private:
  struct Proc {
    std::string dir, log, base;
    uint16_t port = 0;
    pid_t pid = 0;
  };
  Status StartPostgres();
  Status StartBroker();

  const Scenario& scenario_;
  Options o_;
  std::vector<Proc> procs_;
  std::string database_, pg_dir_;
  uint16_t pg_port_ = 0;
  std::string broker_dir_, broker_url_;
  uint16_t broker_port_ = 0;
  std::string admin_token_;
};

// A TCP port on 127.0.0.1 that nothing listens on now.
uint16_t FreePort();

}  // namespace aloft::fleetsim
