// Password hashes for people who sign in (aloftd's users): scrypt (RFC 7914) through OpenSSL, a
// memory-hard function, so that a stolen database costs an attacker memory as well as time per
// guess. Stored as a PHC-style string that names its parameters, so that they can be raised
// later without invalidating older hashes:
//
//   $scrypt$ln=15,r=8,p=1$<salt, base64>$<32-byte hash, base64>
//
// ln=15 (N = 32768), r=8, p=1: 32 MiB and about 100 ms per hash on this project's machines.
#pragma once

#include <string>
#include <string_view>

#include "core/error.h"

namespace aloft::crypto {

struct ScryptParams {
  int log2_n = 15;
  int r = 8;
  int p = 1;
};

// A new hash of `password` with a random 16-byte salt.
Result<std::string> HashPassword(std::string_view password, ScryptParams params = {});
// Whether `password` matches `stored` (compared in constant time). kInvalidArgument when
// `stored` is not a hash this function understands, or asks for more than 256 MiB.
Result<bool> VerifyPassword(std::string_view password, std::string_view stored);

}  // namespace aloft::crypto
