// `aloft diff` and `aloft apply`: delta patches between raw images, and delta packages between
// two full packages (docs/delta-format.md).
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace aloft::cli {

// Adds `diff` and `apply` to `app`; returns the function that runs whichever was parsed (its exit
// status), or nullopt-like -1 when neither was.
std::function<int(bool quiet)> AddDeltaCommands(CLI::App& app);

}  // namespace aloft::cli
