// Shell commands the agent runs on the device: the health check and, for the file layout, the
// bootloader's commands (which slot booted, try a slot, make a slot primary).
//
//   ALOFT_ASSIGN_OR_RETURN(std::string out, RunCommand("fw_printenv -n slot", 10s));
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "core/error.h"

namespace aloft::agent {

// At most this much of a command's standard output is kept.
inline constexpr size_t kMaxCommandOutput = 4096;

// Runs `command` with /bin/sh -c, the agent's environment plus `env` ("NAME=value"), standard
// input from /dev/null, standard error inherited, killing it after `timeout`. Returns its standard
// output when it exits 0; kUnavailable naming the command and the exit status (or the timeout,
// or the signal) otherwise, with the last line of its output if it printed one.
Result<std::string> RunCommand(const std::string& command, std::chrono::seconds timeout,
                               const std::vector<std::string>& env = {});

}  // namespace aloft::agent
