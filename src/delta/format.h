// The Aloft delta patch format (docs/delta-format.md).
//
//   header (104 bytes, fixed) | segment 1 | ... | segment N
//   segment: varint target bytes | varint piece size x 3 | control piece | diff piece | extra piece
//
// A patch is a list of operations on a base image. Each operation copies `add` bytes from the base
// at the current base position, adding a byte from the diff stream to each ("approximate match"),
// then takes `extra` new bytes from the extra stream, then moves the base position by `seek`. The
// three streams are each one compressed stream (zstd, raw LZMA2 or stored), cut into pieces at
// segment boundaries by a flush, so that a segment's pieces decode to exactly what the segment's
// target bytes need: a decoder reads the patch front to back and holds one segment at a time.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/encoding.h"
#include "core/error.h"

namespace aloft::delta {

inline constexpr std::array<uint8_t, 4> kMagic = {'A', 'L', 'D', 'P'};
inline constexpr uint8_t kVersion = 1;
inline constexpr size_t kHeaderSize = 104;

enum class Codec : uint8_t { kStored = 0, kZstd = 1, kLzma2 = 2 };
std::string_view CodecName(Codec c);

enum Stream { kControl = 0, kDiff = 1, kExtra = 2 };
inline constexpr int kStreams = 3;
std::string_view StreamName(int s);

struct StreamInfo {
  Codec codec = Codec::kStored;
  uint8_t window_log = 0;  // the decoder's window / dictionary is 1 << window_log (0 for stored)
};

struct Header {
  uint64_t base_size = 0;
  uint64_t target_size = 0;
  std::array<uint8_t, 32> base_sha256{};
  std::array<uint8_t, 32> target_sha256{};
  std::array<StreamInfo, kStreams> streams{};
  uint32_t max_segment = 0;  // the largest sum of one segment's piece sizes
  uint32_t segments = 0;
};

Bytes EncodeHeader(const Header& h);
// Parses and checks the first kHeaderSize bytes (magic, version, CRC, field ranges). Errors are
// kMalformed, or kUnsupported for a newer version.
Result<Header> ParseHeader(ByteSpan bytes);

// A diff byte is added to its base byte as a signed value with a carry into the next byte of the
// same operation (the carry starts at 0 with each operation): a pointer that moved by 16 then
// differs in one byte instead of two whenever the addition crosses a byte boundary.
inline uint8_t AddWithCarry(uint8_t old, uint8_t diff, int* carry) {
  int t = old + static_cast<int8_t>(diff) + *carry;
  *carry = t > 255 ? 1 : (t < 0 ? -1 : 0);
  return static_cast<uint8_t>(t);
}

// LEB128 unsigned varints; zigzag for signed values.
void PutVarint(Bytes& out, uint64_t v);
inline uint64_t ZigZag(int64_t v) { return (static_cast<uint64_t>(v) << 1) ^ (v < 0 ? ~0ull : 0); }
inline int64_t UnZigZag(uint64_t v) {
  return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1);
}
// Reads a varint from `data` at `*pos`: nullopt when the bytes end first; kMalformed when it is
// longer than 10 bytes or overflows.
Result<std::optional<uint64_t>> GetVarint(ByteSpan data, size_t* pos);

}  // namespace aloft::delta
