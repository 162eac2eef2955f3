#include "core/semver.h"

#include <algorithm>
#include <charconv>

namespace aloft {
namespace {

bool IsDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool IsIdentifierChar(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-';
}

Result<uint64_t> ParseNumber(std::string_view text, std::string_view part, std::string_view what) {
  if (!IsDigits(part)) {
    return Error(Code::kMalformed, std::string(text) + ": " + std::string(what) + " '" +
                                       std::string(part) + "' is not a number");
  }
  if (part.size() > 1 && part[0] == '0') {
    return Error(Code::kMalformed, std::string(text) + ": " + std::string(what) + " '" +
                                       std::string(part) + "' has a leading zero");
  }
  uint64_t v = 0;
  auto res = std::from_chars(part.data(), part.data() + part.size(), v);
  if (res.ec != std::errc()) {
    return Error(Code::kMalformed, std::string(text) + ": " + std::string(what) + " '" +
                                       std::string(part) + "' is too large");
  }
  return v;
}

Result<std::vector<std::string>> ParseIdentifiers(std::string_view text, std::string_view part,
                                                  bool numeric_rules) {
  std::vector<std::string> ids;
  size_t start = 0;
  while (true) {
    size_t dot = part.find('.', start);
    std::string_view id = part.substr(start, dot == std::string_view::npos ? dot : dot - start);
    if (id.empty()) {
      return Error(Code::kMalformed, std::string(text) + ": empty identifier");
    }
    if (!std::all_of(id.begin(), id.end(), IsIdentifierChar)) {
      return Error(Code::kMalformed, std::string(text) + ": identifier '" + std::string(id) +
                                         "' may only hold [0-9A-Za-z-]");
    }
    if (numeric_rules && IsDigits(id) && id.size() > 1 && id[0] == '0') {
      return Error(Code::kMalformed, std::string(text) + ": numeric identifier '" +
                                         std::string(id) + "' has a leading zero");
    }
    ids.emplace_back(id);
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return ids;
}

std::strong_ordering CompareIdentifier(const std::string& a, const std::string& b) {
  bool an = IsDigits(a), bn = IsDigits(b);
  if (an && bn) {
    // No leading zeros, so a longer number is larger.
    if (a.size() != b.size()) return a.size() <=> b.size();
    return a.compare(b) <=> 0;
  }
  if (an != bn) return an ? std::strong_ordering::less : std::strong_ordering::greater;
  return a.compare(b) <=> 0;
}

}  // namespace

Result<SemVer> SemVer::Parse(std::string_view text) {
  if (text.empty()) return Error(Code::kMalformed, "empty version");
  SemVer v;
  std::string_view rest = text;
  if (size_t plus = rest.find('+'); plus != std::string_view::npos) {
    ALOFT_ASSIGN_OR_RETURN(v.build_, ParseIdentifiers(text, rest.substr(plus + 1), false));
    rest = rest.substr(0, plus);
  }
  if (size_t dash = rest.find('-'); dash != std::string_view::npos) {
    ALOFT_ASSIGN_OR_RETURN(v.prerelease_, ParseIdentifiers(text, rest.substr(dash + 1), true));
    rest = rest.substr(0, dash);
  }
  size_t d1 = rest.find('.');
  size_t d2 = d1 == std::string_view::npos ? d1 : rest.find('.', d1 + 1);
  if (d1 == std::string_view::npos || d2 == std::string_view::npos ||
      rest.find('.', d2 + 1) != std::string_view::npos) {
    return Error(Code::kMalformed, std::string(text) + ": expected MAJOR.MINOR.PATCH, e.g. 1.2.0");
  }
  ALOFT_ASSIGN_OR_RETURN(v.major_, ParseNumber(text, rest.substr(0, d1), "major"));
  ALOFT_ASSIGN_OR_RETURN(v.minor_, ParseNumber(text, rest.substr(d1 + 1, d2 - d1 - 1), "minor"));
  ALOFT_ASSIGN_OR_RETURN(v.patch_, ParseNumber(text, rest.substr(d2 + 1), "patch"));
  return v;
}

std::string SemVer::ToString() const {
  std::string s =
      std::to_string(major_) + "." + std::to_string(minor_) + "." + std::to_string(patch_);
  for (size_t i = 0; i < prerelease_.size(); ++i) s += (i == 0 ? "-" : ".") + prerelease_[i];
  for (size_t i = 0; i < build_.size(); ++i) s += (i == 0 ? "+" : ".") + build_[i];
  return s;
}

std::strong_ordering SemVer::operator<=>(const SemVer& other) const {
  if (auto c = major_ <=> other.major_; c != 0) return c;
  if (auto c = minor_ <=> other.minor_; c != 0) return c;
  if (auto c = patch_ <=> other.patch_; c != 0) return c;
  // A version without pre-release identifiers has higher precedence than one with them.
  if (prerelease_.empty() || other.prerelease_.empty()) {
    return other.prerelease_.size() == 0
               ? (prerelease_.empty() ? std::strong_ordering::equal : std::strong_ordering::less)
               : std::strong_ordering::greater;
  }
  size_t n = std::min(prerelease_.size(), other.prerelease_.size());
  for (size_t i = 0; i < n; ++i) {
    if (auto c = CompareIdentifier(prerelease_[i], other.prerelease_[i]); c != 0) return c;
  }
  return prerelease_.size() <=> other.prerelease_.size();
}

}  // namespace aloft
