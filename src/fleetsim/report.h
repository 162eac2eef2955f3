// What a run shows (docs/fleet-sim.md): a summary table on the terminal, the per-second samples
// as CSV, and plots of rollout progress, check-in latency and the servers' CPU and memory over
// time, drawn by gnuplot (SVG) when it is installed.
#pragma once

#include <ostream>
#include <string>

#include "core/error.h"
#include "fleetsim/scenario.h"
#include "fleetsim/simulation.h"

namespace aloft::fleetsim {

void PrintSummary(const Scenario& s, const RunResult& r, std::ostream& out);
// `dir`/samples.csv, `dir`/plot.gp and, with gnuplot, `dir`/<name>-{progress,latency,servers}.svg.
// Returns the SVG files written (none without gnuplot).
Result<std::vector<std::string>> WritePlots(const Scenario& s, const RunResult& r,
                                            const std::string& dir);

}  // namespace aloft::fleetsim
