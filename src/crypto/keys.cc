#include "crypto/keys.h"

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "core/file.h"
#include "core/hash.h"

namespace aloft::crypto {
namespace {

struct BioDeleter {
  void operator()(BIO* b) const { BIO_free(b); }
};
using BioPtr = std::unique_ptr<BIO, BioDeleter>;
struct CtxDeleter {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, CtxDeleter>;

std::shared_ptr<EVP_PKEY> Own(EVP_PKEY* pkey) { return {pkey, EVP_PKEY_free}; }

// The newest OpenSSL error as text (and the queue cleared), for messages.
std::string OpenSslError() {
  unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(code, buf, sizeof buf);
  return buf;
}

Result<KeyType> TypeOf(EVP_PKEY* pkey, std::string_view origin) {
  if (EVP_PKEY_get_id(pkey) == EVP_PKEY_ED25519) return KeyType::kEd25519;
  if (EVP_PKEY_get_id(pkey) == EVP_PKEY_EC) {
    char group[64] = {0};
    size_t len = 0;
    if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                       &len) == 1 &&
        std::strcmp(group, "prime256v1") == 0) {
      return KeyType::kEcdsaP256;
    }
    return Error(Code::kUnsupported, std::string(origin) + ": EC key on curve '" + group +
                                         "'; only P-256 is supported");
  }
  return Error(Code::kUnsupported, std::string(origin) + ": key type '" +
                                       EVP_PKEY_get0_type_name(pkey) +
                                       "' is not supported (use ed25519 or ecdsa-p256)");
}

const EVP_MD* DigestFor(KeyType type) { return type == KeyType::kEd25519 ? nullptr : EVP_sha256(); }

std::string PemOf(EVP_PKEY* pkey, bool private_key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  int ok = private_key
               ? PEM_write_bio_PrivateKey(bio.get(), pkey, nullptr, nullptr, 0, nullptr, nullptr)
               : PEM_write_bio_PUBKEY(bio.get(), pkey);
  if (ok != 1) return "";
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, size_t(len));
}

}  // namespace

std::string_view MethodName(KeyType type) {
  return type == KeyType::kEd25519 ? "ed25519" : "ecdsa-p256-sha256";
}

Result<KeyType> ParseKeyType(std::string_view name) {
  if (name == "ed25519") return KeyType::kEd25519;
  if (name == "ecdsa-p256" || name == "ecdsa-p256-sha256") return KeyType::kEcdsaP256;
  return Error(Code::kInvalidArgument,
               "unknown key type '" + std::string(name) + "' (use ed25519 or ecdsa-p256)");
}

std::string ShortKeyId(std::string_view keyid) {
  return keyid.size() > 16 ? std::string(keyid.substr(0, 16)) + "\u2026" : std::string(keyid);
}

Result<PublicKey> PublicKey::Wrap(EVP_PKEY* raw, std::string_view origin) {
  auto pkey = Own(raw);
  PublicKey key;
  ALOFT_ASSIGN_OR_RETURN(key.type_, TypeOf(raw, origin));
  key.pkey_ = std::move(pkey);
  key.keyid_ = Sha256Hex(key.Der());
  return key;
}

Result<PublicKey> PublicKey::FromPem(std::string_view pem, std::string_view origin) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), int(pem.size())));
  EVP_PKEY* pkey = PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr);
  if (pkey == nullptr) {
    ERR_clear_error();
    bool is_private = pem.find("PRIVATE KEY") != std::string_view::npos;
    return Error(
        Code::kInvalidArgument,
        std::string(origin) + (is_private ? ": is a private key; give the public key (.pub)"
                                          : ": not a PEM public key (-----BEGIN PUBLIC KEY-----)"));
  }
  return Wrap(pkey, origin);
}

Result<PublicKey> PublicKey::Load(const std::string& path) {
  ALOFT_ASSIGN_OR_RETURN(std::string pem, ReadFile(path, 1 << 20));
  return FromPem(pem, path);
}

Result<PublicKey> PublicKey::FromRawEd25519(ByteSpan raw) {
  EVP_PKEY* pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, raw.data(), raw.size());
  if (pkey == nullptr) {
    return Error(Code::kInvalidArgument, "not a raw Ed25519 public key: " + OpenSslError());
  }
  return Wrap(pkey, "raw key");
}

Result<PublicKey> PublicKey::FromDer(ByteSpan der, std::string_view origin) {
  const unsigned char* p = der.data();
  EVP_PKEY* pkey = d2i_PUBKEY(nullptr, &p, static_cast<long>(der.size()));
  if (pkey == nullptr || p != der.data() + der.size()) {
    EVP_PKEY_free(pkey);
    ERR_clear_error();
    return Error(Code::kInvalidArgument, std::string(origin) + ": not a DER SubjectPublicKeyInfo");
  }
  return Wrap(pkey, origin);
}

std::string PublicKey::ToPem() const { return PemOf(pkey_.get(), false); }

Bytes PublicKey::Der() const {
  int len = i2d_PUBKEY(pkey_.get(), nullptr);
  Bytes der(len > 0 ? size_t(len) : 0);
  unsigned char* p = der.data();
  i2d_PUBKEY(pkey_.get(), &p);
  return der;
}

