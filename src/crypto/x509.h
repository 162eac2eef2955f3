// X.509 certificates through OpenSSL 3, for the parts of Aloft that run a small PKI: testers'
// certificates for UDS Authentication (0x29, docs/identity.md) with the roles they grant, the
// CA that issues them, and the chain check an ECU makes, whose refusal is a value (CertProblem)
// that the caller maps to its protocol's answer (an NRC).
//
//   auto ca = crypto::Certificate::Issue({.common_name = "OEM tester CA", .ca = true, ...},
//                                        ca_key.public_key(), nullptr, ca_key);
//   auto tester = crypto::Certificate::Issue({.common_name = "workshop-17",
//                                             .roles = {"programming"}, ...},
//                                            tester_key.public_key(), &*ca, ca_key);
//   crypto::ChainCheck c = crypto::VerifyChain({*tester}, {*ca}, now);
//
// Roles travel in a certificate extension of our own (kRoleOid, an OID under 2.25, the UUID arc
// anyone may use): a UTF8String of comma-separated names, "programming,diagnostics". OpenSSL's
// command line writes it too:
//   -addext "2.25.142528865534627520614609854213637679971=ASN1:UTF8String:programming"
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/encoding.h"
#include "core/error.h"
#include "crypto/keys.h"

typedef struct x509_st X509;
typedef struct X509_req_st X509_REQ;
typedef struct X509_crl_st X509_CRL;

namespace aloft::crypto {

// The role extension's OID (dotted).
inline constexpr const char* kRoleOid = "2.25.142528865534627520614609854213637679971";

struct CertificateSpec {
  std::string common_name;
  std::chrono::system_clock::time_point not_before{}, not_after{};
  bool ca = false;                       // basicConstraints CA:TRUE, keyCertSign
  std::vector<std::string> roles{};      // the role extension (empty: none)
  std::vector<std::string> dns_names{};  // subjectAltName DNS entries
  bool tls_client = false;               // extendedKeyUsage clientAuth (a device's certificate)
  bool tls_server = false;               // extendedKeyUsage serverAuth
  uint64_t serial = 0;                   // 0: a random one
};

class Certificate {
 public:
  // One DER certificate, the whole of `der`; `origin` names the input in errors.
  static Result<Certificate> FromDer(ByteSpan der, std::string_view origin);
  // Certificates one after the other in `der` (a chain as 0x29 carries it: the leaf first).
  // kMalformed on a truncated one or bytes after the last.
  static Result<std::vector<Certificate>> ChainFromDer(ByteSpan der, std::string_view origin);
  // Every "-----BEGIN CERTIFICATE-----" in `pem` (at least one), in order.
  static Result<std::vector<Certificate>> FromPem(std::string_view pem, std::string_view origin);
  static Result<std::vector<Certificate>> Load(const std::string& path);

  // Issues a certificate for `subject` signed by `issuer_key`: by `issuer` (null: self-signed,
  // `issuer_key` then being the subject's own key). ECDSA keys are signed with SHA-256.
  static Result<Certificate> Issue(const CertificateSpec& spec, const PublicKey& subject,
                                   const Certificate* issuer, const PrivateKey& issuer_key);

  Bytes Der() const;
  std::string Pem() const;
  std::string CommonName() const;
  std::string Subject() const;  // "CN=workshop-17,O=..." (RFC 2253)
  std::string SerialHex() const;
  std::chrono::system_clock::time_point NotBefore() const;
  std::chrono::system_clock::time_point NotAfter() const;
  // The role extension's names; nullopt when the certificate has none (or an unreadable one).
  std::optional<std::vector<std::string>> Roles() const;
  Result<PublicKey> Key() const;
  X509* native() const { return x509_.get(); }

 private:
  std::shared_ptr<X509> x509_;
};

// A PKCS#10 certificate signing request: how a device enrols with a key it made itself
// (docs/identity.md). Its self-signature is checked when it is read.
class CertificateRequest {
 public:
  static Result<CertificateRequest> FromPem(std::string_view pem, std::string_view origin);
  static Result<CertificateRequest> Load(const std::string& path);
  // A request for `common_name`, signed by `key`.
  static Result<CertificateRequest> Make(const PrivateKey& key, const std::string& common_name);

  std::string CommonName() const;
  Result<PublicKey> Key() const;
  std::string Pem() const;

 private:
  std::shared_ptr<X509_REQ> req_;
};

// A certificate revocation list (X.509 v2 CRL, PEM) signed by the CA whose certificates it
// revokes: what aloftd reloads and Mosquitto's crlfile reads.
class RevocationList {
 public:
  // Revokes `serials` (SerialHex) of `ca`'s certificates, valid from `this_update` to
  // `next_update`.
  static Result<RevocationList> Issue(const Certificate& ca, const PrivateKey& ca_key,
                                      const std::vector<std::string>& serials,
                                      std::chrono::system_clock::time_point this_update,
                                      std::chrono::system_clock::time_point next_update);
  static Result<RevocationList> FromPem(std::string_view pem, std::string_view origin);
  static Result<RevocationList> Load(const std::string& path);

  // Ok when `ca` signed it; kUntrusted otherwise.
  Status VerifiedBy(const Certificate& ca) const;
  std::vector<std::string> Serials() const;  // lower-case hex, as SerialHex
  std::chrono::system_clock::time_point NextUpdate() const;
  std::string Pem() const;

 private:
  std::shared_ptr<X509_CRL> crl_;
};

// Why a chain was refused, in the categories ISO 14229-1:2020 gives 0x29's NRCs.
enum class CertProblem {
  kNone,
  kFormat,     // not DER X.509, truncated, empty
  kTime,       // a certificate expired or not yet valid
  kSignature,  // a signature in the chain does not verify
  kChain,      // no path to a trust anchor
  kType,       // a key or signature algorithm other than ECDSA P-256 with SHA-256
  kContent,    // something else the verification refused (extensions, CA flags)
  kRevoked,
};
const char* CertProblemName(CertProblem p);  // "invalid time period", ...

struct ChainCheck {
  CertProblem problem = CertProblem::kNone;
  std::string why;  // OpenSSL's reason and the certificate's subject
  bool ok() const { return problem == CertProblem::kNone; }
};

// Verifies chain[0] through chain[1..] (intermediates) up to one of `anchors` at time `at`;
// with `p256_only`, every certificate, the anchors' too, must hold an ECDSA P-256 key and be
// signed with ecdsa-with-SHA256. `revoked`: serial numbers (SerialHex) refused as revoked.
ChainCheck VerifyChain(const std::vector<Certificate>& chain,
                       const std::vector<Certificate>& anchors,
                       std::chrono::system_clock::time_point at,
                       const std::vector<std::string>& revoked = {}, bool p256_only = true);

}  // namespace aloft::crypto
