// Streaming message digests through OpenSSL (its per-algorithm functions, not EVP: see hash.cc).
//
// SHA-256 is what trust rests on. SHA-1 and MD5 exist only because peer protocols ask for them
// (hawkBit DDI artifact hashes, the MQTT upgrade command); never decide trust with them.
//
//   Hasher h(HashAlgorithm::kSha256);
//   h.Update(chunk1); h.Update(chunk2);
//   std::string hex = h.FinishHex();
//
// Not thread-safe; one Hasher per stream.
#pragma once

#include <memory>
#include <string>

#include "core/encoding.h"

namespace aloft {

enum class HashAlgorithm { kSha256, kSha1, kMd5 };

class Hasher {
 public:
  explicit Hasher(HashAlgorithm algorithm);
  ~Hasher();
  Hasher(Hasher&&) noexcept;
  Hasher& operator=(Hasher&&) noexcept;

  void Update(ByteSpan data);
  // The digest; the Hasher is reset afterwards and may be reused.
  Bytes Finish();
  std::string FinishHex() { return HexEncode(Finish()); }

  // Bytes passed to Update since construction or the last Finish.
  uint64_t bytes_hashed() const { return bytes_hashed_; }

 private:
  struct Ctx;
  HashAlgorithm algorithm_;
  std::unique_ptr<Ctx> ctx_;
  uint64_t bytes_hashed_ = 0;
};

// One-shot helpers.
Bytes Sha256(ByteSpan data);
std::string Sha256Hex(ByteSpan data);
// HMAC-SHA256 (RFC 2104): 32 bytes.
Bytes HmacSha256(ByteSpan key, ByteSpan data);
// Bytes from OpenSSL's CSPRNG; aborts when it has none (nothing would be safe).
void SecureRandom(std::span<uint8_t> out);

}  // namespace aloft
