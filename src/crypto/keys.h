// Signing keys through OpenSSL 3: Ed25519 (the default, sign and verify) and ECDSA P-256 with
// SHA-256 (sign and verify; for HSMs and PKIs that only hold NIST curves).
//
// A key's id is the lower-case hex SHA-256 of its public key's DER SubjectPublicKeyInfo, so anyone
// with `openssl pkey -pubin -outform DER | sha256sum` gets the same id.
//
// Files: private keys are PKCS#8 PEM ("-----BEGIN PRIVATE KEY-----"), created 0600; public keys are
// SubjectPublicKeyInfo PEM ("-----BEGIN PUBLIC KEY-----"). Both interoperate with `openssl pkey`.
//
// Signatures: Ed25519 is the 64-byte RFC 8032 signature (PureEdDSA over the message). ECDSA is the
// DER-encoded (r, s) over SHA-256 of the message.
//
// Keys are immutable after creation and safe to share between threads.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "core/encoding.h"
#include "core/error.h"

typedef struct evp_pkey_st EVP_PKEY;

namespace aloft::crypto {

enum class KeyType { kEd25519, kEcdsaP256 };

// The name used in signature entries: "ed25519" or "ecdsa-p256-sha256".
std::string_view MethodName(KeyType type);
Result<KeyType> ParseKeyType(std::string_view name);  // "ed25519" | "ecdsa-p256"

class PublicKey {
 public:
  // `origin` names the input in errors (a path, "--trust", ...).
  static Result<PublicKey> FromPem(std::string_view pem, std::string_view origin);
  static Result<PublicKey> Load(const std::string& path);
  static Result<PublicKey> FromRawEd25519(ByteSpan raw);
  // A DER SubjectPublicKeyInfo (what a certificate holds).
  static Result<PublicKey> FromDer(ByteSpan der, std::string_view origin);

  KeyType type() const { return type_; }
  const std::string& keyid() const { return keyid_; }
  std::string ToPem() const;
  Bytes Der() const;

  // OkStatus if `signature` is this key's signature of `message`; kUntrusted otherwise.
  Status Verify(ByteSpan message, ByteSpan signature) const;
  // The OpenSSL key, for code in this library that puts it in other structures (certificates).
  EVP_PKEY* native() const { return pkey_.get(); }

 private:
  friend class PrivateKey;
  static Result<PublicKey> Wrap(EVP_PKEY* pkey, std::string_view origin);
  std::shared_ptr<EVP_PKEY> pkey_;
  KeyType type_ = KeyType::kEd25519;
  std::string keyid_;
};

class PrivateKey {
 public:
  static Result<PrivateKey> Generate(KeyType type);
  static Result<PrivateKey> FromPem(std::string_view pem, std::string_view origin);
  static Result<PrivateKey> Load(const std::string& path);
  // RFC 8032 32-byte seed, for test vectors.
  static Result<PrivateKey> FromRawEd25519(ByteSpan seed);

  KeyType type() const { return public_key_.type(); }
  const PublicKey& public_key() const { return public_key_; }
  const std::string& keyid() const { return public_key_.keyid(); }
  std::string ToPem() const;

  Result<Bytes> Sign(ByteSpan message) const;
  // The OpenSSL key, for code in this library that signs other structures (certificates).
  EVP_PKEY* native() const { return pkey_.get(); }

 private:
  static Result<PrivateKey> Wrap(EVP_PKEY* pkey, std::string_view origin);
  std::shared_ptr<EVP_PKEY> pkey_;
  PublicKey public_key_;
};

// Writes "<prefix>.key" (0600, refuses to overwrite) and "<prefix>.pub" (0644). On failure
// neither file is left behind.
Status SaveKeyPair(const PrivateKey& key, const std::string& prefix);
// The same for PEM text of any key pair (the private text is wiped once written).
Status SavePemPair(std::string private_pem, const std::string& public_pem,
                   const std::string& prefix);

// "3fa2c0d9e1b47a55…" (the first 16 hex digits): for messages, never for matching.
std::string ShortKeyId(std::string_view keyid);

}  // namespace aloft::crypto
