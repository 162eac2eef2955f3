// The operator's certificate authority as a directory, what `aloft ca` runs (docs/identity.md):
//
//   DIR/ca.key       the CA's ECDSA P-256 key (0600)
//   DIR/ca.crt       its self-signed certificate
//   DIR/issued.json  every certificate issued: serial, common name, expiry, revoked or not
//   DIR/crl.pem      the revocation list, rewritten at each revocation (aloftd and Mosquitto's
//                    crlfile read it)
//
// Devices get certificates for TLS client authentication (their common name is the device id),
// testers for UDS 0x29 (with roles). Each change is written atomically; a failure leaves the
// directory as it was.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/error.h"
#include "crypto/keys.h"
#include "crypto/x509.h"

namespace aloft::crypto {

struct IssuedCertificate {
  std::string serial;  // SerialHex
  std::string common_name;
  int64_t not_after_ms = 0;
  bool revoked = false;
  int64_t revoked_ms = 0;
};

struct IssueOptions {
  std::string common_name{};
  int64_t days = 365;
  std::vector<std::string> roles{};      // UDS 0x29 roles (a tester's certificate)
  std::vector<std::string> dns_names{};  // subjectAltName DNS names
  bool tls_client = false;
  bool tls_server = false;
};

class CaDirectory {
 public:
  // Makes a new CA in `dir` (created; refused when it already holds one).
  static Result<CaDirectory> Init(const std::string& dir, const std::string& name, int64_t days,
                                  const Clock& clock);
  static Result<CaDirectory> Open(const std::string& dir, const Clock& clock);

  // A certificate for `subject` (a CSR's key, or one made on the operator's machine).
  Result<Certificate> Issue(const IssueOptions& options, const PublicKey& subject);
  // A certificate from a CSR (its common name, unless `options` names one).
  Result<Certificate> Sign(const CertificateRequest& csr, IssueOptions options);
  // Revokes the certificate with `serial` (SerialHex) and rewrites crl.pem. kNotFound for a
  // serial this CA did not issue; revoking twice is no error.
  Status Revoke(const std::string& serial);
  // Rewrites crl.pem, valid for `days` from now.
  Status WriteCrl(int64_t days = 30);

  const Certificate& certificate() const { return cert_; }
  const std::vector<IssuedCertificate>& issued() const { return issued_; }
  std::string crl_path() const { return dir_ + "/crl.pem"; }
  std::string cert_path() const { return dir_ + "/ca.crt"; }

 private:
  CaDirectory(std::string dir, const Clock& clock, PrivateKey key, Certificate cert)
      : dir_(std::move(dir)), clock_(&clock), key_(std::move(key)), cert_(std::move(cert)) {}
  Status SaveIssued() const;

  std::string dir_;
  const Clock* clock_;
  PrivateKey key_;
  Certificate cert_;
  std::vector<IssuedCertificate> issued_;
};

}  // namespace aloft::crypto
