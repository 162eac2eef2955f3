#include "crypto/x509.h"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>

#include "core/file.h"

namespace aloft::crypto {

namespace {

std::string SslError() {
  const unsigned long e = ERR_get_error();
  char buf[256] = "unknown OpenSSL error";
  if (e) ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return buf;
}

// What `write` puts in a memory BIO, as text (PEM writers, name printers).
template <typename Write>
std::string MemoryText(Write write) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
  write(bio.get());
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

std::shared_ptr<X509> Own(X509* x) { return std::shared_ptr<X509>(x, X509_free); }

// The role extension's object (created once; OpenSSL keeps its own table).
ASN1_OBJECT* RoleObject() {
  static ASN1_OBJECT* obj = OBJ_txt2obj(kRoleOid, 1);
  return obj;
}

std::chrono::system_clock::time_point FromAsn1(const ASN1_TIME* t) {
  struct tm tm {};
  if (!t || ASN1_TIME_to_tm(t, &tm) != 1) return {};
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

std::vector<std::string> SplitRoles(std::string_view text) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at <= text.size()) {
    size_t comma = text.find(',', at);
    if (comma == std::string_view::npos) comma = text.size();
    std::string_view role = text.substr(at, comma - at);
    while (!role.empty() && role.front() == ' ') role.remove_prefix(1);
    while (!role.empty() && role.back() == ' ') role.remove_suffix(1);
    if (!role.empty()) out.emplace_back(role);
    at = comma + 1;
  }
  return out;
}

std::string SubjectOf(X509* x) {
  return MemoryText(
      [&](BIO* b) { X509_NAME_print_ex(b, X509_get_subject_name(x), 0, XN_FLAG_RFC2253); });
}

// A serial number as SerialHex gives it: lower-case hex.
std::string SerialHexOf(const ASN1_INTEGER* serial) {
  std::unique_ptr<BIGNUM, decltype(&BN_free)> bn(ASN1_INTEGER_to_BN(serial, nullptr), BN_free);
  char* hex = bn ? BN_bn2hex(bn.get()) : nullptr;
  std::string out = hex ? hex : "";
  OPENSSL_free(hex);
  std::transform(out.begin(), out.end(), out.begin(), ::tolower);
  return out;
}

// A key held by a certificate or a request, as our PublicKey (through its DER).
Result<PublicKey> PublicKeyOf(EVP_PKEY* key, const std::string& origin) {
  unsigned char* der = nullptr;
  const int n = key ? i2d_PUBKEY(key, &der) : 0;
  if (n <= 0) return Error(Code::kMalformed, origin + ": no public key");
  Bytes spki(der, der + n);
  OPENSSL_free(der);
  return PublicKey::FromDer(spki, origin);
}

bool IsP256Sha256(X509* x) {
  if (X509_get_signature_nid(x) != NID_ecdsa_with_SHA256) return false;
  EVP_PKEY* key = X509_get0_pubkey(x);
  if (!key || EVP_PKEY_get_id(key) != EVP_PKEY_EC) return false;
  char group[64] = {};
  size_t n = 0;
  if (EVP_PKEY_get_utf8_string_param(key, "group", group, sizeof group, &n) != 1) return false;
  return std::string_view(group) == "prime256v1" || std::string_view(group) == "P-256";
}

CertProblem ProblemOf(int verify_error) {
  switch (verify_error) {
    case X509_V_ERR_CERT_NOT_YET_VALID:
    case X509_V_ERR_CERT_HAS_EXPIRED:
    case X509_V_ERR_ERROR_IN_CERT_NOT_BEFORE_FIELD:
    case X509_V_ERR_ERROR_IN_CERT_NOT_AFTER_FIELD:
      return CertProblem::kTime;
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
    case X509_V_ERR_UNABLE_TO_DECRYPT_CERT_SIGNATURE:
      return CertProblem::kSignature;
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_INVALID_CA:
    case X509_V_ERR_PATH_LENGTH_EXCEEDED:
    case X509_V_ERR_CERT_CHAIN_TOO_LONG:
      return CertProblem::kChain;
    case X509_V_ERR_CERT_REVOKED:
      return CertProblem::kRevoked;
    default:
      return CertProblem::kContent;
  }
}

}  // namespace

