// Encrypted releases at the server (docs/encryption.md): the server's own X25519 key, with which
// content keys are sealed at rest (a database dump alone opens nothing); a release's content key
// accepted only when it is the key the package names; and the key wrapped for one device, which
// goes with that device's action.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "core/error.h"
#include "crypto/key_wrap.h"
#include "server/store.h"

namespace aloft::server {

class ContentKeys {
 public:
  // The server's key from `key_file`, made (0600) when missing.
  static Result<std::unique_ptr<ContentKeys>> Open(const std::string& key_file);

  // Keeps `key` (sealed) for release `r`: kInvalidArgument when `r` has no encrypted payload or
  // names another key.
  Status Accept(Tx& tx, const Release& r, const crypto::ContentKey& key, int64_t now_ms);
  // The "encryption" member of an action of release `r` for device `device_id`: nullopt when `r`
  // is not encrypted; else {"key_id", "recipient", "wrapped_key"} (base64, for the device's
  // enrolled key, whose SHA-256's first 8 bytes in hex are the recipient), or
  // {"key_id", "error"} saying why there is none.
  Result<std::optional<nlohmann::json>> ForDevice(Tx& tx, const Release& r, int64_t device_id);
  // The content key of release `r`, opened (the delta maker needs it): nullopt when `r` is not
  // encrypted; kNotFound when the server was not given it.
  Result<std::optional<crypto::ContentKey>> KeyOf(Tx& tx, const Release& r);

 private:
  explicit ContentKeys(crypto::RecipientKey own) : own_(std::move(own)) {}
  // The sealed key of encrypted release `r`, opened (kNotFound when none was given).
  Result<crypto::ContentKey> Unseal(Tx& tx, const Release& r);
  crypto::RecipientKey own_;
};

// The content key id every encrypted payload of `manifest` (a package's envelope, JSON text)
// names; nullopt when none is encrypted.
std::optional<std::string> EncryptedKeyId(const std::string& manifest);

}  // namespace aloft::server
