#include "delta/format.h"

#include <cstring>

#include "core/crc32.h"

namespace aloft::delta {
namespace {

void PutLe(Bytes& out, uint64_t v, int n) {
  for (int i = 0; i < n; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
uint64_t GetLe(const uint8_t* p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}

// Layout (little-endian):
//   0 magic[4] | 4 version | 5 flags (0) | 6 codec x3 | 9 window_log x3 | 12 base_size u64 |
//   20 target_size u64 | 28 base_sha256[32] | 60 target_sha256[32] | 92 max_segment u32 |
//   96 segments u32 | 100 crc32 of bytes 0..99
constexpr size_t kCrcOffset = 100;

}  // namespace

std::string_view CodecName(Codec c) {
  switch (c) {
    case Codec::kStored:
      return "stored";
    case Codec::kZstd:
      return "zstd";
    case Codec::kLzma2:
      return "lzma2";
  }
  return "?";
}

std::string_view StreamName(int s) {
  static constexpr std::string_view kNames[] = {"control", "diff", "extra"};
  return s >= 0 && s < kStreams ? kNames[s] : "?";
}

Bytes EncodeHeader(const Header& h) {
  Bytes out(kMagic.begin(), kMagic.end());
  out.push_back(kVersion);
  out.push_back(0);
  for (const StreamInfo& s : h.streams) out.push_back(static_cast<uint8_t>(s.codec));
  for (const StreamInfo& s : h.streams) out.push_back(s.window_log);
  PutLe(out, h.base_size, 8);
  PutLe(out, h.target_size, 8);
  out.insert(out.end(), h.base_sha256.begin(), h.base_sha256.end());
  out.insert(out.end(), h.target_sha256.begin(), h.target_sha256.end());
  PutLe(out, h.max_segment, 4);
  PutLe(out, h.segments, 4);
  PutLe(out, Crc32(out), 4);
  return out;
}

Result<Header> ParseHeader(ByteSpan b) {
  if (b.size() < kHeaderSize) {
    return Error(Code::kMalformed, "patch is truncated: " + std::to_string(b.size()) +
                                       " bytes, shorter than the " + std::to_string(kHeaderSize) +
                                       "-byte header");
  }
  if (std::memcmp(b.data(), kMagic.data(), kMagic.size()) != 0) {
    return Error(Code::kMalformed, "not an Aloft delta patch (bad magic)");
  }
  if (b[4] != kVersion) {
    return Error(Code::kUnsupported, "patch format version " + std::to_string(b[4]) +
                                         " is not supported (this build reads version " +
                                         std::to_string(kVersion) + ")");
  }
  if (Crc32(b.first(kCrcOffset)) != GetLe(b.data() + kCrcOffset, 4)) {
    return Error(Code::kMalformed, "patch header is corrupt (CRC mismatch)");
  }
  if (b[5] != 0) return Error(Code::kMalformed, "patch header: unknown flags");
  Header h;
  for (int s = 0; s < kStreams; ++s) {
    uint8_t codec = b[6 + s], log = b[9 + s];
    if (codec > static_cast<uint8_t>(Codec::kLzma2)) {
      return Error(Code::kMalformed, "patch header: unknown codec " + std::to_string(codec) +
                                         " for the " + std::string(StreamName(s)) + " stream");
    }
    h.streams[s].codec = static_cast<Codec>(codec);
    bool stored = h.streams[s].codec == Codec::kStored;
    if (stored ? log != 0 : (log < 10 || log > 31)) {
      return Error(Code::kMalformed, "patch header: window 2^" + std::to_string(log) +
                                         " is invalid for the " + std::string(StreamName(s)) +
                                         " stream");
    }
    h.streams[s].window_log = log;
  }
  h.base_size = GetLe(b.data() + 12, 8);
  h.target_size = GetLe(b.data() + 20, 8);
  std::memcpy(h.base_sha256.data(), b.data() + 28, 32);
  std::memcpy(h.target_sha256.data(), b.data() + 60, 32);
  h.max_segment = static_cast<uint32_t>(GetLe(b.data() + 92, 4));
  h.segments = static_cast<uint32_t>(GetLe(b.data() + 96, 4));
  if ((h.segments == 0) != (h.target_size == 0)) {
    return Error(Code::kMalformed, "patch header: " + std::to_string(h.segments) +
                                       " segments for a " + std::to_string(h.target_size) +
                                       "-byte target");
  }
  if (h.segments > h.target_size) {
    return Error(Code::kMalformed, "patch header: more segments than target bytes");
  }
  return h;
}

void PutVarint(Bytes& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<uint8_t>(v | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<uint8_t>(v));
}

Result<std::optional<uint64_t>> GetVarint(ByteSpan data, size_t* pos) {
  uint64_t v = 0;
  for (int i = 0; i < 10; ++i) {
    if (*pos + i >= data.size()) return std::optional<uint64_t>();
    uint8_t byte = data[*pos + i];
    if (i == 9 && byte > 1) return Error(Code::kMalformed, "varint overflows 64 bits");
    v |= static_cast<uint64_t>(byte & 0x7f) << (7 * i);
    if (!(byte & 0x80)) {
      *pos += i + 1;
      return std::optional<uint64_t>(v);
    }
  }
  return Error(Code::kMalformed, "varint longer than 10 bytes");
}

}  // namespace aloft::delta
