#include "uds/authentication.h"

#include <openssl/rand.h>

#include <algorithm>
#include <cstring>
#include <memory>

namespace aloft::uds {

namespace {

// A 2-byte length and that many bytes at `at`; false when the request ends first.
bool TakeField(std::span<const uint8_t> in, size_t& at, std::span<const uint8_t>* out) {
  if (in.size() < at + 2) return false;
  const size_t n = (size_t{in[at]} << 8) | in[at + 1];
  at += 2;
  if (in.size() - at < n) return false;
  *out = in.subspan(at, n);
  at += n;
  return true;
}

void PutField(std::vector<uint8_t>& out, std::span<const uint8_t> field) {
  PutBigEndian(out, field.size(), 2);
  out.insert(out.end(), field.begin(), field.end());
}

uint8_t NrcOf(crypto::CertProblem p) {
  switch (p) {
    case crypto::CertProblem::kTime:
      return nrc::kCertificateInvalidTimePeriod;
    case crypto::CertProblem::kSignature:
      return nrc::kCertificateInvalidSignature;
    case crypto::CertProblem::kChain:
      return nrc::kCertificateInvalidChainOfTrust;
    case crypto::CertProblem::kType:
      return nrc::kCertificateInvalidType;
    case crypto::CertProblem::kFormat:
      return nrc::kCertificateInvalidFormat;
    case crypto::CertProblem::kRevoked:
      return nrc::kCertificateInvalidCertificate;
    case crypto::CertProblem::kContent:
    case crypto::CertProblem::kNone:
      break;
  }
  return nrc::kCertificateInvalidContent;
}

constexpr std::string_view kProofLabel = "aloft uds 0x29 proof of ownership v1";

}  // namespace

std::optional<ParseFailure> ParseVerifyCertificate(std::span<const uint8_t> r,
                                                   VerifyCertificateRequest* out) {
  // 29 01 cc LL LL cert... LL LL challenge...
  if (r.size() < 7) return ParseFailure{nrc::kIncorrectMessageLength, "shorter than 7 bytes"};
  out->communication_configuration = r[2];
  size_t at = 3;
  if (!TakeField(r, at, &out->certificate)) {
    return ParseFailure{nrc::kIncorrectMessageLength, "the certificate is cut short"};
  }
  if (out->certificate.empty()) {
    return ParseFailure{nrc::kCertificateInvalidFormat, "no certificate"};
  }
  if (!TakeField(r, at, &out->challenge)) {
    return ParseFailure{nrc::kIncorrectMessageLength, "the client challenge is cut short"};
  }
  if (at != r.size()) {
    return ParseFailure{nrc::kIncorrectMessageLength, "bytes after the client challenge"};
  }
  return std::nullopt;
}

std::vector<uint8_t> EncodeVerifyCertificate(std::span<const uint8_t> certificate,
                                             std::span<const uint8_t> challenge) {
  std::vector<uint8_t> out{sid::kAuthentication, auth::kVerifyCertificateUnidirectional, 0x00};
  PutField(out, certificate);
  PutField(out, challenge);
  return out;
}

std::optional<ParseFailure> ParseProofOfOwnership(std::span<const uint8_t> r,
                                                  ProofOfOwnershipRequest* out) {
  // 29 03 LL LL proof... LL LL key...
  if (r.size() < 6) return ParseFailure{nrc::kIncorrectMessageLength, "shorter than 6 bytes"};
  size_t at = 2;
  if (!TakeField(r, at, &out->proof)) {
    return ParseFailure{nrc::kIncorrectMessageLength, "the proof of ownership is cut short"};
  }
  if (!TakeField(r, at, &out->ephemeral_key)) {
    return ParseFailure{nrc::kIncorrectMessageLength, "the ephemeral key is cut short"};
  }
  if (at != r.size()) {
    return ParseFailure{nrc::kIncorrectMessageLength, "bytes after the ephemeral key"};
  }
  return std::nullopt;
}

std::vector<uint8_t> EncodeProofOfOwnership(std::span<const uint8_t> proof) {
  std::vector<uint8_t> out{sid::kAuthentication, auth::kProofOfOwnership};
  PutField(out, proof);
  PutField(out, {});
  return out;
}

std::optional<std::string> ParseVerifyCertificateResponse(std::span<const uint8_t> r,
                                                          VerifyCertificateResponse* out) {
  if (r.size() < 3 || r[0] != sid::kAuthentication + sid::kPositiveOffset ||
      r[1] != auth::kVerifyCertificateUnidirectional) {
    return "not a 69 01 response";
  }
  out->result = r[2];
  size_t at = 3;
  if (!TakeField(r, at, &out->challenge)) return "the server challenge is cut short";
  if (at == r.size()) return std::nullopt;  // no ephemeral key field
  if (!TakeField(r, at, &out->ephemeral_key)) return "the ephemeral key is cut short";
  if (at != r.size()) return "bytes after the ephemeral key";
  return std::nullopt;
}

Bytes ProofMessage(std::span<const uint8_t> challenge) {
  // Sized once and copied into (GCC 12's -O3 -Warray-bounds misreads an insert after the label).
  Bytes m(kProofLabel.size() + challenge.size());
  std::memcpy(m.data(), kProofLabel.data(), kProofLabel.size());
  if (!challenge.empty()) {
    std::memcpy(m.data() + kProofLabel.size(), challenge.data(), challenge.size());
  }
  return m;
}

// --- the ECU ----------------------------------------------------------------------------------

Authenticator::Authenticator(AuthenticationConfig config) : config_(std::move(config)) {
  if (!config_.now) config_.now = [] { return std::chrono::system_clock::now(); };
}

void Authenticator::ForgetChallenge() {
  pending_key_.reset();
  challenge_.clear();
  pending_roles_.clear();
  pending_subject_.clear();
}

void Authenticator::Reset() {
  ForgetChallenge();
  roles_.clear();
  subject_.clear();
}

Authenticator::Answer Authenticator::Handle(std::span<const uint8_t> r) {
  const uint8_t sub = r.size() > 1 ? r[1] & 0x7F : 0xFF;
  switch (sub) {
    case auth::kDeAuthenticate:
      if (r.size() != 2) return {{}, nrc::kIncorrectMessageLength, "29 00 takes no data"};
      Reset();
      return {{0x69, 0x00, auth::kDeAuthenticationSuccessful}};
    case auth::kVerifyCertificateUnidirectional:
      return VerifyCertificate(r);
    case auth::kProofOfOwnership:
      return ProveOwnership(r);
    case auth::kAuthenticationConfiguration:
      if (r.size() != 2) return {{}, nrc::kIncorrectMessageLength, "29 08 takes no data"};
      return {{0x69, 0x08, auth::kConfigurationApce}};
    default:
      return {{}, nrc::kSubFunctionNotSupported, "only APCE unidirectional (00, 01, 03, 08)"};
  }
}

Authenticator::Answer Authenticator::VerifyCertificate(std::span<const uint8_t> r) {
  // A new attempt forgets any challenge handed out before (it cannot be answered any more).
  ForgetChallenge();
  VerifyCertificateRequest req;
  if (auto bad = ParseVerifyCertificate(r, &req)) return {{}, bad->nrc, bad->why};
  if (req.communication_configuration != 0) {
    return {{}, nrc::kRequestOutOfRange, "communicationConfiguration other than 0"};
  }
  if (req.certificate.size() > config_.max_chain_bytes) {
    return {{}, nrc::kCertificateInvalidFormat, "the chain is longer than this ECU takes"};
  }
  auto chain = crypto::Certificate::ChainFromDer(req.certificate, "certificateClient");
  if (!chain.ok()) return {{}, nrc::kCertificateInvalidFormat, chain.error().message()};
  const crypto::ChainCheck check =
      crypto::VerifyChain(*chain, config_.anchors, config_.now(), config_.revoked);
  if (!check.ok()) return {{}, NrcOf(check.problem), check.why};
  const crypto::Certificate& leaf = (*chain)[0];
  std::optional<std::vector<std::string>> roles = leaf.Roles();
  if (!roles) {
    return {{}, nrc::kCertificateInvalidContent, leaf.Subject() + ": no role extension"};
  }
  std::set<std::string> granted;
  for (const std::string& role : *roles) {
    if (std::find(config_.roles.begin(), config_.roles.end(), role) != config_.roles.end()) {
      granted.insert(role);
    }
  }
  if (granted.empty()) {
    return {{},
            nrc::kCertificateInvalidScope,
            leaf.Subject() + ": none of its roles is one this ECU grants"};
  }
  auto key = leaf.Key();
  if (!key.ok()) return {{}, nrc::kCertificateInvalidContent, key.error().message()};
  challenge_.resize(config_.challenge_length);
  if (RAND_bytes(challenge_.data(), static_cast<int>(challenge_.size())) != 1) {
    challenge_.clear();
    return {{}, nrc::kChallengeCalculationFailed, "no random bytes"};
  }
  pending_key_ = std::move(*key);
  pending_roles_ = std::move(granted);
  pending_subject_ = leaf.Subject();
  std::vector<uint8_t> out{0x69, auth::kVerifyCertificateUnidirectional,
                           auth::kCertificateVerifiedOwnershipVerificationNecessary};
  PutField(out, challenge_);
  PutField(out, {});  // no ephemeral key: no session key is agreed (docs/identity.md)
  return {std::move(out)};
}

Authenticator::Answer Authenticator::ProveOwnership(std::span<const uint8_t> r) {
  ProofOfOwnershipRequest req;
  if (auto bad = ParseProofOfOwnership(r, &req)) return {{}, bad->nrc, bad->why};
  if (!pending_key_) {
    return {{}, nrc::kRequestSequenceError, "no challenge outstanding (29 01 first)"};
  }
  // One answer per challenge, right or wrong: a proof is never checked twice against it.
  const crypto::PublicKey key = std::move(*pending_key_);
  const Bytes challenge = std::move(challenge_);
  std::set<std::string> roles = std::move(pending_roles_);
  std::string subject = std::move(pending_subject_);
  ForgetChallenge();
  if (!key.Verify(ProofMessage(challenge), req.proof).ok()) {
    return {{},
            nrc::kOwnershipVerificationFailed,
            subject + ": the proof of ownership does not verify"};
  }
  roles_ = std::move(roles);
  subject_ = std::move(subject);
  std::vector<uint8_t> out{0x69, auth::kProofOfOwnership,
                           auth::kOwnershipVerifiedAuthenticationComplete};
  PutField(out, {});  // no session key info
  return {std::move(out)};
}

// --- the tester -------------------------------------------------------------------------------

Result<TesterCredentials> TesterCredentials::Load(const std::string& chain_pem,
                                                  const std::string& key_pem) {
  ALOFT_ASSIGN_OR_RETURN(std::vector<crypto::Certificate> chain,
                         crypto::Certificate::Load(chain_pem));
  ALOFT_ASSIGN_OR_RETURN(crypto::PrivateKey key, crypto::PrivateKey::Load(key_pem));
  ALOFT_ASSIGN_OR_RETURN(crypto::PublicKey leaf, chain[0].Key());
  if (leaf.keyid() != key.keyid()) {
    return Error(Code::kInvalidArgument, key_pem + ": not the key of " + chain_pem +
                                             "'s first certificate (" + chain[0].Subject() + ")");
  }
  if (key.type() != crypto::KeyType::kEcdsaP256) {
    return Error(Code::kInvalidArgument, key_pem + ": UDS 0x29 takes an ECDSA P-256 key");
  }
  return TesterCredentials{std::move(chain), std::move(key)};
}

Bytes TesterCredentials::ChainDer() const {
  Bytes out;
  for (const auto& c : chain) {
    const Bytes der = c.Der();
    out.insert(out.end(), der.begin(), der.end());
  }
  return out;
}

void Authenticate(Client& client, const TesterCredentials& credentials,
                  std::function<void(Status)> done) {
  std::vector<uint8_t> first = EncodeVerifyCertificate(credentials.ChainDer());
  auto shared_done = std::make_shared<std::function<void(Status)>>(std::move(done));
  crypto::PrivateKey key = credentials.key;
  client.Request(first, [&client, first, key, shared_done](Result<Response> r) {
    if (!r.ok()) return (*shared_done)(std::move(r).error());
    if (!r->positive()) return (*shared_done)(r->ToStatus(first));
    VerifyCertificateResponse v;
    if (auto bad = ParseVerifyCertificateResponse(r->bytes, &v)) {
      return (*shared_done)(Error(Code::kMalformed, "UDS 29 01: " + *bad));
    }
    if (v.result != auth::kCertificateVerifiedOwnershipVerificationNecessary) {
      return (*shared_done)(Error(Code::kUnavailable,
                                  "UDS 29 01: the ECU answered return "
                                  "parameter " +
                                      std::to_string(v.result) + " where 0x11 was expected"));
    }
    Result<Bytes> proof = key.Sign(ProofMessage(v.challenge));
    if (!proof.ok()) return (*shared_done)(std::move(proof).error());
    std::vector<uint8_t> second = EncodeProofOfOwnership(*proof);
    client.Request(second, [second, shared_done](Result<Response> r2) {
      if (!r2.ok()) return (*shared_done)(std::move(r2).error());
      if (!r2->positive()) return (*shared_done)(r2->ToStatus(second));
      if (r2->bytes.size() < 3 || r2->bytes[1] != auth::kProofOfOwnership ||
          r2->bytes[2] != auth::kOwnershipVerifiedAuthenticationComplete) {
        return (*shared_done)(Error(Code::kUnavailable, "UDS 29 03: authentication not complete: " +
                                                            Describe(r2->bytes, 8)));
      }
      (*shared_done)(OkStatus());
    });
  });
}

}  // namespace aloft::uds
