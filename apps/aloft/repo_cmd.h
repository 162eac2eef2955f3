// `aloft repo`: a TUF repository's offline half (docs/trust.md): root and targets metadata made
// and signed on a release engineer's machine, then pushed to aloftd, which adds the online
// snapshot and timestamp.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

#include "core/clock.h"

namespace aloft::cli {

// Adds `repo` to `app`; returns the function that runs it and gives its exit status, or -1 when
// it was not parsed.
std::function<int(bool quiet)> AddRepoCommands(CLI::App& app, std::function<const Clock&()> clock);

}  // namespace aloft::cli