const char* CertProblemName(CertProblem p) {
  switch (p) {
    case CertProblem::kNone:
      return "valid";
    case CertProblem::kFormat:
      return "invalid format";
    case CertProblem::kTime:
      return "invalid time period";
    case CertProblem::kSignature:
      return "invalid signature";
    case CertProblem::kChain:
      return "invalid chain of trust";
    case CertProblem::kType:
      return "invalid type";
    case CertProblem::kContent:
      return "invalid content";
    case CertProblem::kRevoked:
      return "revoked";
  }
  return "unknown";
}

Result<Certificate> Certificate::FromDer(ByteSpan der, std::string_view origin) {
  ALOFT_ASSIGN_OR_RETURN(std::vector<Certificate> all, ChainFromDer(der, origin));
  if (all.size() != 1) {
    return Error(Code::kMalformed, std::string(origin) + ": " + std::to_string(all.size()) +
                                       " certificates where one was expected");
  }
  return std::move(all[0]);
}

Result<std::vector<Certificate>> Certificate::ChainFromDer(ByteSpan der, std::string_view origin) {
  std::vector<Certificate> out;
  const unsigned char* p = der.data();
  const unsigned char* end = der.data() + der.size();
  if (der.empty()) return Error(Code::kMalformed, std::string(origin) + ": no certificate");
  while (p < end) {
    const unsigned char* at = p;
    X509* x = d2i_X509(nullptr, &p, static_cast<long>(end - p));
    if (x == nullptr) {
      ERR_clear_error();
      return Error(Code::kMalformed, std::string(origin) + ": certificate " +
                                         std::to_string(out.size() + 1) + " (at byte " +
                                         std::to_string(at - der.data()) +
                                         ") is not DER X.509 or is truncated");
    }
    Certificate c;
    c.x509_ = Own(x);
    out.push_back(std::move(c));
  }
  return out;
}

Result<std::vector<Certificate>> Certificate::FromPem(std::string_view pem,
                                                      std::string_view origin) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), int(pem.size())),
                                                BIO_free);
  std::vector<Certificate> out;
  while (X509* x = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    Certificate c;
    c.x509_ = Own(x);
    out.push_back(std::move(c));
  }
  ERR_clear_error();
  if (out.empty()) {
    return Error(Code::kInvalidArgument,
                 std::string(origin) + ": no PEM certificate (-----BEGIN CERTIFICATE-----)");
  }
  return out;
}

Result<std::vector<Certificate>> Certificate::Load(const std::string& path) {
  ALOFT_ASSIGN_OR_RETURN(std::string pem, ReadFile(path, 1 << 20));
  return FromPem(pem, path);
}

