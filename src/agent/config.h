// aloft-agent's configuration file (TOML); docs/agent.md lists every key.
//
//   server = "http://127.0.0.1:8080"
//   device = "dev-1"
//   token_file = "/etc/aloft/dev-1.token"
//   device_type = "board-a"
//   state_dir = "/var/lib/aloft-agent"
//   health_check = "/usr/libexec/aloft/health"
//   [trust]
//   keys = ["/etc/aloft/release.pub"]
//   threshold = 1
//   [[module]]
//   name = "main"
//   layout = "ab"                  # ab | backup (simulated NOR flash) | file (Linux)
//   flash = "/var/lib/aloft-agent/main.flash"   # a simulated NOR flash file
//   flash_size = 1048576
//   erase_block = 4096
//   write_unit = 8
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "agent/agent.h"
#include "agent/file_storage.h"
#include "boot/layout.h"
#include "flash/flash.h"

namespace aloft::agent {

struct ModuleConfig {
  std::string name = "main";
  boot::LayoutKind layout = boot::LayoutKind::kAb;
  std::string flash;  // the simulated flash file
  flash::FlashGeometry geometry{1 << 20, 4096, 8};
  std::optional<FileSlots> file;  // layout = "file": the slots and bootloader commands instead
};

struct AgentFile {
  AgentConfig agent;
  std::vector<ModuleConfig> modules;
  // Linux devices (file layout): what reboots the device, and where its boot id is read.
  std::string reboot_command;
  std::string boot_id_file = "/proc/sys/kernel/random/boot_id";
  bool file_layout() const { return !modules.empty() && modules[0].file.has_value(); }
};

// Reads and checks the file: required keys, key files loaded into the trust set, geometries valid.
// Errors are kInvalidArgument naming the file and key.
Result<AgentFile> LoadAgentConfig(const std::string& path);

}  // namespace aloft::agent
