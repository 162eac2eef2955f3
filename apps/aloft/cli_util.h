// What the `aloft` subcommands share: exit codes, printing an error, loading keys.
#pragma once

#include <string>
#include <vector>

#include "core/error.h"
#include "crypto/aead_stream.h"
#include "crypto/keys.h"
#include "crypto/trust.h"

namespace aloft::cli {

// 0 success, 1 the operation failed (verification, I/O, bad input file), 2 usage.
inline constexpr int kExitFailed = 1;
inline constexpr int kExitUsage = 2;

// Prints "aloft: <message>"; kInvalidArgument is a usage error.
int Fail(const Error& e);

Result<std::vector<crypto::PrivateKey>> LoadKeys(const std::vector<std::string>& paths);
std::vector<const crypto::PrivateKey*> Pointers(const std::vector<crypto::PrivateKey>& keys);
// The public keys at `paths`, requiring `threshold` of them.
Result<crypto::TrustSet> LoadTrust(const std::vector<std::string>& paths, size_t threshold);
// `--encrypt FILE`: the content key in FILE, or a new one saved there (0600; said on stderr).
Result<crypto::ContentKey> LoadOrMakeContentKey(const std::string& path);

}  // namespace aloft::cli
