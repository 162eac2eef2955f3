// Where a module's images live, as the agent sees it: the ab and backup flash layouts
// (boot/layout.h) behind one interface. Every step is idempotent, so the agent can redo the step
// its journal names after a power cut.
//
//   storage.BeginInstall(target) ; storage.Write(...)* ; storage.EndInstall(target)
//   storage.Activate(target, tries) ; <reboot through the bootloader>
//   storage.BootedNew(target) ? storage.Commit(target, counter) : storage.Rollback()
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "boot/layout.h"
#include "boot/record.h"
#include "core/io.h"
#include "flash/flash.h"

namespace aloft::agent {

struct StorageStatus {
  boot::ImageSlot running;               // the image the device runs now
  bool trial = false;                    // running is on trial (not yet confirmed)
  boot::ImageSlot confirmed;             // the last confirmed image (== running unless trial)
  std::optional<boot::ImageSlot> other;  // ab: the other slot; backup: the backup region
  uint64_t security_counter = 0;
  std::string describe;  // layout and record, for `aloft-agent status`
};

// A ByteSink: Write takes the image being installed (directly, or from the delta patcher).
class Storage : public ByteSink {
 public:
  virtual Result<StorageStatus> GetStatus() = 0;
  // The largest image this storage takes.
  virtual uint64_t image_capacity() const = 0;
  // A flash region for staging the downloaded package (backup layout), or none (a file is used).
  virtual std::optional<boot::Region> staging_region() const { return std::nullopt; }

  // Prepares the target (ab: the inactive slot; backup: copies running to backup first) and
  // starts writing. Nothing the bootloader would start is touched until Activate.
  virtual Status BeginInstall(const boot::ImageSlot& target) = 0;
  Status Write(ByteSpan image_bytes) override = 0;
  // Reads the image a delta applies to while an install is in progress (between BeginInstall and
  // EndInstall): the slot not being written (ab, file) or the backup copy BeginInstall made of
  // the running image (backup).
  virtual Status ReadBase(uint64_t offset, std::span<uint8_t> out) = 0;
  // Flushes and reads the target back: kIntegrity unless it matches `target`.
  virtual Status EndInstall(const boot::ImageSlot& target) = 0;
  // Tells the bootloader to try `target` for `tries` boots. kIntegrity (and nothing changed) when
  // the target no longer holds `target`: a reset undid the install, which the agent then redoes.
  virtual Status Activate(const boot::ImageSlot& target, uint8_t tries) = 0;
  // After a reboot: whether the device runs `target` on trial (false when the bootloader went
  // back to the old image) or has already committed it.
  virtual Result<bool> BootedNew(const boot::ImageSlot& target) = 0;
  // Makes `target` the confirmed image and raises the security counter to `counter`.
  virtual Status Commit(const boot::ImageSlot& target, uint64_t counter) = 0;
  // Cancels any pending or partial update so that the confirmed image runs. Returns true when a
  // reboot is needed for that (the device runs something else now).
  virtual Result<bool> Rollback() = 0;
};

// The ab or backup layout on `flash`. `booted_slot` is what the bootloader started (ab; the
// boot model's BootResult::slot), 0 for backup.
std::unique_ptr<Storage> MakeFlashStorage(flash::Flash& flash, const boot::Layout& layout,
                                          int booted_slot);

// "sha256 3fa2… (1.2.0, 30000 bytes)"
std::string DescribeSlot(const boot::ImageSlot& s);
boot::ImageSlot SlotFrom(const std::string& version, uint64_t size, const std::string& sha256_hex);
std::string SlotSha256(const boot::ImageSlot& s);

}  // namespace aloft::agent
