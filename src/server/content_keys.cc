#include "server/content_keys.h"

#include <filesystem>

#include "core/encoding.h"
#include "core/hash.h"
#include "pkg/manifest.h"

namespace aloft::server {

using nlohmann::json;

std::optional<std::string> EncryptedKeyId(const std::string& manifest) {
  auto e = pkg::ParseEnvelope(manifest);
  if (!e.ok()) return std::nullopt;
  for (const auto& c : e->manifest.components) {
    if (c.encryption) return c.encryption->key_id;
  }
  return std::nullopt;
}

Result<std::unique_ptr<ContentKeys>> ContentKeys::Open(const std::string& key_file) {
  if (std::filesystem::exists(key_file)) {
    ALOFT_ASSIGN_OR_RETURN(crypto::RecipientKey k, crypto::RecipientKey::Load(key_file));
    return std::unique_ptr<ContentKeys>(new ContentKeys(std::move(k)));
  }
  std::string prefix = key_file;
  if (prefix.ends_with(".key")) prefix.resize(prefix.size() - 4);
  ALOFT_ASSIGN_OR_RETURN(crypto::RecipientKey k, crypto::RecipientKey::Generate());
  if (Status saved = k.Save(prefix); !saved.ok()) {
    return std::move(saved).error().WithContext("content_key_file");
  }
  return std::unique_ptr<ContentKeys>(new ContentKeys(std::move(k)));
}

Status ContentKeys::Accept(Tx& tx, const Release& r, const crypto::ContentKey& key,
                           int64_t now_ms) {
  const std::optional<std::string> id = r.manifest ? EncryptedKeyId(*r.manifest) : std::nullopt;
  if (!id) {
    return Error(Code::kInvalidArgument,
                 "release " + r.Id() + " has no encrypted payload: it needs no content key");
  }
  if (crypto::ContentKeyId(key) != *id) {
    return Error(Code::kInvalidArgument, "this content key is " + crypto::ContentKeyId(key) +
                                             "; release " + r.Id() + " is encrypted with " + *id);
  }
  ALOFT_ASSIGN_OR_RETURN(Bytes sealed, crypto::WrapContentKey(key, own_.PublicRaw()));
  return tx.PutReleaseKey(r.id, {*id, Base64Encode(sealed)}, now_ms);
}

Result<crypto::ContentKey> ContentKeys::Unseal(Tx& tx, const Release& r) {
  ALOFT_ASSIGN_OR_RETURN(auto held, tx.GetReleaseKey(r.id));
  if (!held) {
    return Error(Code::kNotFound, "the server has no content key for release " + r.Id() +
                                      " (aloft server upload --content-key)");
  }
  ALOFT_ASSIGN_OR_RETURN(Bytes sealed, Base64Decode(held->sealed));
  auto key = own_.Unwrap(sealed);
  if (!key.ok()) {
    return Error(Code::kInternal, "release " + r.Id() +
                                      ": its content key does not open with this server's "
                                      "content_key_file (servers sharing a database share it)");
  }
  return *key;
}

Result<std::optional<crypto::ContentKey>> ContentKeys::KeyOf(Tx& tx, const Release& r) {
  if (!r.manifest || !EncryptedKeyId(*r.manifest)) return std::optional<crypto::ContentKey>();
  ALOFT_ASSIGN_OR_RETURN(crypto::ContentKey key, Unseal(tx, r));
  return std::optional<crypto::ContentKey>(key);
}

Result<std::optional<json>> ContentKeys::ForDevice(Tx& tx, const Release& r, int64_t device_id) {
  const std::optional<std::string> id = r.manifest ? EncryptedKeyId(*r.manifest) : std::nullopt;
  if (!id) return std::optional<json>();
  json out = {{"key_id", *id}};
  auto key = Unseal(tx, r);  // the manifest was read above
  if (!key.ok() && key.error().code() != Code::kNotFound) return std::move(key).error();
  ALOFT_ASSIGN_OR_RETURN(auto device, tx.GetDeviceKey(device_id));
  if (!key.ok()) {
    out["error"] = key.error().message();
  } else if (!device) {
    out["error"] = "this device has not enrolled an encryption key (its check-in's encryption_key)";
  } else {
    ALOFT_ASSIGN_OR_RETURN(Bytes pub, Base64Decode(*device));
    ALOFT_ASSIGN_OR_RETURN(Bytes wrapped, crypto::WrapContentKey(*key, pub));
    out["recipient"] = Sha256Hex(pub).substr(0, 16);
    out["wrapped_key"] = Base64Encode(wrapped);
  }
  return std::optional<json>(std::move(out));
}

}  // namespace aloft::server
