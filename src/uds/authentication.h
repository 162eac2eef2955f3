// UDS Authentication (0x29, ISO 14229-1:2020), Authentication with PKI Certificate Exchange
// (APCE), unidirectional: the tester presents its X.509 certificate chain (29 01), the ECU checks
// it against its trust anchor, its validity at the ECU's time and its role, and answers with a
// fresh challenge; the tester proves it holds the certificate's key by signing that challenge
// (29 03). The ECU then grants the roles the certificate names and it accepts, until 29 00, a
// reset, or the return to the default session. Formats and choices: docs/identity.md.
//
//   ECU:    server.SetAuthentication({.anchors = ca, .roles = {"programming"}});
//           server.Handle(0x34, {.role = "programming", ...}, ...);   // else NRC 0x34
//   tester: uds::Authenticate(client, credentials, [](Status s) { ... });
//
// The parsers are pure (the fuzzer feeds them anything) and fail with the NRC an ECU answers.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "crypto/keys.h"
#include "crypto/x509.h"
#include "uds/client.h"
#include "uds/uds.h"

namespace aloft::uds {

namespace auth {
// Sub-functions.
constexpr uint8_t kDeAuthenticate = 0x00;
constexpr uint8_t kVerifyCertificateUnidirectional = 0x01;
constexpr uint8_t kVerifyCertificateBidirectional = 0x02;
constexpr uint8_t kProofOfOwnership = 0x03;
constexpr uint8_t kTransmitCertificate = 0x04;
constexpr uint8_t kRequestChallengeForAuthentication = 0x05;
constexpr uint8_t kAuthenticationConfiguration = 0x08;
// authenticationReturnParameter.
constexpr uint8_t kRequestAccepted = 0x00;
constexpr uint8_t kGeneralReject = 0x01;
constexpr uint8_t kConfigurationApce = 0x02;
constexpr uint8_t kDeAuthenticationSuccessful = 0x10;
constexpr uint8_t kCertificateVerifiedOwnershipVerificationNecessary = 0x11;
constexpr uint8_t kOwnershipVerifiedAuthenticationComplete = 0x12;
constexpr uint8_t kCertificateVerified = 0x13;
}  // namespace auth

// 29 01: communicationConfiguration, lengthOfCertificateClient (2), certificateClient,
// lengthOfChallengeClient (2), challengeClient. The spans point into the request.
struct VerifyCertificateRequest {
  uint8_t communication_configuration = 0;
  std::span<const uint8_t> certificate;  // DER certificates, the leaf first
  std::span<const uint8_t> challenge;
};
std::optional<ParseFailure> ParseVerifyCertificate(std::span<const uint8_t> request,
                                                   VerifyCertificateRequest* out);
std::vector<uint8_t> EncodeVerifyCertificate(std::span<const uint8_t> certificate,
                                             std::span<const uint8_t> challenge = {});

// 29 03: lengthOfProofOfOwnershipClient (2), proofOfOwnershipClient,
// lengthOfEphemeralPublicKeyClient (2), ephemeralPublicKeyClient.
struct ProofOfOwnershipRequest {
  std::span<const uint8_t> proof;
  std::span<const uint8_t> ephemeral_key;
};
std::optional<ParseFailure> ParseProofOfOwnership(std::span<const uint8_t> request,
                                                  ProofOfOwnershipRequest* out);
std::vector<uint8_t> EncodeProofOfOwnership(std::span<const uint8_t> proof);

// 69 01: authenticationReturnParameter, lengthOfChallengeServer (2), challengeServer,
// lengthOfEphemeralPublicKeyServer (2), ephemeralPublicKeyServer.
struct VerifyCertificateResponse {
  uint8_t result = 0;
  std::span<const uint8_t> challenge;
  std::span<const uint8_t> ephemeral_key;
};
std::optional<std::string> ParseVerifyCertificateResponse(std::span<const uint8_t> response,
                                                          VerifyCertificateResponse* out);

// What the proof of ownership signs: a label, then the ECU's challenge (docs/identity.md).
Bytes ProofMessage(std::span<const uint8_t> challenge);

// The ECU's side.
struct AuthenticationConfig {
  std::vector<crypto::Certificate> anchors;  // the trust anchors (roots) of testers' chains
  std::vector<std::string> roles;            // the roles this ECU grants (others: 0x56)
  std::vector<std::string> revoked{};        // certificate serial numbers (SerialHex)
  // The ECU's calendar time for the certificates' validity (default: the system's).
  std::function<std::chrono::system_clock::time_point()> now{};
  size_t challenge_length = 32;
  size_t max_chain_bytes = 4096;
};

// The state of one ECU's authentication; Server owns one once SetAuthentication is called.
class Authenticator {
 public:
  explicit Authenticator(AuthenticationConfig config);

  // The answer to one 29 request: the positive response, or the NRC (and why, for logs).
  struct Answer {
    std::vector<uint8_t> positive{};
    uint8_t nrc = 0;
    std::string why{};
  };
  Answer Handle(std::span<const uint8_t> request);

  bool Has(const std::string& role) const { return roles_.count(role) > 0; }
  const std::set<std::string>& roles() const { return roles_; }
  const std::string& subject() const { return subject_; }  // the authenticated tester's
  void Reset();  // deauthenticated, any challenge forgotten

 private:
  Answer VerifyCertificate(std::span<const uint8_t> request);
  Answer ProveOwnership(std::span<const uint8_t> request);
  // Drops the challenge handed out and what its certificate would grant.
  void ForgetChallenge();

  AuthenticationConfig config_;
  // Between 29 01 and 29 03: the challenge handed out and what the certificate would grant.
  std::optional<crypto::PublicKey> pending_key_;
  Bytes challenge_;
  std::set<std::string> pending_roles_;
  std::string pending_subject_;
  std::set<std::string> roles_;
  std::string subject_;
};

// The tester's certificate chain (leaf first) and the leaf's private key (ECDSA P-256).
struct TesterCredentials {
  std::vector<crypto::Certificate> chain;
  crypto::PrivateKey key;
  // A PEM chain (the tester's certificate first, then intermediates) and its PEM key.
  static Result<TesterCredentials> Load(const std::string& chain_pem, const std::string& key_pem);
  Bytes ChainDer() const;
};

// 29 01 with the chain, then 29 03 with the signed challenge; Ok once the ECU answers
// 69 03 12 (ownership verified, authentication complete). A negative answer is kUnavailable
// naming the NRC ("UDS 29 01: negative response 0x50 (certificateVerificationFailed-Invalid
// TimePeriod)").
void Authenticate(Client& client, const TesterCredentials& credentials,
                  std::function<void(Status)> done);

}  // namespace aloft::uds
