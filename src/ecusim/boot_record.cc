#include "ecusim/boot_record.h"

#include <cstring>

#include "core/crc32.h"

namespace aloft::ecusim {

namespace {

constexpr char kMagic[4] = {'A', 'E', 'C', 'U'};
constexpr char kRecordMagic[4] = {'A', 'B', 'R', '1'};
constexpr size_t kRecord = 4 + 4 + 1 + 2 * (1 + 4 + 4 + 24) + 4;

void Put32(Bytes& b, uint32_t v) {
  for (int i = 3; i >= 0; --i) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
uint32_t Get32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}
void PutText(Bytes& b, const std::string& s, size_t n) {
  for (size_t i = 0; i < n; ++i) b.push_back(i < s.size() ? static_cast<uint8_t>(s[i]) : 0);
}
std::string GetText(const uint8_t* p, size_t n) {
  size_t len = 0;
  while (len < n && p[len]) ++len;
  return std::string(reinterpret_cast<const char*>(p), len);
}

Bytes Encode(const BootState& s) {
  Bytes b(kRecordMagic, kRecordMagic + 4);
  Put32(b, s.sequence);
  b.push_back(s.active);
  for (const Bank& bank : s.banks) {
    b.push_back(bank.valid ? 1 : 0);
    Put32(b, bank.size);
    Put32(b, bank.crc32);
    PutText(b, bank.version, 24);
  }
  Put32(b, Crc32(b));
  return b;
}

std::optional<BootState> Decode(ByteSpan b) {
  if (b.size() < kRecord || std::memcmp(b.data(), kRecordMagic, 4) != 0) return std::nullopt;
  if (Crc32(b.first(kRecord - 4)) != Get32(b.data() + kRecord - 4)) return std::nullopt;
  BootState s;
  s.sequence = Get32(b.data() + 4);
  s.active = b[8] & 1;
  const uint8_t* p = b.data() + 9;
  for (Bank& bank : s.banks) {
    bank.valid = p[0] == 1;
    bank.size = Get32(p + 1);
    bank.crc32 = Get32(p + 5);
    bank.version = GetText(p + 9, 24);
    p += 33;
  }
  return s;
}

}  // namespace

Bytes MakeAppImage(const std::string& version, const std::string& part_number, ByteSpan body) {
  Bytes image(kMagic, kMagic + 4);
  image.push_back(1);
  image.resize(8, 0);
  PutText(image, version, 24);
  PutText(image, part_number, 24);
  image.resize(kAppHeader, 0);
  image.insert(image.end(), body.begin(), body.end());
  return image;
}

std::optional<std::string> AppVersion(ByteSpan image) {
  if (image.size() < kAppHeader || std::memcmp(image.data(), kMagic, 4) != 0 || image[4] != 1) {
    return std::nullopt;
  }
  return GetText(image.data() + 8, 24);
}

Result<BootState> LoadBootState(flash::Flash& data_flash) {
  const uint32_t block = data_flash.geometry().erase_block;
  std::optional<BootState> best;
  for (int copy = 0; copy < 2; ++copy) {
    Bytes b(kRecord);
    ALOFT_RETURN_IF_ERROR(data_flash.Read(uint64_t{block} * copy, b));
    std::optional<BootState> s = Decode(b);
    if (s && (!best || s->sequence > best->sequence)) best = s;
  }
  return best ? *best : BootState{};
}

Status StoreBootState(flash::Flash& data_flash, BootState& state) {
  const uint32_t block = data_flash.geometry().erase_block;
  const uint32_t unit = data_flash.geometry().write_unit;
  ++state.sequence;
  const uint64_t at = uint64_t{block} * (state.sequence % 2);  // the older copy's block
  Bytes b = Encode(state);
  b.resize((b.size() + unit - 1) / unit * unit, 0xFF);
  ALOFT_RETURN_IF_ERROR(data_flash.Erase(at, block));
  return data_flash.Program(at, b);
}

}  // namespace aloft::ecusim