Result<Certificate> Certificate::Issue(const CertificateSpec& spec, const PublicKey& subject,
                                       const Certificate* issuer, const PrivateKey& issuer_key) {
  auto fail = [](const std::string& what) {
    return Error(Code::kInternal, "issuing a certificate: " + what + ": " + SslError());
  };
  auto x = Own(X509_new());
  if (!x) return fail("X509_new");
  X509_set_version(x.get(), X509_VERSION_3);
  uint64_t serial = spec.serial;
  if (serial == 0) {
    RAND_bytes(reinterpret_cast<unsigned char*>(&serial), sizeof serial);
    serial = (serial >> 1) | 1;  // positive, never 0
  }
  std::unique_ptr<BIGNUM, decltype(&BN_free)> bn(BN_new(), BN_free);
  BN_set_word(bn.get(), serial);
  BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(x.get()));
  ASN1_TIME_set(X509_getm_notBefore(x.get()),
                std::chrono::system_clock::to_time_t(spec.not_before));
  ASN1_TIME_set(X509_getm_notAfter(x.get()), std::chrono::system_clock::to_time_t(spec.not_after));
  X509_NAME* name = X509_get_subject_name(x.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(spec.common_name.c_str()), -1,
                             -1, 0);
  X509_set_issuer_name(x.get(), issuer ? X509_get_subject_name(issuer->x509_.get()) : name);
  if (X509_set_pubkey(x.get(), subject.native()) != 1) return fail("subject key");

  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer ? issuer->x509_.get() : x.get(), x.get(), nullptr, nullptr, 0);
  auto add = [&](int nid, const std::string& value) -> bool {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
    if (!ext) return false;
    X509_add_ext(x.get(), ext, -1);
    X509_EXTENSION_free(ext);
    return true;
  };
  bool ok =
      add(NID_basic_constraints, spec.ca ? "critical,CA:TRUE" : "critical,CA:FALSE") &&
      add(NID_key_usage, spec.ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature") &&
      add(NID_subject_key_identifier, "hash");
  if (ok && issuer) ok = add(NID_authority_key_identifier, "keyid:always");
  if (ok && (spec.tls_client || spec.tls_server)) {
    std::string eku = spec.tls_client ? "clientAuth" : "";
    if (spec.tls_server) eku += eku.empty() ? "serverAuth" : ",serverAuth";
    ok = add(NID_ext_key_usage, eku);
  }
  if (ok && !spec.dns_names.empty()) {
    std::string san;
    for (const auto& d : spec.dns_names) san += (san.empty() ? "DNS:" : ",DNS:") + d;
    ok = add(NID_subject_alt_name, san);
  }
  if (!ok) return fail("extensions");
  if (!spec.roles.empty()) {
    std::string text;
    for (const auto& r : spec.roles) text += (text.empty() ? "" : ",") + r;
    ASN1_UTF8STRING* s = ASN1_UTF8STRING_new();
    ASN1_STRING_set(s, text.data(), static_cast<int>(text.size()));
    unsigned char* der = nullptr;
    const int n = i2d_ASN1_UTF8STRING(s, &der);
    ASN1_UTF8STRING_free(s);
    ASN1_OCTET_STRING* value = ASN1_OCTET_STRING_new();
    ASN1_OCTET_STRING_set(value, der, n);
    OPENSSL_free(der);
    X509_EXTENSION* ext = X509_EXTENSION_create_by_OBJ(nullptr, RoleObject(), 0, value);
    ASN1_OCTET_STRING_free(value);
    if (!ext) return fail("role extension");
    X509_add_ext(x.get(), ext, -1);
    X509_EXTENSION_free(ext);
  }
  const EVP_MD* md = issuer_key.type() == KeyType::kEd25519 ? nullptr : EVP_sha256();
  if (X509_sign(x.get(), issuer_key.native(), md) <= 0) return fail("signing");
  Certificate c;
  c.x509_ = std::move(x);
  return c;
}

Bytes Certificate::Der() const {
  unsigned char* der = nullptr;
  const int n = i2d_X509(x509_.get(), &der);
  Bytes out(der, der + std::max(n, 0));
  OPENSSL_free(der);
  return out;
}

std::string Certificate::Pem() const {
  return MemoryText([&](BIO* b) { PEM_write_bio_X509(b, x509_.get()); });
}

std::string Certificate::CommonName() const {
  char buf[256] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(x509_.get()), NID_commonName, buf, sizeof buf);
  return buf;
}

std::string Certificate::Subject() const { return SubjectOf(x509_.get()); }

std::string Certificate::SerialHex() const {
  return SerialHexOf(X509_get0_serialNumber(x509_.get()));
}

std::chrono::system_clock::time_point Certificate::NotBefore() const {
  return FromAsn1(X509_get0_notBefore(x509_.get()));
}

std::chrono::system_clock::time_point Certificate::NotAfter() const {
  return FromAsn1(X509_get0_notAfter(x509_.get()));
}

std::optional<std::vector<std::string>> Certificate::Roles() const {
  const int at = X509_get_ext_by_OBJ(x509_.get(), RoleObject(), -1);
  if (at < 0) return std::nullopt;
  ASN1_OCTET_STRING* value = X509_EXTENSION_get_data(X509_get_ext(x509_.get(), at));
  const unsigned char* p = ASN1_STRING_get0_data(value);
  ASN1_UTF8STRING* s = d2i_ASN1_UTF8STRING(nullptr, &p, ASN1_STRING_length(value));
  if (!s) {
    ERR_clear_error();
    return std::nullopt;
  }
  std::string text(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                   static_cast<size_t>(ASN1_STRING_length(s)));
  ASN1_UTF8STRING_free(s);
  return SplitRoles(text);
}

Result<PublicKey> Certificate::Key() const {
  return PublicKeyOf(X509_get0_pubkey(x509_.get()), "certificate " + Subject());
}

// --- requests ---------------------------------------------------------------------------------

