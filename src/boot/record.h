// The boot-control record: what the bootloader and the agent agree on about a device's images.
// Byte layout in docs/flash-layouts.md. It lives in two copies, each in its own erase block; a
// write goes to the copy that does not hold the newest record, with a sequence number one higher,
// so a torn write (power cut mid-erase or mid-program) spoils only that copy and the reader falls
// back to the other, which still holds the previous record.
//
//   RecordStore store(flash, {layout.control[0], layout.control[1]});
//   ALOFT_ASSIGN_OR_RETURN(BootRecord r, store.Load());
//   r.pending = 1; r.tries_left = 3;
//   ALOFT_RETURN_IF_ERROR(store.Save(r));   // seq becomes r.seq + 1
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>

#include "core/encoding.h"
#include "core/error.h"
#include "flash/flash.h"

namespace aloft::boot {

inline constexpr size_t kRecordSize = 172;  // bytes covered by the layout, CRC included
inline constexpr size_t kVersionField = 32;
inline constexpr uint8_t kNoSlot = 0xFF;

enum class LayoutKind : uint8_t { kAb = 1, kBackup = 2 };
std::string_view LayoutName(LayoutKind k);  // "ab" | "backup"

// The backup layout's update state (always kIdle in the ab layout).
enum class UpdateState : uint8_t {
  kIdle = 0,       // running is the confirmed image
  kBackingUp = 1,  // copying running -> backup; running untouched
  kWriting = 2,    // backup holds the old image; running is being overwritten
  kTrial = 3,      // running holds the new image, not yet confirmed
  kRestoring = 4,  // copying backup -> running
};
std::string_view UpdateStateName(UpdateState s);

struct ImageSlot {
  uint64_t size = 0;                 // 0: the slot holds no known image
  std::array<uint8_t, 32> sha256{};  // of the image's `size` bytes
  std::string version;               // at most kVersionField - 1 characters
  bool valid() const { return size != 0; }
  bool operator==(const ImageSlot&) const = default;
};

struct BootRecord {
  LayoutKind layout = LayoutKind::kAb;
  uint32_t seq = 0;
  uint8_t active = 0;         // ab: the slot to boot; backup: 0 (running)
  uint8_t pending = kNoSlot;  // ab: the slot on trial; kNoSlot when none
  uint8_t tries_left = 0;     // boots left for the image on trial
  bool confirmed = true;      // the active image passed its health check
  UpdateState state = UpdateState::kIdle;
  uint64_t security_counter = 0;  // anti-rollback: the highest counter committed
  ImageSlot slots[2];             // ab: slot 0 and 1; backup: running and backup

  bool operator==(const BootRecord&) const = default;
};

// The record as stored: kRecordSize bytes then 0xFF up to `padded` (a write-unit multiple).
Bytes EncodeRecord(const BootRecord& r, size_t padded);
// kMalformed when the magic, format or CRC do not match (an erased or torn copy).
Result<BootRecord> DecodeRecord(ByteSpan bytes);

// The two copies of the record on a flash.
class RecordStore {
 public:
  // Each copy occupies the erase block at the given offset.
  RecordStore(flash::Flash& flash, std::array<uint64_t, 2> copies)
      : flash_(flash), copies_(copies) {}

  // The valid copy with the higher sequence number; kNotFound when neither copy is valid.
  Result<BootRecord> Load();
  // Writes `r` with seq = (newest valid seq) + 1 into the other copy: erase, then program. On
  // success `r.seq` is updated.
  Status Save(BootRecord& r);
  // Both copies, written fresh (factory provisioning).
  Status Format(BootRecord& r);

  // The sizes the encoded record takes on this flash.
  size_t padded_size() const;

 private:
  struct Newest {
    int index = -1;  // the copy holding the newest valid record; -1 when neither is valid
    std::optional<BootRecord> record;
  };
  Result<Newest> ReadNewest();
  Status WriteCopy(int i, const BootRecord& r);

  flash::Flash& flash_;
  std::array<uint64_t, 2> copies_;
};

}  // namespace aloft::boot
