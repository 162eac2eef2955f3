// A payload's content key wrapped for one device (docs/encryption.md): ECIES over X25519.
//
//   shared  = X25519(ephemeral private, device public)
//   kek     = HKDF-SHA256(ikm = shared, salt = ephemeral public || device public,
//                         info = "aloft key wrap v1"), 32 bytes
//   wrapped = 01 || ephemeral public (32) || AES-256-GCM(kek, nonce = 12 zero bytes,
//                                                      aad = 01, the content key) (32 + 16)
//
// 81 bytes per device (108 in base64). The nonce may be constant: every wrap has a new
// ephemeral key, hence a new kek. Only the holder of the device's private key recovers the
// content key; a changed byte anywhere fails the tag.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "core/encoding.h"
#include "core/error.h"
#include "crypto/aead_stream.h"

typedef struct evp_pkey_st EVP_PKEY;

namespace aloft::crypto {

constexpr size_t kWrappedKeySize = 81;
constexpr size_t kRecipientPublicSize = 32;

// A device's encryption key pair: made on the device, its private half never leaves it; the
// public half (32 bytes, or SubjectPublicKeyInfo PEM) is enrolled with the server.
class RecipientKey {
 public:
  static Result<RecipientKey> Generate();
  static Result<RecipientKey> FromPem(std::string_view pem, std::string_view origin);
  static Result<RecipientKey> Load(const std::string& path);
  // Writes "<prefix>.key" (0600, never overwritten) and "<prefix>.pub".
  Status Save(const std::string& prefix) const;

  Bytes PublicRaw() const;  // 32 bytes
  std::string PublicPem() const;
  // kUntrusted when `wrapped` was not made for this key (or was changed); kMalformed when it is
  // not a wrapped key at all.
  Result<ContentKey> Unwrap(ByteSpan wrapped) const;

 private:
  friend Result<Bytes> WrapContentKey(const ContentKey& key, ByteSpan recipient);
  std::shared_ptr<EVP_PKEY> pkey_;
};

// A recipient's public key: 32 raw bytes, their base64, or an X25519 PEM public key.
Result<Bytes> ParseRecipientPublic(std::string_view text, std::string_view origin);

// A content key file: one line, the key in base64; made 0600 and never overwritten.
Status SaveContentKey(const ContentKey& key, const std::string& path);
Result<ContentKey> LoadContentKey(const std::string& path);

// `key` wrapped for the device whose public key is `recipient` (32 bytes).
Result<Bytes> WrapContentKey(const ContentKey& key, ByteSpan recipient);

}  // namespace aloft::crypto
