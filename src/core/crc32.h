// CRC-32 (IEEE 802.3, the zlib / PNG polynomial 0xEDB88320, reflected, init and final xor
// 0xFFFFFFFF): Crc32("123456789") == 0xCBF43926. For records small enough that a table-driven
// byte loop is plenty; not a hash to trust.
#pragma once

#include <cstdint>

#include "core/encoding.h"

namespace aloft {

uint32_t Crc32(ByteSpan data, uint32_t crc = 0);

}  // namespace aloft
