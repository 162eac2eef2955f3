#include "crypto/aead_stream.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>

#include <algorithm>
#include <cstdlib>

#include "core/hash.h"

namespace aloft::crypto {

namespace {

constexpr std::string_view kPayloadInfo = "aloft payload v1";
constexpr size_t kChunkSealed = kChunkPlain + kChunkTag;

struct CipherCtx {
  CipherCtx() : ctx(EVP_CIPHER_CTX_new()) {
    if (!ctx) std::abort();
  }
  ~CipherCtx() { EVP_CIPHER_CTX_free(ctx); }
  CipherCtx(const CipherCtx&) = delete;
  CipherCtx& operator=(const CipherCtx&) = delete;
  EVP_CIPHER_CTX* ctx;
};

// 00 00 00 || index (big-endian) || last
std::array<uint8_t, 12> Nonce(uint64_t index, bool last) {
  std::array<uint8_t, 12> n{};
  for (int i = 0; i < 8; ++i) n[3 + i] = static_cast<uint8_t>(index >> (56 - 8 * i));
  n[11] = last ? 1 : 0;
  return n;
}

// `c` set up for AES-256-GCM under the payload's key, to seal (`seal`) or open its chunks.
void StartPayload(CipherCtx& c, const ContentKey& key, const PayloadSalt& salt, bool seal) {
  Bytes k = HkdfSha256(key, salt, kPayloadInfo, 32);
  const int ok = EVP_CipherInit_ex(c.ctx, EVP_aes_256_gcm(), nullptr, k.data(), nullptr, seal);
  OPENSSL_cleanse(k.data(), k.size());
  if (ok != 1) std::abort();
}

}  // namespace

Bytes HkdfSha256(ByteSpan ikm, ByteSpan salt, std::string_view info, size_t length) {
  EVP_KDF* kdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
  if (!kdf) std::abort();
  EVP_KDF_CTX* ctx = EVP_KDF_CTX_new(kdf);
  EVP_KDF_free(kdf);
  if (!ctx) std::abort();
  char digest[] = "SHA256";
  // No salt: RFC 5869's default (a hash length of zeros), which OpenSSL applies when the
  // parameter is absent.
  OSSL_PARAM params[5];
  size_t n = 0;
  params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0);
  params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY,
                                                  const_cast<uint8_t*>(ikm.data()), ikm.size());
  if (!salt.empty()) {
    params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
                                                    const_cast<uint8_t*>(salt.data()), salt.size());
  }
  params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO,
                                                  const_cast<char*>(info.data()), info.size());
  params[n] = OSSL_PARAM_construct_end();
  Bytes out(length);
  const int ok = EVP_KDF_derive(ctx, out.data(), out.size(), params);
  EVP_KDF_CTX_free(ctx);
  if (ok != 1) std::abort();  // only for a length beyond 255 * 32
  return out;
}

ContentKey NewContentKey() {
  ContentKey k;
  SecureRandom(k);
  return k;
}

PayloadSalt NewPayloadSalt() {
  PayloadSalt s;
  SecureRandom(s);
  return s;
}

std::string ContentKeyId(const ContentKey& key) {
  return HexEncode(HkdfSha256(key, {}, "aloft content key id", 8));
}

uint64_t SealedSize(uint64_t plain) {
  const uint64_t chunks = plain == 0 ? 1 : (plain + kChunkPlain - 1) / kChunkPlain;
  return plain + chunks * kChunkTag;
}

struct ChunkSealer::Impl {
  CipherCtx c;
  Sink out;
  Bytes plain, sealed;
  uint64_t index = 0;
  bool finished = false;

  Status Seal(bool last) {
    const auto nonce = Nonce(index, last);
    int len = 0;
    sealed.resize(plain.size() + kChunkTag);
    if (EVP_EncryptInit_ex(c.ctx, nullptr, nullptr, nullptr, nonce.data()) != 1 ||
        EVP_EncryptUpdate(c.ctx, sealed.data(), &len, plain.data(),
                          static_cast<int>(plain.size())) != 1 ||
        EVP_EncryptFinal_ex(c.ctx, sealed.data() + len, &len) != 1 ||
        EVP_CIPHER_CTX_ctrl(c.ctx, EVP_CTRL_GCM_GET_TAG, kChunkTag, sealed.data() + plain.size()) !=
            1) {
      return Error(Code::kInternal, "AES-256-GCM: sealing chunk " + std::to_string(index));
    }
    ++index;
    plain.clear();
    return out(sealed);
  }
};

