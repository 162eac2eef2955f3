#include "crypto/key_wrap.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>

#include "core/file.h"
#include "crypto/keys.h"

namespace aloft::crypto {
namespace {

constexpr uint8_t kVersion = 1;
constexpr std::string_view kWrapInfo = "aloft key wrap v1";

std::shared_ptr<EVP_PKEY> Own(EVP_PKEY* p) { return {p, EVP_PKEY_free}; }

struct Bio {
  explicit Bio(BIO* b) : bio(b) {}
  ~Bio() { BIO_free(bio); }
  Bio(const Bio&) = delete;
  Bio& operator=(const Bio&) = delete;
  BIO* bio;
};

std::string Pem(EVP_PKEY* p, bool private_key) {
  Bio b(BIO_new(BIO_s_mem()));
  const int ok = private_key
                     ? PEM_write_bio_PrivateKey(b.bio, p, nullptr, nullptr, 0, nullptr, nullptr)
                     : PEM_write_bio_PUBKEY(b.bio, p);
  if (ok != 1) std::abort();
  char* data = nullptr;
  const long len = BIO_get_mem_data(b.bio, &data);
  return std::string(data, static_cast<size_t>(len));
}

Bytes RawPublic(EVP_PKEY* p) {
  Bytes out(kRecipientPublicSize);
  size_t len = out.size();
  if (EVP_PKEY_get_raw_public_key(p, out.data(), &len) != 1 || len != out.size()) std::abort();
  return out;
}

// X25519(mine, peer): 32 bytes; kMalformed for a peer key that yields the all-zero secret.
Result<Bytes> Agree(EVP_PKEY* mine, ByteSpan peer_raw) {
  auto peer =
      Own(EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, nullptr, peer_raw.data(), peer_raw.size()));
  if (!peer) return Error(Code::kMalformed, "not an X25519 public key");
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new(mine, nullptr);
  Bytes secret(32);
  size_t len = secret.size();
  const bool ok = ctx && EVP_PKEY_derive_init(ctx) == 1 &&
                  EVP_PKEY_derive_set_peer(ctx, peer.get()) == 1 &&
                  EVP_PKEY_derive(ctx, secret.data(), &len) == 1 && len == secret.size();
  EVP_PKEY_CTX_free(ctx);
  if (!ok) {
    ERR_clear_error();
    return Error(Code::kMalformed, "X25519 with this public key fails (a low-order point?)");
  }
  return secret;
}

Bytes Kek(ByteSpan shared, ByteSpan ephemeral, ByteSpan recipient) {
  Bytes salt(ephemeral.begin(), ephemeral.end());
  salt.insert(salt.end(), recipient.begin(), recipient.end());
  return HkdfSha256(shared, salt, kWrapInfo, 32);
}

// AES-256-GCM with a zero nonce and `aad` = the version byte; `seal` or open `in` into `out`.
bool Gcm(bool seal, ByteSpan kek, ByteSpan in, uint8_t* out, uint8_t* tag) {
  EVP_CIPHER_CTX* c = EVP_CIPHER_CTX_new();
  const uint8_t nonce[12] = {};
  const uint8_t aad = kVersion;
  int len = 0;
  bool ok = c && EVP_CipherInit_ex(c, EVP_aes_256_gcm(), nullptr, kek.data(), nonce, seal) == 1 &&
            EVP_CipherUpdate(c, nullptr, &len, &aad, 1) == 1 &&
            (seal || EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, tag) == 1) &&
            EVP_CipherUpdate(c, out, &len, in.data(), static_cast<int>(in.size())) == 1 &&
            EVP_CipherFinal_ex(c, out + len, &len) == 1 &&
            (!seal || EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, tag) == 1);
  EVP_CIPHER_CTX_free(c);
  ERR_clear_error();
  return ok;
}

}  // namespace

Result<RecipientKey> RecipientKey::Generate() {
  EVP_PKEY* p = EVP_PKEY_Q_keygen(nullptr, nullptr, "X25519");
  if (!p) return Error(Code::kInternal, "X25519 key generation failed");
  RecipientKey k;
  k.pkey_ = Own(p);
  return k;
}

