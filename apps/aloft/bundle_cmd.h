// `aloft bundle`: a vehicle bundle from its description (docs/vehicle-bundle.md).
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

#include "core/clock.h"

namespace aloft::cli {

// Adds `bundle` to `app`; returns the function that runs it and gives its exit status, or -1
// when it was not parsed.
std::function<int(bool quiet)> AddBundleCommands(CLI::App& app,
                                                 std::function<const Clock&()> pack_clock);

}  // namespace aloft::cli