ChunkSealer::ChunkSealer(const ContentKey& key, const PayloadSalt& salt, Sink out)
    : impl_(std::make_unique<Impl>()) {
  impl_->out = std::move(out);
  impl_->plain.reserve(kChunkPlain);
  StartPayload(impl_->c, key, salt, /*seal=*/true);
}

ChunkSealer::~ChunkSealer() = default;

Status ChunkSealer::Write(ByteSpan p) {
  if (impl_->finished) return Error(Code::kInternal, "sealer: write after finish");
  while (!p.empty()) {
    if (impl_->plain.size() == kChunkPlain) ALOFT_RETURN_IF_ERROR(impl_->Seal(false));
    const size_t n = std::min(kChunkPlain - impl_->plain.size(), p.size());
    impl_->plain.insert(impl_->plain.end(), p.begin(), p.begin() + static_cast<ptrdiff_t>(n));
    p = p.subspan(n);
  }
  return OkStatus();
}

Status ChunkSealer::Finish() {
  if (impl_->finished) return Error(Code::kInternal, "sealer: finished twice");
  impl_->finished = true;
  return impl_->Seal(true);
}

struct ChunkOpener::Impl {
  CipherCtx c;
  Sink out;
  Bytes sealed, plain;
  uint64_t index = 0, delivered = 0;
  std::optional<Error> failed;

  Status Open(ByteSpan chunk, bool last) {
    if (chunk.size() < kChunkTag) {
      return Fail(Error(Code::kIntegrity, "encrypted payload: cut short (chunk " +
                                              std::to_string(index) + " has no whole tag)"));
    }
    const size_t n = chunk.size() - kChunkTag;
    const auto nonce = Nonce(index, last);
    plain.resize(std::max<size_t>(n, 1));
    int len = 0;
    if (EVP_DecryptInit_ex(c.ctx, nullptr, nullptr, nullptr, nonce.data()) != 1 ||
        EVP_DecryptUpdate(c.ctx, plain.data(), &len, chunk.data(), static_cast<int>(n)) != 1 ||
        EVP_CIPHER_CTX_ctrl(c.ctx, EVP_CTRL_GCM_SET_TAG, kChunkTag,
                            const_cast<uint8_t*>(chunk.data() + n)) != 1 ||
        EVP_DecryptFinal_ex(c.ctx, plain.data() + len, &len) != 1) {
      return Fail(Error(Code::kIntegrity,
                        "encrypted payload: chunk " + std::to_string(index) +
                            (last ? " (the last)" : "") +
                            " does not verify: tampered, reordered, cut short, or another key"));
    }
    ++index;
    delivered += n;
    if (n == 0) return OkStatus();
    if (Status s = out(ByteSpan(plain.data(), n)); !s.ok()) return Fail(std::move(s).error());
    return OkStatus();
  }
  Status Fail(Error e) {
    failed = e;
    return e;
  }
};

ChunkOpener::ChunkOpener(const ContentKey& key, const PayloadSalt& salt, Sink out)
    : impl_(std::make_unique<Impl>()) {
  impl_->out = std::move(out);
  impl_->sealed.reserve(kChunkSealed);
  StartPayload(impl_->c, key, salt, /*seal=*/false);
}

ChunkOpener::~ChunkOpener() = default;

Status ChunkOpener::Write(ByteSpan s) {
  Impl& m = *impl_;
  if (m.failed) return *m.failed;
  while (!s.empty()) {
    if (m.sealed.empty() && s.size() > kChunkSealed) {
      // A whole chunk with more after it (so not the last), straight from the input.
      ALOFT_RETURN_IF_ERROR(m.Open(s.first(kChunkSealed), false));
      s = s.subspan(kChunkSealed);
      continue;
    }
    if (m.sealed.size() == kChunkSealed) {  // more follows: the buffered chunk is not the last
      ALOFT_RETURN_IF_ERROR(m.Open(m.sealed, false));
      m.sealed.clear();
      continue;
    }
    const size_t n = std::min(kChunkSealed - m.sealed.size(), s.size());
    m.sealed.insert(m.sealed.end(), s.begin(), s.begin() + static_cast<ptrdiff_t>(n));
    s = s.subspan(n);
  }
  return OkStatus();
}

Status ChunkOpener::Finish() {
  Impl& m = *impl_;
  if (m.failed) return *m.failed;
  Status s = m.Open(m.sealed, true);
  m.sealed.clear();
  if (s.ok()) m.failed = Error(Code::kInternal, "opener: finished");  // nothing more
  return s;
}

uint64_t ChunkOpener::plain_bytes() const { return impl_->delivered; }

}  // namespace aloft::crypto
