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

// `s` as one word for /bin/sh: in single quotes, each ' written as '\''.
std::string ShellQuote(std::string_view s);

}  // namespace aloft