Result<RecipientKey> RecipientKey::FromPem(std::string_view pem, std::string_view origin) {
  Bio b(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  EVP_PKEY* p = PEM_read_bio_PrivateKey(b.bio, nullptr, nullptr, nullptr);
  ERR_clear_error();
  if (!p) {
    return Error(Code::kInvalidArgument,
                 std::string(origin) + ": not a PEM private key (-----BEGIN PRIVATE KEY-----)");
  }
  if (EVP_PKEY_get_id(p) != EVP_PKEY_X25519) {
    EVP_PKEY_free(p);
    return Error(Code::kInvalidArgument, std::string(origin) +
                                             ": not an X25519 key (an encryption key: aloft keygen "
                                             "--type x25519)");
  }
  RecipientKey k;
  k.pkey_ = Own(p);
  return k;
}

Result<RecipientKey> RecipientKey::Load(const std::string& path) {
  ALOFT_ASSIGN_OR_RETURN(std::string pem, ReadFile(path, 1 << 16));
  auto k = FromPem(pem, path);
  OPENSSL_cleanse(pem.data(), pem.size());
  return k;
}

Status RecipientKey::Save(const std::string& prefix) const {
  return SavePemPair(Pem(pkey_.get(), true), PublicPem(), prefix);
}

Bytes RecipientKey::PublicRaw() const { return RawPublic(pkey_.get()); }

std::string RecipientKey::PublicPem() const { return Pem(pkey_.get(), false); }

Result<ContentKey> RecipientKey::Unwrap(ByteSpan wrapped) const {
  if (wrapped.size() != kWrappedKeySize || wrapped[0] != kVersion) {
    return Error(Code::kMalformed, "a wrapped content key is " + std::to_string(kWrappedKeySize) +
                                       " bytes starting 01; this is " +
                                       std::to_string(wrapped.size()) + " bytes");
  }
  const ByteSpan ephemeral = wrapped.subspan(1, 32);
  ALOFT_ASSIGN_OR_RETURN(Bytes shared, Agree(pkey_.get(), ephemeral));
  const Bytes kek = Kek(shared, ephemeral, PublicRaw());
  ContentKey key;
  std::array<uint8_t, 16> tag;
  std::memcpy(tag.data(), wrapped.data() + 65, 16);
  if (!Gcm(false, kek, wrapped.subspan(33, 32), key.data(), tag.data())) {
    return Error(Code::kUntrusted, "the content key was not wrapped for this device's key");
  }
  return key;
}

Result<Bytes> ParseRecipientPublic(std::string_view text, std::string_view origin) {
  if (text.find("-----BEGIN PUBLIC KEY-----") != std::string_view::npos) {
    Bio b(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
    EVP_PKEY* p = PEM_read_bio_PUBKEY(b.bio, nullptr, nullptr, nullptr);
    ERR_clear_error();
    if (!p || EVP_PKEY_get_id(p) != EVP_PKEY_X25519) {
      EVP_PKEY_free(p);
      return Error(Code::kInvalidArgument, std::string(origin) + ": not an X25519 public key");
    }
    Bytes raw = RawPublic(p);
    EVP_PKEY_free(p);
    return raw;
  }
  if (text.size() == kRecipientPublicSize) return Bytes(text.begin(), text.end());
  auto raw = Base64Decode(text);
  if (!raw.ok() || raw->size() != kRecipientPublicSize) {
    return Error(Code::kInvalidArgument,
                 std::string(origin) +
                     ": an X25519 public key is 32 bytes in base64 (44 characters) or PEM");
  }
  return std::move(raw).value();
}

Status SaveContentKey(const ContentKey& key, const std::string& path) {
  ALOFT_ASSIGN_OR_RETURN(File f, File::CreateExclusive(path, 0600));
  std::string text = Base64Encode(key) + "\n";
  Status s = f.Write(AsBytes(text));
  if (s.ok()) s = f.Sync();
  OPENSSL_cleanse(text.data(), text.size());
  if (!s.ok()) ::unlink(path.c_str());
  return s;
}

Result<ContentKey> LoadContentKey(const std::string& path) {
  ALOFT_ASSIGN_OR_RETURN(std::string text, ReadFile(path, 1024));
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  auto raw = Base64Decode(text);
  OPENSSL_cleanse(text.data(), text.size());
  ContentKey key{};
  if (!raw.ok() || raw->size() != key.size()) {
    return Error(Code::kInvalidArgument,
                 path +
                     ": not a content key (one line: 32 bytes in base64, as aloft pack "
                     "--encrypt writes it)");
  }
  std::copy(raw->begin(), raw->end(), key.begin());
  OPENSSL_cleanse(raw->data(), raw->size());
  return key;
}

Result<Bytes> WrapContentKey(const ContentKey& key, ByteSpan recipient) {
  if (recipient.size() != kRecipientPublicSize) {
    return Error(Code::kInvalidArgument, "an X25519 public key is 32 bytes");
  }
  ALOFT_ASSIGN_OR_RETURN(RecipientKey ephemeral, RecipientKey::Generate());
  const Bytes eph = ephemeral.PublicRaw();
  ALOFT_ASSIGN_OR_RETURN(Bytes shared, Agree(ephemeral.pkey_.get(), recipient));
  const Bytes kek = Kek(shared, eph, recipient);
  Bytes out(kWrappedKeySize);
  out[0] = kVersion;
  std::memcpy(out.data() + 1, eph.data(), 32);
  if (!Gcm(true, kek, key, out.data() + 33, out.data() + 65)) {
    return Error(Code::kInternal, "AES-256-GCM: wrapping failed");
  }
  return out;
}

}  // namespace aloft::crypto
