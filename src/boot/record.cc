#include "boot/record.h"

#include <cstring>

#include "core/crc32.h"

namespace aloft::boot {
namespace {

constexpr uint8_t kMagic[4] = {'A', 'L', 'B', 'R'};
constexpr uint8_t kFormat = 1;
constexpr size_t kSlotBytes = 8 + 32 + kVersionField;
constexpr size_t kCrcOffset = kRecordSize - 4;
static_assert(24 + 2 * kSlotBytes == kCrcOffset);

void PutLe(uint8_t* p, uint64_t v, int n) {
  for (int i = 0; i < n; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
uint64_t GetLe(const uint8_t* p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v |= uint64_t{p[i]} << (8 * i);
  return v;
}

}  // namespace

std::string_view LayoutName(LayoutKind k) { return k == LayoutKind::kAb ? "ab" : "backup"; }

std::string_view UpdateStateName(UpdateState s) {
  switch (s) {
    case UpdateState::kIdle:
      return "idle";
    case UpdateState::kBackingUp:
      return "backing-up";
    case UpdateState::kWriting:
      return "writing";
    case UpdateState::kTrial:
      return "trial";
    case UpdateState::kRestoring:
      return "restoring";
  }
  return "unknown";
}

Bytes EncodeRecord(const BootRecord& r, size_t padded) {
  Bytes b(std::max(padded, kRecordSize), 0xFF);
  uint8_t* p = b.data();
  std::memcpy(p, kMagic, 4);
  p[4] = kFormat;
  p[5] = static_cast<uint8_t>(r.layout);
  p[6] = r.active;
  p[7] = r.pending;
  PutLe(p + 8, r.seq, 4);
  p[12] = r.tries_left;
  p[13] = r.confirmed ? 1 : 0;
  p[14] = static_cast<uint8_t>(r.state);
  p[15] = 0;
  PutLe(p + 16, r.security_counter, 8);
  for (int s = 0; s < 2; ++s) {
    uint8_t* q = p + 24 + s * kSlotBytes;
    PutLe(q, r.slots[s].size, 8);
    std::memcpy(q + 8, r.slots[s].sha256.data(), 32);
    std::memset(q + 40, 0, kVersionField);
    std::memcpy(q + 40, r.slots[s].version.data(),
                std::min(r.slots[s].version.size(), kVersionField - 1));
  }
  PutLe(p + kCrcOffset, Crc32(ByteSpan(p, kCrcOffset)), 4);
  return b;
}

Result<BootRecord> DecodeRecord(ByteSpan bytes) {
  if (bytes.size() < kRecordSize) {
    return Error(Code::kMalformed, "boot record: " + std::to_string(bytes.size()) +
                                       " bytes, expected " + std::to_string(kRecordSize));
  }
  const uint8_t* p = bytes.data();
  if (std::memcmp(p, kMagic, 4) != 0) return Error(Code::kMalformed, "boot record: no magic");
  uint32_t crc = static_cast<uint32_t>(GetLe(p + kCrcOffset, 4));
  if (crc != Crc32(ByteSpan(p, kCrcOffset))) {
    return Error(Code::kMalformed, "boot record: CRC mismatch (torn write)");
  }
  if (p[4] != kFormat) {
    return Error(Code::kUnsupported, "boot record: format " + std::to_string(p[4]));
  }
  BootRecord r;
  if (p[5] != 1 && p[5] != 2) return Error(Code::kMalformed, "boot record: unknown layout");
  r.layout = static_cast<LayoutKind>(p[5]);
  r.active = p[6];
  r.pending = p[7];
  r.seq = static_cast<uint32_t>(GetLe(p + 8, 4));
  r.tries_left = p[12];
  r.confirmed = p[13] != 0;
  if (p[14] > static_cast<uint8_t>(UpdateState::kRestoring) || r.active > 1 ||
      (r.pending > 1 && r.pending != kNoSlot)) {
    return Error(Code::kMalformed, "boot record: field out of range");
  }
  r.state = static_cast<UpdateState>(p[14]);
  r.security_counter = GetLe(p + 16, 8);
  for (int s = 0; s < 2; ++s) {
    const uint8_t* q = p + 24 + s * kSlotBytes;
    r.slots[s].size = GetLe(q, 8);
    std::memcpy(r.slots[s].sha256.data(), q + 8, 32);
    const char* v = reinterpret_cast<const char*>(q + 40);
    r.slots[s].version.assign(v, strnlen(v, kVersionField - 1));
  }
  return r;
}

size_t RecordStore::padded_size() const {
  const size_t unit = flash_.geometry().write_unit;
  return (kRecordSize + unit - 1) / unit * unit;
}

Result<RecordStore::Newest> RecordStore::ReadNewest() {
  Newest out;
  std::optional<BootRecord> copy[2];
  for (int i = 0; i < 2; ++i) {
    Bytes b(padded_size());
    ALOFT_RETURN_IF_ERROR(flash_.Read(copies_[i], b));
    if (auto r = DecodeRecord(b); r.ok()) copy[i] = std::move(r).value();
  }
  // Sequence numbers compared with wrap-around.
  if (copy[0] && copy[1]) {
    out.index = static_cast<int32_t>(copy[1]->seq - copy[0]->seq) > 0 ? 1 : 0;
  } else if (copy[0] || copy[1]) {
    out.index = copy[0] ? 0 : 1;
  }
  if (out.index >= 0) out.record = std::move(copy[out.index]);
  return out;
}

Result<BootRecord> RecordStore::Load() {
  ALOFT_ASSIGN_OR_RETURN(Newest n, ReadNewest());
  if (!n.record) {
    return Error(Code::kNotFound, "boot record: neither copy is valid (flash not provisioned?)");
  }
  return *n.record;
}

Status RecordStore::WriteCopy(int i, const BootRecord& r) {
  const uint32_t block = flash_.geometry().erase_block;
  ALOFT_RETURN_IF_ERROR(flash_.Erase(copies_[i], block));
  return flash_.Program(copies_[i], EncodeRecord(r, padded_size()));
}

Status RecordStore::Save(BootRecord& r) {
  ALOFT_ASSIGN_OR_RETURN(Newest n, ReadNewest());
  // The copy not holding the newest record (copy 0 when neither is valid).
  const int target = n.index == 0 ? 1 : 0;
  const uint32_t newest = n.record ? n.record->seq : 0;
  BootRecord out = r;
  out.seq = newest + 1;
  if (Status s = WriteCopy(target, out); !s.ok()) {
    return s.error().WithContext("writing boot record copy " + std::to_string(target));
  }
  r.seq = out.seq;
  return OkStatus();
}

Status RecordStore::Format(BootRecord& r) {
  r.seq = 1;
  ALOFT_RETURN_IF_ERROR(WriteCopy(0, r));
  BootRecord second = r;
  second.seq = 2;
  ALOFT_RETURN_IF_ERROR(WriteCopy(1, second));
  r.seq = 2;
  return OkStatus();
}

}  // namespace aloft::boot
