// `aloft diff` and `aloft apply`: delta patches between raw images, and delta packages between
// two full packages (docs/delta-format.md).
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace aloft::cli {

// Adds `diff` and `apply` to `app`; returns the function that runs whichever was parsed and gives
// its exit status, or -1 when neither was parsed.
std::function<int(bool quiet)> AddDeltaCommands(CLI::App& app);

}  // namespace aloft::cli