Status PublicKey::Verify(ByteSpan message, ByteSpan signature) const {
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (EVP_DigestVerifyInit(ctx.get(), nullptr, DigestFor(type_), nullptr, pkey_.get()) != 1) {
    return Error(Code::kInternal, "cannot start verification: " + OpenSslError());
  }
  int rc = EVP_DigestVerify(ctx.get(), signature.data(), signature.size(), message.data(),
                            message.size());
  ERR_clear_error();
  if (rc != 1) {
    return Error(Code::kUntrusted, "signature by key " + ShortKeyId(keyid_) + " does not verify");
  }
  return OkStatus();
}

Result<PrivateKey> PrivateKey::Wrap(EVP_PKEY* raw, std::string_view origin) {
  auto pkey = Own(raw);
  PrivateKey key;
  // The public half, through its DER, becomes an independent PublicKey.
  unsigned char* der = nullptr;
  int len = i2d_PUBKEY(raw, &der);
  if (len <= 0) return Error(Code::kInternal, "cannot derive the public key: " + OpenSslError());
  const unsigned char* p = der;
  EVP_PKEY* pub = d2i_PUBKEY(nullptr, &p, len);
  OPENSSL_free(der);
  if (pub == nullptr)
    return Error(Code::kInternal, "cannot derive the public key: " + OpenSslError());
  ALOFT_ASSIGN_OR_RETURN(key.public_key_, PublicKey::Wrap(pub, origin));
  key.pkey_ = std::move(pkey);
  return key;
}

Result<PrivateKey> PrivateKey::Generate(KeyType type) {
  EVP_PKEY* pkey = type == KeyType::kEd25519 ? EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519")
                                             : EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  if (pkey == nullptr) return Error(Code::kInternal, "key generation failed: " + OpenSslError());
  return Wrap(pkey, "new key");
}

Result<PrivateKey> PrivateKey::FromPem(std::string_view pem, std::string_view origin) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), int(pem.size())));
  EVP_PKEY* pkey = PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr);
  if (pkey == nullptr) {
    ERR_clear_error();
    bool is_public = pem.find("PUBLIC KEY") != std::string_view::npos;
    return Error(Code::kInvalidArgument,
                 std::string(origin) +
                     (is_public ? ": is a public key; signing needs the private key (.key)"
                                : ": not a PEM private key (-----BEGIN PRIVATE KEY-----)"));
  }
  return Wrap(pkey, origin);
}

Result<PrivateKey> PrivateKey::Load(const std::string& path) {
  ALOFT_ASSIGN_OR_RETURN(std::string pem, ReadFile(path, 1 << 20));
  auto key = FromPem(pem, path);
  OPENSSL_cleanse(pem.data(), pem.size());
  return key;
}

Result<PrivateKey> PrivateKey::FromRawEd25519(ByteSpan seed) {
  EVP_PKEY* pkey =
      EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, seed.data(), seed.size());
  if (pkey == nullptr) {
    return Error(Code::kInvalidArgument, "not a raw Ed25519 seed: " + OpenSslError());
  }
  return Wrap(pkey, "raw key");
}

std::string PrivateKey::ToPem() const { return PemOf(pkey_.get(), true); }

Result<Bytes> PrivateKey::Sign(ByteSpan message) const {
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (EVP_DigestSignInit(ctx.get(), nullptr, DigestFor(type()), nullptr, pkey_.get()) != 1) {
    return Error(Code::kInternal, "cannot start signing: " + OpenSslError());
  }
  size_t len = 0;
  if (EVP_DigestSign(ctx.get(), nullptr, &len, message.data(), message.size()) != 1) {
    return Error(Code::kInternal, "signing failed: " + OpenSslError());
  }
  Bytes sig(len);
  if (EVP_DigestSign(ctx.get(), sig.data(), &len, message.data(), message.size()) != 1) {
    return Error(Code::kInternal, "signing failed: " + OpenSslError());
  }
  sig.resize(len);
  return sig;
}

Status SaveKeyPair(const PrivateKey& key, const std::string& prefix) {
  return SavePemPair(key.ToPem(), key.public_key().ToPem(), prefix);
}

Status SavePemPair(std::string private_pem, const std::string& public_pem,
                   const std::string& prefix) {
  const std::string key_path = prefix + ".key", pub_path = prefix + ".pub";
  if (auto dir = std::filesystem::path(prefix).parent_path(); !dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec)
      return Error(Code::kIo, dir.string() + ": cannot create the directory: " + ec.message());
  }
  if (::access(pub_path.c_str(), F_OK) == 0) {
    return Error(Code::kAlreadyExists, pub_path + ": exists; refusing to overwrite a key");
  }
  // The private key is created exclusively (never overwritten), then filled.
  ALOFT_ASSIGN_OR_RETURN(File private_file, File::CreateExclusive(key_path, 0600));
  Status written = private_file.Write(AsBytes(private_pem));
  if (written.ok()) written = private_file.Sync();
  OPENSSL_cleanse(private_pem.data(), private_pem.size());
  if (written.ok()) written = WriteFileAtomic(pub_path, public_pem, 0644);
  if (!written.ok()) {
    ::unlink(key_path.c_str());
    return written;
  }
  return OkStatus();
}

}  // namespace aloft::crypto
