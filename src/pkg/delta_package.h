// Delta packages: the difference between two full packages of the same software, signed like any
// package. Each component's payload is a delta patch (docs/delta-format.md) against the same
// component of the base package; the manifest records the base's version, size and SHA-256 and the
// target image's size and SHA-256, so a device checks both ends.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/progress.h"
#include "crypto/key_wrap.h"
#include "crypto/keys.h"
#include "crypto/trust.h"
#include "delta/diff.h"
#include "pkg/package.h"

namespace aloft::pkg {

struct DeltaPackageOptions {
  std::string from;  // the base package (what devices run)
  std::string to;    // the target package
  // With a trust set, both inputs' signatures must satisfy it; without, only their hashes are
  // checked (they are the release engineer's own files).
  const crypto::TrustSet* trust = nullptr;
  std::vector<const crypto::PrivateKey*> keys;
  // Encrypted inputs (docs/encryption.md): the content key of `from` and of `to`, needed when
  // their payloads are encrypted. The delta of an encrypted `to` is sealed with `to`'s key (the
  // same key id, so the key each device was given for the release opens it too): a delta of an
  // encrypted release is never written in the clear.
  std::optional<crypto::ContentKey> from_key, to_key;
  delta::DiffOptions diff;
  std::string output;
};

struct DeltaComponentReport {
  std::string name;
  uint64_t image_size = 0;
  uint64_t patch_size = 0;  // as stored (sealed, when encrypted)
  bool encrypted = false;
};

// Writes the delta package atomically. Both inputs must be full packages with the same name; every
// component of `to` must exist in `from`. Errors name the input and the component.
Result<std::vector<DeltaComponentReport>> MakeDeltaPackage(const DeltaPackageOptions& options,
                                                           const Clock& clock);

// True when `path` starts with a tar header for manifest.json: an .aloft package rather than a
// raw image.
Result<bool> LooksLikePackage(const std::string& path);

}  // namespace aloft::pkg
