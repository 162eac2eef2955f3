// The client's trusted root and its updates (TUF 1.0, section 5.3 "Update the root role"): a new
// root N+1 must be signed by a threshold of the trusted root's root keys *and* of its own, its
// version must be exactly N+1, and its type root; each is applied in turn, so a device that was
// offline through several rotations follows the chain from the root it trusts. After the last,
// the root must not be expired (5.3.10: a frozen repository is detected). The keys of a role that
// a rotation removed no longer count for that role (VerifyRole with the new root's keys).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/error.h"
#include "tuf/metadata.h"

namespace aloft::tuf {

class TrustedRoot {
 public:
  // The root a device ships with: parsed, and signed by a threshold of its own root keys.
  static Result<TrustedRoot> FromText(std::string_view text, const std::string& what);

  // Section 5.3.4-5.3.9: `text` is root version version()+1. On any refusal the trusted root is
  // unchanged. kUntrusted for missing signatures, kIntegrity for a wrong version (rollback or a
  // skipped version), kMalformed for what does not parse.
  Status Update(std::string_view text, const std::string& what);
  // Section 5.3.10: kUntrusted ("expired") when the root expired at `now_ms`.
  Status CheckNotExpired(int64_t now_ms) const;

  const Root& root() const { return root_; }
  const json& envelope() const { return envelope_; }
  int64_t version() const { return root_.common.version; }
  // Whether a threshold of `role`'s keys (by this root) signed `envelope`.
  Status VerifyRole(const json& envelope, const std::string& role, const std::string& what) const;

 private:
  Root root_;
  json envelope_;
};

}  // namespace aloft::tuf
