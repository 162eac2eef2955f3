// `aloft ca`: the operator's certificate authority in a directory (docs/identity.md): devices'
// certificates for TLS client authentication, testers' for UDS 0x29, revocation and the CRL.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

#include "core/clock.h"

namespace aloft::cli {

// Adds `ca` to `app`; returns the function that runs it and gives its exit status, or -1 when
// it was not parsed.
std::function<int(bool quiet)> AddCaCommands(CLI::App& app);

}  // namespace aloft::cli
