// A trust set: the public keys a verifier trusts and how many of them must have signed (the
// threshold), as in TUF's role keys. Signatures by keys outside the set count for nothing; several
// signatures by one key count once.
#pragma once

#include <string>
#include <vector>

#include "crypto/keys.h"

namespace aloft::crypto {

// One entry of an envelope's "signatures" list.
struct Signature {
  std::string keyid;   // hex SHA-256 of the signer's public key DER
  std::string method;  // "ed25519" | "ecdsa-p256-sha256"
  Bytes sig;
};

// What checking found, signature by signature.
struct SignatureReport {
  std::vector<std::string> valid;      // trusted keys whose signature verifies (each once)
  std::vector<std::string> invalid;    // trusted keys whose signature does not verify
  std::vector<std::string> untrusted;  // keys not in the set
  size_t threshold = 0;
};

class TrustSet {
 public:
  TrustSet() = default;
  TrustSet(std::vector<PublicKey> keys, size_t threshold);

  // Adding a key twice is a no-op.
  void Add(PublicKey key);
  void set_threshold(size_t threshold) { threshold_ = threshold; }
  size_t threshold() const { return threshold_; }
  const std::vector<PublicKey>& keys() const { return keys_; }
  const PublicKey* Find(std::string_view keyid) const;

  // kInvalidArgument if there are no keys, or the threshold is 0 or more than the keys.
  Status Validate() const;

  // Checks `signatures` over `message`. OkStatus with a full report when at least `threshold`
  // distinct trusted keys signed; otherwise kUntrusted whose message says what was found, e.g.
  // "1 of 2 required signatures: valid from 3fa2…; signature by 77ab… is not trusted
  // (trusted keys: 3fa2…, 91c0…)". `report` (optional) is filled either way.
  Status Check(ByteSpan message, const std::vector<Signature>& signatures,
               SignatureReport* report = nullptr) const;

 private:
  std::vector<PublicKey> keys_;
  size_t threshold_ = 1;
};

}  // namespace aloft::crypto
