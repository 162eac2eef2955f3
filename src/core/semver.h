// Semantic Versioning 2.0.0 (https://semver.org): parsing and precedence.
//
//   ALOFT_ASSIGN_OR_RETURN(SemVer v, SemVer::Parse("1.2.0-rc.1+build.5"));
//   v < SemVer::Parse("1.2.0").value();  // true: a pre-release precedes its release
//
// Build metadata is kept (ToString gives the input back) but ignored by precedence, as the spec
// says; so `==` here is "same precedence", and two versions differing only in build metadata are
// equal.
#pragma once

#include <compare>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace aloft {

class SemVer {
 public:
  // kMalformed naming the offending part: "1.02.0: numeric identifier '02' has a leading zero".
  static Result<SemVer> Parse(std::string_view text);

  uint64_t major() const { return major_; }
  uint64_t minor() const { return minor_; }
  uint64_t patch() const { return patch_; }
  const std::vector<std::string>& prerelease() const { return prerelease_; }
  const std::vector<std::string>& build() const { return build_; }
  bool is_prerelease() const { return !prerelease_.empty(); }

  std::string ToString() const;

  std::strong_ordering operator<=>(const SemVer& other) const;
  bool operator==(const SemVer& other) const { return (*this <=> other) == 0; }

 private:
  uint64_t major_ = 0, minor_ = 0, patch_ = 0;
  std::vector<std::string> prerelease_;
  std::vector<std::string> build_;
};

}  // namespace aloft
