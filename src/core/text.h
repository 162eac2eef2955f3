// Small text helpers shared by the libraries' messages and by what reads command output.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace aloft {

// Exact sizes as the flash geometry, layouts and codec limits name them: "1 MiB", "4 KiB",
// "512-byte" (a size that is no whole number of KiB).
std::string SizeText(uint64_t n);

// Sizes for people, rounded: "512 B", "18.3 KiB", "10.9 MiB", "1.50 GiB".
std::string HumanSize(uint64_t n);

// `s` without leading and trailing ASCII whitespace (space, \t, \n, \v, \f, \r).
std::string_view TrimSpace(std::string_view s);

// Decodes the UTF-8 sequence at s[i]: its length (1 to 4) with the code point in `cp`, or 0 when
// the bytes there are not valid UTF-8 (a stray or missing continuation byte, an overlong form, a
// surrogate, above U+10FFFF).
int DecodeUtf8(std::string_view s, size_t i, uint32_t& cp);

// Whether all of `s` is valid UTF-8.
bool IsValidUtf8(std::string_view s);

// `s` with each byte that is not part of valid UTF-8 replaced by U+FFFD (as JSON encoders and
// browsers show them); valid text is returned unchanged.
std::string ToValidUtf8(std::string_view s);

// `s` as one word for /bin/sh: in single quotes, each ' written as '\''.
std::string ShellQuote(std::string_view s);

}  // namespace aloft
