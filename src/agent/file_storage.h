// The `file` layout, for Linux devices: two slots that are files or block devices (e.g.
// /dev/mmcblk0p2 and /dev/mmcblk0p3), and a bootloader driven through three shell commands, as
// with U-Boot's fw_setenv or GRUB's grub-editenv. docs/flash-layouts.md shows a U-Boot setup.
//
//   booted_command    prints the slot that booted: 0 or 1, a or b, or the slot's path
//   activate_command  makes the bootloader try ALOFT_SLOT for ALOFT_TRIES boots, then fall back
//   commit_command    makes ALOFT_SLOT the slot to boot and cancels any trial
//
// Every command gets ALOFT_MODULE; activate and commit also ALOFT_SLOT_INDEX, ALOFT_SLOT_PATH and
// ALOFT_VERSION (the version the slot holds).
// What each slot holds (version, size, SHA-256), which slot is confirmed and which is on trial,
// and the security counter are kept in a JSON record in the state directory, replaced atomically
// (written, fsynced, renamed).
#pragma once

#include <array>
#include <chrono>
#include <memory>
#include <string>

#include "agent/storage.h"

namespace aloft::agent {

struct FileSlots {
  std::string module;                // for messages and ALOFT_MODULE
  std::array<std::string, 2> paths;  // slot 0 (a) and slot 1 (b)
  uint64_t slot_size = 0;            // 0: the block devices' size (required for regular files)
  std::string booted_command;
  std::string activate_command;
  std::string commit_command;
  std::string record;  // the slot record, e.g. <state_dir>/<module>.slots.json
  std::chrono::seconds command_timeout{60};
};

// Asks the bootloader which slot booted. Errors name the command or the slot.
Result<std::unique_ptr<Storage>> MakeFileStorage(const FileSlots& slots);

// Records the factory state: the booted slot holds `image` (its first image.size() bytes are
// compared, nothing is written to a slot), at `version`, with the device's security counter.
Status ProvisionFileSlots(const FileSlots& slots, const std::string& image_path,
                          const std::string& version, uint64_t security_counter);

}  // namespace aloft::agent
