// Hex (lower case) and base64 (RFC 4648 section 4, with padding) for hashes, key ids and
// signatures.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace aloft {

using Bytes = std::vector<uint8_t>;
using ByteSpan = std::span<const uint8_t>;

inline ByteSpan AsBytes(std::string_view s) {
  return ByteSpan(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}
inline std::string_view AsChars(ByteSpan b) {
  return std::string_view(reinterpret_cast<const char*>(b.data()), b.size());
}

// Lower-case hex, two digits per byte.
std::string HexEncode(ByteSpan data);
// Accepts upper and lower case; kMalformed on an odd length or a non-hex digit (names its offset).
Result<Bytes> HexDecode(std::string_view text);

// Standard alphabet with '=' padding.
std::string Base64Encode(ByteSpan data);
// Strict: standard alphabet, padding required, no whitespace; kMalformed otherwise.
Result<Bytes> Base64Decode(std::string_view text);

}  // namespace aloft
