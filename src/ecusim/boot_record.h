// What an ECU's bootloader keeps in its data flash: for each bank (one for a single-bank ECU,
// two for A/B), whether it holds a valid application and which, and which bank starts. Two
// copies with sequence numbers and a CRC, so a power cut while one is written leaves the other.
// The application's identity comes from the header every simulated image starts with.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>

#include "core/encoding.h"
#include "core/error.h"
#include "flash/flash.h"

namespace aloft::ecusim {

// The header of a simulated ECU application image (docs/vehicle-network.md): 64 bytes, then the
// application. "AECU", format 1, then the software version (NUL-padded ASCII, 24 bytes), then
// the part number (24 bytes), then 8 reserved bytes.
constexpr size_t kAppHeader = 64;
Bytes MakeAppImage(const std::string& version, const std::string& part_number, ByteSpan body);
// The version in an image's header; nullopt when it has none.
std::optional<std::string> AppVersion(ByteSpan image_start);

struct Bank {
  bool valid = false;
  uint32_t size = 0;
  uint32_t crc32 = 0;
  std::string version;  // from the image header; "" when it had none
};

struct BootState {
  uint32_t sequence = 0;
  uint8_t active = 0;  // the bank that starts
  std::array<Bank, 2> banks{};
};

// The newer intact copy in `data_flash` (two erase blocks); a blank state when neither is intact.
Result<BootState> LoadBootState(flash::Flash& data_flash);
// Writes `state` with the next sequence number over the older copy.
Status StoreBootState(flash::Flash& data_flash, BootState& state);

}  // namespace aloft::ecusim
