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

#include <toml++/toml.h>

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

// A device behind this gateway (gateway mode, docs/mqtt.md): its own versions, actions and state
// directory (<state_dir>/sub/<name>). Its images are kept in two slot files there, and the gateway
// hands each new one to `install_command`, which puts it on the sub-device.
struct SubDeviceConfig {
  std::string name;
  std::string device_type;
  std::string module = "main";
  // Gets ALOFT_IMAGE (the image file), ALOFT_DEVICE, ALOFT_MODULE, ALOFT_VERSION; exit 0: the
  // sub-device runs the image. Run again with the old image to roll back.
  std::string install_command;
  std::string health_check;  // optional, as the gateway's own
  uint64_t max_image_size = 64ull << 20;
  std::chrono::seconds command_timeout{600};
};

struct AgentFile {
  AgentConfig agent;
  std::vector<ModuleConfig> modules;
  // Push mode (docs/mqtt.md): "" polls over HTTP only.
  std::string mqtt_url;
  std::string mqtt_ca_file;
  // While the broker is connected, the agent checks in only when told, or after this long.
  std::chrono::seconds push_poll_interval{3600};
  std::chrono::milliseconds mqtt_reply_timeout{10000};
  std::vector<SubDeviceConfig> sub_devices;
  // Linux devices (file layout): what reboots the device, and where its boot id is read.
  std::string reboot_command;
  std::string boot_id_file = "/proc/sys/kernel/random/boot_id";
  bool file_layout() const { return !modules.empty() && modules[0].file.has_value(); }
};

// A sub-device's state directory, slots (their "bootloader" is three commands the gateway runs on
// files in that directory, around install_command) and agent configuration.
std::string SubDeviceDir(const AgentFile& gateway, const SubDeviceConfig& s);
FileSlots SubDeviceSlots(const AgentFile& gateway, const SubDeviceConfig& s);
AgentConfig SubDeviceAgent(const AgentFile& gateway, const SubDeviceConfig& s);
// Records that the sub-device runs `image` at `version` (its slot a gets a copy).
Status ProvisionSubDevice(const AgentFile& gateway, const SubDeviceConfig& s,
                          const std::string& image, const std::string& version,
                          uint64_t security_counter);

// Pieces of a configuration file that aloft-vehicle's shares: a token file (its line), the
// [trust] table (keys = [public key files], threshold) and the [download] table. Errors are
// kInvalidArgument naming `path` and the key; `doc` is the page that lists them.
Result<std::string> ReadTokenFile(const std::string& path);
Status ReadTrustTable(const toml::table& t, const std::string& path, const std::string& doc,
                      crypto::TrustSet& trust);
Status ReadDownloadTable(const toml::table& t, const std::string& path, const std::string& doc,
                         DownloadOptions& download);

// Reads and checks the file: required keys, key files loaded into the trust set, geometries valid.
// Errors are kInvalidArgument naming the file and key.
Result<AgentFile> LoadAgentConfig(const std::string& path);

}  // namespace aloft::agent
