#include "core/hash.h"

#include <openssl/evp.h>

#include <cstdlib>

namespace aloft {

struct Hasher::Ctx {
  EVP_MD_CTX* md = nullptr;
  ~Ctx() { EVP_MD_CTX_free(md); }
};

namespace {

const EVP_MD* Md(HashAlgorithm algorithm) {
  switch (algorithm) {
    case HashAlgorithm::kSha256:
      return EVP_sha256();
    case HashAlgorithm::kSha1:
      return EVP_sha1();
    case HashAlgorithm::kMd5:
      return EVP_md5();
  }
  return EVP_sha256();
}

// An EVP failure here means the OpenSSL build lacks a core digest: nothing can work, so stop.
void Check(int ok) {
  if (ok != 1) std::abort();
}

}  // namespace

Hasher::Hasher(HashAlgorithm algorithm) : algorithm_(algorithm), ctx_(std::make_unique<Ctx>()) {
  ctx_->md = EVP_MD_CTX_new();
  if (ctx_->md == nullptr) std::abort();
  Check(EVP_DigestInit_ex(ctx_->md, Md(algorithm_), nullptr));
}

Hasher::~Hasher() = default;
Hasher::Hasher(Hasher&&) noexcept = default;
Hasher& Hasher::operator=(Hasher&&) noexcept = default;

void Hasher::Update(ByteSpan data) {
  Check(EVP_DigestUpdate(ctx_->md, data.data(), data.size()));
  bytes_hashed_ += data.size();
}

Bytes Hasher::Finish() {
  Bytes out(EVP_MAX_MD_SIZE);
  unsigned int len = 0;
  Check(EVP_DigestFinal_ex(ctx_->md, out.data(), &len));
  out.resize(len);
  Check(EVP_DigestInit_ex(ctx_->md, Md(algorithm_), nullptr));
  bytes_hashed_ = 0;
  return out;
}

Bytes Sha256(ByteSpan data) {
  Hasher h(HashAlgorithm::kSha256);
  h.Update(data);
  return h.Finish();
}

std::string Sha256Hex(ByteSpan data) { return HexEncode(Sha256(data)); }

}  // namespace aloft
