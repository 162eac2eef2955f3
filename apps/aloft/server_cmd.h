// `aloft server ...`: the management API from the command line. Tables for people, --json for
// scripts. docs/server.md lists the commands.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace aloft::cli {

// Adds the `server` subcommand tree to `app`; returns the function that runs whichever of its
// commands was parsed (its exit status), to call after app.parse().
std::function<int(bool quiet)> AddServerCommands(CLI::App& app, CLI::App** server_cmd);

}  // namespace aloft::cli
