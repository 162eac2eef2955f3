#include "tuf/root_chain.h"

#include "core/clock.h"

namespace aloft::tuf {

Result<TrustedRoot> TrustedRoot::FromText(std::string_view text, const std::string& what) {
  ALOFT_ASSIGN_OR_RETURN(json env, ParseEnvelope(text, "root", what));
  ALOFT_ASSIGN_OR_RETURN(Root root, ParseRoot(env, what));
  ALOFT_RETURN_IF_ERROR(tuf::VerifyRole(env, root.keys, root.roles.at("root"), what));
  TrustedRoot out;
  out.root_ = std::move(root);
  out.envelope_ = std::move(env);
  return out;
}

Status TrustedRoot::Update(std::string_view text, const std::string& what) {
  ALOFT_ASSIGN_OR_RETURN(json env, ParseEnvelope(text, "root", what));
  ALOFT_ASSIGN_OR_RETURN(Root next, ParseRoot(env, what));
  // 5.3.5: signed by a threshold of the trusted root's root keys, and of the new root's own.
  Status by_old = tuf::VerifyRole(
      env, root_.keys, root_.roles.at("root"),
      what + " (by the keys of trusted root version " + std::to_string(version()) + ")");
  if (!by_old.ok()) return by_old;
  ALOFT_RETURN_IF_ERROR(
      tuf::VerifyRole(env, next.keys, next.roles.at("root"), what + " (by its own root keys)"));
  // 5.3.6: exactly the next version (no rollback, no skipped root whose keys were never seen).
  if (next.common.version != version() + 1) {
    return Error(Code::kIntegrity, what + ": root version " + std::to_string(next.common.version) +
                                       " where " + std::to_string(version() + 1) +
                                       " was expected (the trusted root is version " +
                                       std::to_string(version()) + ")");
  }
  root_ = std::move(next);
  envelope_ = std::move(env);
  return OkStatus();
}

Status TrustedRoot::CheckNotExpired(int64_t now_ms) const {
  if (root_.common.expires_ms <= now_ms) {
    return Error(Code::kUntrusted, "root version " + std::to_string(version()) + " expired at " +
                                       FormatRfc3339Ms(root_.common.expires_ms) +
                                       ": the repository may be frozen; no update is trusted");
  }
  return OkStatus();
}

Status TrustedRoot::VerifyRole(const json& envelope, const std::string& role,
                               const std::string& what) const {
  auto it = root_.roles.find(role);
  if (it == root_.roles.end()) {
    return Error(Code::kInvalidArgument, "root names no role '" + role + "'");
  }
  return tuf::VerifyRole(envelope, root_.keys, it->second, what);
}

}  // namespace aloft::tuf
