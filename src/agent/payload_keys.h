// The device's side of encrypted payloads (docs/encryption.md): its own X25519 key pair, made in
// its state directory the first time and never sent anywhere; the public half, which the device
// enrols with its check-in; and an offer's content key, unwrapped with the private half, for a
// package whose payloads are encrypted. Shared by aloft-agent and aloft-vehicle.
#pragma once

#include <optional>
#include <string>

#include "core/error.h"
#include "crypto/key_wrap.h"
#include "pkg/manifest.h"

namespace aloft::agent {

class PayloadKeys {
 public:
  explicit PayloadKeys(std::string key_file) : file_(std::move(key_file)) {}

  // The public key to enrol (the check-in's "encryption_key"): 32 bytes in base64. Makes the key
  // pair when the file is missing.
  Result<std::string> PublicKey();
  // The content key of `m`'s encrypted payloads from `wrapped` (base64: the action's
  // encryption.wrapped_key); nullopt when nothing in `m` is encrypted. kUntrusted when no key
  // was wrapped for this device, when it was wrapped for another one, or when it is not the key
  // the package names.
  Result<std::optional<crypto::ContentKey>> ContentKeyFor(const pkg::Manifest& m,
                                                          const std::string& wrapped);

 private:
  Result<const crypto::RecipientKey*> Key();
  std::string file_;
  std::optional<crypto::RecipientKey> key_;
};

}  // namespace aloft::agent