Result<CertificateRequest> CertificateRequest::FromPem(std::string_view pem,
                                                       std::string_view origin) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), int(pem.size())),
                                                BIO_free);
  X509_REQ* req = PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr);
  if (!req) {
    ERR_clear_error();
    return Error(Code::kInvalidArgument,
                 std::string(origin) +
                     ": not a PEM certificate request (-----BEGIN CERTIFICATE REQUEST-----)");
  }
  CertificateRequest r;
  r.req_ = std::shared_ptr<X509_REQ>(req, X509_REQ_free);
  EVP_PKEY* key = X509_REQ_get0_pubkey(req);
  if (!key || X509_REQ_verify(req, key) != 1) {
    ERR_clear_error();
    return Error(Code::kInvalidArgument,
                 std::string(origin) + ": its signature does not verify with its own key");
  }
  if (r.CommonName().empty()) {
    return Error(Code::kInvalidArgument, std::string(origin) + ": no common name (CN)");
  }
  return r;
}

Result<CertificateRequest> CertificateRequest::Load(const std::string& path) {
  ALOFT_ASSIGN_OR_RETURN(std::string pem, ReadFile(path, 1 << 20));
  return FromPem(pem, path);
}

Result<CertificateRequest> CertificateRequest::Make(const PrivateKey& key,
                                                    const std::string& common_name) {
  std::shared_ptr<X509_REQ> req(X509_REQ_new(), X509_REQ_free);
  X509_REQ_set_version(req.get(), 0);
  X509_NAME* name = X509_REQ_get_subject_name(req.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1,
                             0);
  X509_REQ_set_pubkey(req.get(), key.public_key().native());
  const EVP_MD* md = key.type() == KeyType::kEd25519 ? nullptr : EVP_sha256();
  if (X509_REQ_sign(req.get(), key.native(), md) <= 0) {
    return Error(Code::kInternal, "signing a certificate request: " + SslError());
  }
  CertificateRequest r;
  r.req_ = std::move(req);
  return r;
}

std::string CertificateRequest::CommonName() const {
  char buf[256] = {};
  X509_NAME_get_text_by_NID(X509_REQ_get_subject_name(req_.get()), NID_commonName, buf, sizeof buf);
  return buf;
}

Result<PublicKey> CertificateRequest::Key() const {
  return PublicKeyOf(X509_REQ_get0_pubkey(req_.get()), "certificate request of " + CommonName());
}

std::string CertificateRequest::Pem() const {
  return MemoryText([&](BIO* b) { PEM_write_bio_X509_REQ(b, req_.get()); });
}

// --- revocation lists -------------------------------------------------------------------------

Result<RevocationList> RevocationList::Issue(const Certificate& ca, const PrivateKey& ca_key,
                                             const std::vector<std::string>& serials,
                                             std::chrono::system_clock::time_point this_update,
                                             std::chrono::system_clock::time_point next_update) {
  std::shared_ptr<X509_CRL> crl(X509_CRL_new(), X509_CRL_free);
  X509_CRL_set_version(crl.get(), 1);  // v2
  X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(ca.native()));
  std::unique_ptr<ASN1_TIME, decltype(&ASN1_TIME_free)> at(ASN1_TIME_new(), ASN1_TIME_free);
  ASN1_TIME_set(at.get(), std::chrono::system_clock::to_time_t(this_update));
  X509_CRL_set1_lastUpdate(crl.get(), at.get());
  ASN1_TIME_set(at.get(), std::chrono::system_clock::to_time_t(next_update));
  X509_CRL_set1_nextUpdate(crl.get(), at.get());
  for (const std::string& hex : serials) {
    BIGNUM* bn = nullptr;
    if (hex.empty() || BN_hex2bn(&bn, hex.c_str()) != static_cast<int>(hex.size())) {
      BN_free(bn);
      return Error(Code::kInvalidArgument, "serial '" + hex + "' is not hex");
    }
    X509_REVOKED* r = X509_REVOKED_new();
    ASN1_INTEGER* serial = BN_to_ASN1_INTEGER(bn, nullptr);
    BN_free(bn);
    X509_REVOKED_set_serialNumber(r, serial);
    ASN1_INTEGER_free(serial);
    ASN1_TIME_set(at.get(), std::chrono::system_clock::to_time_t(this_update));
    X509_REVOKED_set_revocationDate(r, at.get());
    X509_CRL_add0_revoked(crl.get(), r);
  }
  X509_CRL_sort(crl.get());
  const EVP_MD* md = ca_key.type() == KeyType::kEd25519 ? nullptr : EVP_sha256();
  if (X509_CRL_sign(crl.get(), ca_key.native(), md) <= 0) {
    return Error(Code::kInternal, "signing a revocation list: " + SslError());
  }
  RevocationList out;
  out.crl_ = std::move(crl);
  return out;
}

