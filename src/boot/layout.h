// Flash layouts (docs/flash-layouts.md): where each region of a device's flash lies, and the
// image operations both the bootloader (boot_model.h) and the agent perform on them.
//
// ab:     | control 0 | control 1 | slot 0 ............ | slot 1 ............ |
// backup: | loader | flag 0 | flag 1 | running ...... | backup ...... | download ...... |
//
// Every region starts on an erase block and spans whole erase blocks.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "boot/record.h"
#include "core/progress.h"
#include "flash/flash.h"

namespace aloft::boot {

struct Region {
  uint64_t offset = 0;
  uint64_t size = 0;
};

struct Layout {
  LayoutKind kind = LayoutKind::kAb;
  flash::FlashGeometry geometry;
  std::array<uint64_t, 2> control{};  // the two record copies (ab: control blocks; backup: flag)
  std::array<Region, 2> slots{};      // ab: slot 0, slot 1; backup: running, backup
  Region loader;                      // backup only
  Region download;                    // backup only: where the package is staged

  // Splits a flash of `geometry` (ab: 2 control blocks, then two equal slots; backup: 1 loader
  // block, 2 flag blocks, then running, backup and download of a third each, download taking any
  // odd block). kInvalidArgument when the flash is too small for the layout.
  static Result<Layout> Compute(LayoutKind kind, const flash::FlashGeometry& geometry);

  // The largest image a slot (ab) or the running region (backup) holds.
  uint64_t image_capacity() const { return slots[0].size; }
  // One line per region: "slot 0  0x00002000  0x0000f000  (60 KiB)".
  std::string Describe() const;
};

Result<LayoutKind> ParseLayoutKind(std::string_view name);

// Whether `region` starts with the image `slot` describes (size and SHA-256 match).
Result<bool> ImageMatches(flash::Flash& flash, const Region& region, const ImageSlot& slot);

// Erases what `size` bytes of `to` need, copies them from `from`, and checks the copy against
// `expect`. kIntegrity when the copy does not match.
Status CopyImage(flash::Flash& flash, const Region& from, const Region& to,
                 const ImageSlot& expect);

// The backup layout's recovery, shared by the bootloader and the agent: records kRestoring (unless
// already), copies backup -> running, then records kIdle with running = the backup's image.
// Resumable: a power cut anywhere leaves kRestoring (or kIdle when done).
Status RestoreFromBackup(flash::Flash& flash, const Layout& layout, RecordStore& store,
                         BootRecord& record);

// Formats the flash with `image` as the confirmed, active image (slot 0 / running): factory
// provisioning for tests, demos and the simulator's `provision` command.
Status Provision(flash::Flash& flash, const Layout& layout, ByteSpan image,
                 const std::string& version, uint64_t security_counter = 0);

// Streams image bytes into a region: each erase block is erased when first reached, bytes are
// programmed in whole write units, the tail padded with 0xFF. Memory: one erase block.
class RegionWriter {
 public:
  // Writing starts at `start` bytes into the region, which must be an erase-block multiple.
  RegionWriter(flash::Flash& flash, const Region& region, uint64_t start = 0);
  // kOutOfRange ("no space") when the bytes would pass the region's end.
  Status Write(ByteSpan data);
  // Programs what is buffered. The region then holds exactly the bytes written.
  Status Finish();
  uint64_t written() const { return written_; }  // bytes from the region's start
  uint64_t flushed() const { return flushed_; }  // of which programmed; an erase-block multiple

 private:
  Status FlushBlock(bool final);

  flash::Flash& flash_;
  Region region_;
  Bytes block_;           // the current erase block's bytes not yet programmed
  uint64_t written_ = 0;  // bytes accepted
  uint64_t flushed_ = 0;  // bytes programmed (always a block multiple until Finish)
};

}  // namespace aloft::boot
