#include "agent/payload_keys.h"

#include <filesystem>

#include "core/encoding.h"

namespace aloft::agent {

Result<const crypto::RecipientKey*> PayloadKeys::Key() {
  if (key_) return &*key_;
  std::string prefix = file_;
  if (prefix.ends_with(".key")) prefix.resize(prefix.size() - 4);
  if (std::filesystem::exists(file_)) {
    ALOFT_ASSIGN_OR_RETURN(key_, crypto::RecipientKey::Load(file_));
  } else {
    ALOFT_ASSIGN_OR_RETURN(crypto::RecipientKey made, crypto::RecipientKey::Generate());
    ALOFT_RETURN_IF_ERROR(made.Save(prefix));
    key_ = std::move(made);
  }
  return &*key_;
}

Result<std::string> PayloadKeys::PublicKey() {
  ALOFT_ASSIGN_OR_RETURN(const crypto::RecipientKey* k, Key());
  return Base64Encode(k->PublicRaw());
}

Result<std::optional<crypto::ContentKey>> PayloadKeys::ContentKeyFor(const pkg::Manifest& m,
                                                                     const std::string& wrapped) {
  const pkg::Component* encrypted = nullptr;
  for (const auto& c : m.components) {
    if (!c.encryption) continue;
    if (encrypted && c.encryption->key_id != encrypted->encryption->key_id) {
      return Error(Code::kUnsupported, "components '" + encrypted->name + "' and '" + c.name +
                                           "' are encrypted with different content keys");
    }
    encrypted = &c;
  }
  if (!encrypted) return std::optional<crypto::ContentKey>();
  const std::string what = "component '" + encrypted->name + "' is encrypted (content key " +
                           encrypted->encryption->key_id + ")";
  if (wrapped.empty()) {
    return Error(Code::kUntrusted, what +
                                       " and the server sent no key wrapped for this device "
                                       "(is its encryption key enrolled?)");
  }
  auto raw = Base64Decode(wrapped);
  if (!raw.ok()) return Error(Code::kUntrusted, what + ": the wrapped key is not base64");
  ALOFT_ASSIGN_OR_RETURN(const crypto::RecipientKey* k, Key());
  auto key = k->Unwrap(*raw);
  if (!key.ok()) return Error(Code::kUntrusted, what + ": " + key.error().message());
  if (crypto::ContentKeyId(*key) != encrypted->encryption->key_id) {
    return Error(Code::kUntrusted,
                 what + ", but the key wrapped for this device is " + crypto::ContentKeyId(*key));
  }
  return std::optional<crypto::ContentKey>(*key);
}

}  // namespace aloft::agent
