#include "core/hash.h"

// OpenSSL 3 deprecates the per-algorithm digest functions in favour of EVP, but EVP's first
// digest fetch loads the provider machinery: about 2 MiB of resident memory that a device applying
// a patch in a few MiB cannot spare. These functions run the same (assembly) implementations.
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/hmac.h>
#include <openssl/md5.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <cstdlib>
#include <variant>

namespace aloft {

struct Hasher::Ctx {
  std::variant<SHA256_CTX, SHA_CTX, MD5_CTX> state;
  void Reset(HashAlgorithm algorithm);
};

namespace {

// A failure here means OpenSSL lacks a core digest: nothing can work, so stop.
void Check(int ok) {
  if (ok != 1) std::abort();
}

}  // namespace

void Hasher::Ctx::Reset(HashAlgorithm algorithm) {
  switch (algorithm) {
    case HashAlgorithm::kSha1:
      Check(SHA1_Init(&state.emplace<SHA_CTX>()));
      return;
    case HashAlgorithm::kMd5:
      Check(MD5_Init(&state.emplace<MD5_CTX>()));
      return;
    case HashAlgorithm::kSha256:
      break;
  }
  Check(SHA256_Init(&state.emplace<SHA256_CTX>()));
}

Hasher::Hasher(HashAlgorithm algorithm) : algorithm_(algorithm), ctx_(std::make_unique<Ctx>()) {
  ctx_->Reset(algorithm_);
}

Hasher::~Hasher() = default;
Hasher::Hasher(Hasher&&) noexcept = default;
Hasher& Hasher::operator=(Hasher&&) noexcept = default;

void Hasher::Update(ByteSpan data) {
  std::visit(
      [&](auto& s) {
        using S = std::decay_t<decltype(s)>;
        if constexpr (std::is_same_v<S, SHA256_CTX>) {
          Check(SHA256_Update(&s, data.data(), data.size()));
        } else if constexpr (std::is_same_v<S, SHA_CTX>) {
          Check(SHA1_Update(&s, data.data(), data.size()));
        } else {
          Check(MD5_Update(&s, data.data(), data.size()));
        }
      },
      ctx_->state);
  bytes_hashed_ += data.size();
}

Bytes Hasher::Finish() {
  Bytes out;
  std::visit(
      [&](auto& s) {
        using S = std::decay_t<decltype(s)>;
        if constexpr (std::is_same_v<S, SHA256_CTX>) {
          out.resize(SHA256_DIGEST_LENGTH);
          Check(SHA256_Final(out.data(), &s));
        } else if constexpr (std::is_same_v<S, SHA_CTX>) {
          out.resize(SHA_DIGEST_LENGTH);
          Check(SHA1_Final(out.data(), &s));
        } else {
          out.resize(MD5_DIGEST_LENGTH);
          Check(MD5_Final(out.data(), &s));
        }
      },
      ctx_->state);
  ctx_->Reset(algorithm_);
  bytes_hashed_ = 0;
  return out;
}

Bytes Sha256(ByteSpan data) {
  Hasher h(HashAlgorithm::kSha256);
  h.Update(data);
  return h.Finish();
}

std::string Sha256Hex(ByteSpan data) { return HexEncode(Sha256(data)); }

Bytes HmacSha256(ByteSpan key, ByteSpan data) {
  Bytes out(32);
  unsigned len = 0;
  if (!HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), data.data(), data.size(),
            out.data(), &len)) {
    std::abort();
  }
  out.resize(len);
  return out;
}

void SecureRandom(std::span<uint8_t> out) {
  if (!out.empty() && RAND_bytes(out.data(), static_cast<int>(out.size())) != 1) std::abort();
}

}  // namespace aloft