Result<RevocationList> RevocationList::FromPem(std::string_view pem, std::string_view origin) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), int(pem.size())),
                                                BIO_free);
  X509_CRL* crl = PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr);
  if (!crl) {
    ERR_clear_error();
    return Error(Code::kInvalidArgument,
                 std::string(origin) + ": not a PEM revocation list (-----BEGIN X509 CRL-----)");
  }
  RevocationList out;
  out.crl_ = std::shared_ptr<X509_CRL>(crl, X509_CRL_free);
  return out;
}

Result<RevocationList> RevocationList::Load(const std::string& path) {
  ALOFT_ASSIGN_OR_RETURN(std::string pem, ReadFile(path, 64 << 20));
  return FromPem(pem, path);
}

Status RevocationList::VerifiedBy(const Certificate& ca) const {
  EVP_PKEY* key = X509_get0_pubkey(ca.native());
  if (!key || X509_CRL_verify(crl_.get(), key) != 1) {
    ERR_clear_error();
    return Error(Code::kUntrusted, "the revocation list is not signed by " + ca.Subject());
  }
  return OkStatus();
}

std::vector<std::string> RevocationList::Serials() const {
  std::vector<std::string> out;
  STACK_OF(X509_REVOKED)* revoked = X509_CRL_get_REVOKED(crl_.get());
  for (int i = 0; i < sk_X509_REVOKED_num(revoked); ++i) {
    out.push_back(SerialHexOf(X509_REVOKED_get0_serialNumber(sk_X509_REVOKED_value(revoked, i))));
  }
  return out;
}

std::chrono::system_clock::time_point RevocationList::NextUpdate() const {
  return FromAsn1(X509_CRL_get0_nextUpdate(crl_.get()));
}

std::string RevocationList::Pem() const {
  return MemoryText([&](BIO* b) { PEM_write_bio_X509_CRL(b, crl_.get()); });
}

ChainCheck VerifyChain(const std::vector<Certificate>& chain,
                       const std::vector<Certificate>& anchors,
                       std::chrono::system_clock::time_point at,
                       const std::vector<std::string>& revoked, bool p256_only) {
  if (chain.empty()) return {CertProblem::kFormat, "no certificate"};
  for (const auto* set : {&chain, &anchors}) {
    for (const Certificate& c : *set) {
      if (p256_only && !IsP256Sha256(c.native())) {
        return {CertProblem::kType, c.Subject() + ": not an ECDSA P-256 key signed with SHA-256"};
      }
    }
  }
  std::unique_ptr<X509_STORE, decltype(&X509_STORE_free)> store(X509_STORE_new(), X509_STORE_free);
  for (const Certificate& a : anchors) X509_STORE_add_cert(store.get(), a.native());
  std::unique_ptr<STACK_OF(X509), void (*)(STACK_OF(X509)*)> untrusted(
      sk_X509_new_null(), [](STACK_OF(X509) * s) { sk_X509_free(s); });
  for (size_t i = 1; i < chain.size(); ++i) sk_X509_push(untrusted.get(), chain[i].native());
  std::unique_ptr<X509_STORE_CTX, decltype(&X509_STORE_CTX_free)> ctx(X509_STORE_CTX_new(),
                                                                      X509_STORE_CTX_free);
  X509_STORE_CTX_init(ctx.get(), store.get(), chain[0].native(), untrusted.get());
  X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
  X509_VERIFY_PARAM_set_time(param, std::chrono::system_clock::to_time_t(at));
  X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_X509_STRICT);
  X509_VERIFY_PARAM_set_depth(param, 4);
  const int rc = X509_verify_cert(ctx.get());
  if (rc != 1) {
    const int err = X509_STORE_CTX_get_error(ctx.get());
    X509* bad = X509_STORE_CTX_get_current_cert(ctx.get());
    const std::string who = SubjectOf(bad ? bad : chain[0].native());
    ERR_clear_error();
    return {ProblemOf(err), who + ": " + X509_verify_cert_error_string(err)};
  }
  for (const Certificate& c : chain) {
    if (std::find(revoked.begin(), revoked.end(), c.SerialHex()) != revoked.end()) {
      return {CertProblem::kRevoked, c.Subject() + ": revoked (serial " + c.SerialHex() + ")"};
    }
  }
  return {};
}

}  // namespace aloft::crypto
