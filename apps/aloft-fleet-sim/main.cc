// aloft-fleet-sim: many simulated devices against real aloftd servers, with faults, for load,
// chaos and demos (docs/fleet-sim.md).
//
//   aloft-fleet-sim bench/scenarios/smoke.toml --out fleet-out
//   aloft-fleet-sim scenario.toml --devices 1000   # the scenario, scaled to 1,000 devices
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "fleetsim/report.h"
#include "fleetsim/scenario.h"
#include "fleetsim/simulation.h"

namespace {

std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop = true; }

// A program next to this one (build/apps/aloftd/aloftd from build/apps/aloft-fleet-sim/).
std::string Sibling(const std::string& dir, const std::string& name) {
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return "";
  const auto p = self.parent_path().parent_path() / dir / name;
  return std::filesystem::exists(p) ? p.string() : "";
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "aloft-fleet-sim: runs a scenario (TOML: the fleet, the release, the rollout plan, faults "
      "over time) with simulated devices against real aloftd servers it starts, then checks "
      "that no action was lost or duplicated and that every device's version is the server's "
      "(docs/fleet-sim.md)"};
  std::string scenario_path, out_dir = "fleet-sim-out", work_dir, aloftd, scripts;
  uint32_t devices = 0;
  uint64_t seed = 1;
  bool keep = false;
  app.add_option("scenario", scenario_path, "The scenario file (bench/scenarios/*.toml)")
      ->required();
  app.add_option("--out", out_dir, "Where the CSV, the gnuplot script and the plots go")
      ->capture_default_str();
  app.add_option("--work", work_dir,
                 "The servers' data and logs (default: a new directory under /tmp, removed "
                 "at the end unless --keep)");
  app.add_flag("--keep", keep, "Keep the work directory");
  app.add_option("--devices", devices,
                 "Scale the fleet to this many devices (the groups keep their shares)");
  app.add_option("--seed", seed, "The faults' random seed")->capture_default_str();
  app.add_option("--aloftd", aloftd, "The aloftd program (default: the one built beside this)");
  app.add_option("--scripts", scripts, "The project's scripts/ directory (pg.sh)");
  CLI11_PARSE(app, argc, argv);

  auto scenario = aloft::fleetsim::LoadScenario(scenario_path);
  if (!scenario.ok()) {
    std::cerr << "aloft-fleet-sim: " << scenario.error().message() << "\n";
    return 2;
  }
  if (devices > 0) {
    const uint32_t total = scenario->devices();
    uint32_t given = 0;
    for (size_t g = 0; g < scenario->groups.size(); ++g) {
      auto& group = scenario->groups[g];
      group.count = g + 1 == scenario->groups.size()
                        ? devices - given
                        : std::max<uint32_t>(
                              1, static_cast<uint32_t>(uint64_t{group.count} * devices / total));
      given += group.count;
    }
  }
  if (aloftd.empty()) aloftd = Sibling("aloftd", "aloftd");
  if (aloftd.empty()) {
    std::cerr << "aloft-fleet-sim: no aloftd beside this program: give --aloftd\n";
    return 2;
  }
  if (scripts.empty()) scripts = std::string(ALOFT_SOURCE_DIR) + "/scripts";
  const bool made_work = work_dir.empty();
  if (made_work) {
    char tmpl[] = "/tmp/aloft-fleet-sim.XXXXXX";
    if (!::mkdtemp(tmpl)) {
      std::perror("aloft-fleet-sim: mkdtemp");
      return 1;
    }
    work_dir = tmpl;
  }
  // Ctrl-C or a kill: the run ends and the servers and PostgreSQL it started are stopped.
  // Each MQTT device holds three descriptors, the fault proxy two per connection: take all the
  // descriptors the system allows this process.
  rlimit files{};
  if (::getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &files);
  }
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  auto result = aloft::fleetsim::RunScenario(*scenario, {.work_dir = work_dir,
                                                         .aloftd = aloftd,
                                                         .scripts_dir = scripts,
                                                         .seed = seed,
                                                         .log = &std::cerr,
                                                         .stop = &g_stop});
  int rc = 0;
  if (!result.ok()) {
    std::cerr << "aloft-fleet-sim: " << scenario_path << ": " << result.error().message()
              << " (servers' logs in " << work_dir << ")\n";
    keep = true;
    rc = 1;
  } else {
    aloft::fleetsim::PrintSummary(*scenario, *result, std::cout);
    auto plots = aloft::fleetsim::WritePlots(*scenario, *result, out_dir);
    if (!plots.ok()) {
      std::cerr << "aloft-fleet-sim: " << plots.error().message() << "\n";
    } else if (plots->empty()) {
      std::cout << "  (no plots: gnuplot is not installed; the samples are in " << out_dir << ")\n";
    } else {
      for (const auto& p : *plots) std::cout << "  plot: " << p << "\n";
    }
    // What the scenario expected.
    const auto& e = scenario->expect;
    for (const auto& r : result->rollouts) {
      const bool state_ok =
          r.state == e.rollout && (!e.wave || r.wave == *e.wave) && !result->timed_out;
      if (!state_ok) {
        std::cout << "FAILED: rollout " << r.name << " ended " << r.state << " at wave " << r.wave
                  << (result->timed_out ? " (timed out)" : "") << "; the scenario expects "
                  << e.rollout << (e.wave ? " at wave " + std::to_string(*e.wave) : "") << "\n";
        rc = 1;
      }
    }
    if (!result->checks.ok()) {
      std::cout << "FAILED: lost " << result->checks.lost << ", duplicated "
                << result->checks.duplicated << ", wrong version " << result->checks.wrong_version
                << ", mixed " << result->checks.mixed << "\n";
      rc = 1;
    }
    if (rc == 0) std::cout << "OK\n";
  }
  if (made_work && !keep) {
    std::error_code ec;
    std::filesystem::remove_all(work_dir, ec);
  } else {
    std::cerr << "aloft-fleet-sim: the servers' data and logs are in " << work_dir << "\n";
  }
  return rc;
}
