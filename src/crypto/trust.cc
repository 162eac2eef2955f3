#include "crypto/trust.h"

#include <algorithm>

namespace aloft::crypto {
namespace {

std::string JoinShort(const std::vector<std::string>& ids) {
  std::string out;
  for (const auto& id : ids) out += (out.empty() ? "" : ", ") + ShortKeyId(id);
  return out;
}

bool Contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

}  // namespace

TrustSet::TrustSet(std::vector<PublicKey> keys, size_t threshold) : threshold_(threshold) {
  for (auto& k : keys) Add(std::move(k));
}

void TrustSet::Add(PublicKey key) {
  if (Find(key.keyid()) == nullptr) keys_.push_back(std::move(key));
}

const PublicKey* TrustSet::Find(std::string_view keyid) const {
  for (const auto& k : keys_) {
    if (k.keyid() == keyid) return &k;
  }
  return nullptr;
}

Status TrustSet::Validate() const {
  if (keys_.empty())
    return Error(Code::kInvalidArgument, "no trusted keys given (--trust KEY.pub)");
  if (threshold_ == 0 || threshold_ > keys_.size()) {
    return Error(Code::kInvalidArgument, "threshold " + std::to_string(threshold_) +
                                             " must be between 1 and the " +
                                             std::to_string(keys_.size()) + " trusted key(s)");
  }
  return OkStatus();
}

Status TrustSet::Check(ByteSpan message, const std::vector<Signature>& signatures,
                       SignatureReport* report) const {
  ALOFT_RETURN_IF_ERROR(Validate());
  SignatureReport r;
  r.threshold = threshold_;
  for (const Signature& s : signatures) {
    const PublicKey* key = Find(s.keyid);
    if (key == nullptr) {
      if (!Contains(r.untrusted, s.keyid)) r.untrusted.push_back(s.keyid);
      continue;
    }
    if (Contains(r.valid, s.keyid)) continue;
    bool ok = s.method == MethodName(key->type()) && key->Verify(message, s.sig).ok();
    if (ok) {
      r.valid.push_back(s.keyid);
      std::erase(r.invalid, s.keyid);
    } else if (!Contains(r.invalid, s.keyid)) {
      r.invalid.push_back(s.keyid);
    }
  }
  if (report != nullptr) *report = r;
  if (r.valid.size() >= threshold_) return OkStatus();

  std::string msg = std::to_string(r.valid.size()) + " of " + std::to_string(threshold_) +
                    " required signature" + (threshold_ == 1 ? "" : "s");
  if (!r.valid.empty()) msg += "; valid from " + JoinShort(r.valid);
  if (!r.invalid.empty()) {
    msg += "; signature by " + JoinShort(r.invalid) + " does not verify (content changed?)";
  }
  if (!r.untrusted.empty()) {
    msg += "; signature by " + JoinShort(r.untrusted) + " is not trusted";
  }
  if (signatures.empty()) msg += "; the package is not signed";
  std::vector<std::string> trusted;
  for (const auto& k : keys_) trusted.push_back(k.keyid());
  msg += " (trusted keys: " + JoinShort(trusted) + ")";
  return Error(Code::kUntrusted, msg);
}

}  // namespace aloft::crypto
