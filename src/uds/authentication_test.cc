// UDS Authentication (0x29, APCE) between uds::Client and uds::Server over a link in memory, on
// simulated time: the tester's side completes against the ECU's; the negative corpus (wrong CA,
// expired, not yet valid, wrong role, replayed challenge, bad signatures, truncated certificate,
// and more) is each refused with its ISO 14229-1:2020 NRC, and the ECU is then still
// unauthenticated; a role-guarded service answers 0x34 until the tester authenticates.
#include "uds/authentication.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "support/matchers.h"
#include "uds/client.h"
#include "uds/memory_link.h"
#include "uds/server.h"
#include "uds/test_pki.h"

namespace aloft::uds {
namespace {

using crypto::Certificate;
using crypto::KeyType;
using crypto::PrivateKey;
using std::chrono::hours;
using ::testing::HasSubstr;

const auto kNow = std::chrono::system_clock::from_time_t(1'796'000'000);

PrivateKey P256() { return PrivateKey::Generate(KeyType::kEcdsaP256).value(); }

class Authentication : public ::testing::Test {
 protected:
  Authentication() {
    server_.Attach(*links_.second);
    server_.SetAuthentication(
        {.anchors = {pki_.root}, .roles = {"programming"}, .now = [] { return kNow; }});
    server_.Handle(0x34, {.role = "programming", .min_length = 2},
                   [](const Request&, Responder reply) {
                     reply.Positive({0x74, 0x20, 0x01, 0x02});
                   });
  }

  Response Ask(std::vector<uint8_t> request) {
    Result<Response> got = Error(Code::kInternal, "no answer");
    client_.Request(std::move(request), [&](Result<Response> r) { got = std::move(r); });
    loop_.RunFor(std::chrono::seconds(1));
    EXPECT_THAT(got, IsOk());
    return got.ok() ? *got : Response{};
  }
  Status Authenticate(const TesterCredentials& c) {
    Status got = Error(Code::kInternal, "not done");
    uds::Authenticate(client_, c, [&](Status s) { got = std::move(s); });
    loop_.RunFor(std::chrono::seconds(1));
    return got;
  }
  // 29 01 with `chain`: the challenge the ECU answered (empty when it refused).
  Bytes Challenge(const Bytes& chain) {
    Response r = Ask(EncodeVerifyCertificate(chain));
    VerifyCertificateResponse v;
    if (!r.positive() || ParseVerifyCertificateResponse(r.bytes, &v)) return {};
    return Bytes(v.challenge.begin(), v.challenge.end());
  }
  bool Programming() { return Ask({0x34, 0x00, 0x44, 0, 0, 0, 0, 0, 0, 0, 1}).positive(); }

  SimLoop loop_;
  std::pair<std::unique_ptr<MemoryLink>, std::unique_ptr<MemoryLink>> links_ =
      MemoryLink::Pair(loop_);  // the tester's end, the ECU's
  Server server_{loop_, {.name = "ecm"}};
  Client client_{*links_.first};
  testing::TestPki pki_{"OEM diagnostics root", kNow};
};

TEST_F(Authentication, TesterAuthenticatesThenProgrammingIsOpen) {
  EXPECT_EQ(Ask({0x34, 0x00, 0x44, 0, 0, 0, 0, 0, 0, 0, 1}).nrc(), nrc::kAuthenticationRequired);
  Response config = Ask({0x29, 0x08});
  EXPECT_EQ(config.bytes, (std::vector<uint8_t>{0x69, 0x08, auth::kConfigurationApce}));
  EXPECT_THAT(Authenticate(pki_.Tester()), IsOk());
  EXPECT_TRUE(server_.Authenticated("programming"));
  EXPECT_EQ(server_.authentication()->subject(), "CN=tester-17");
  EXPECT_TRUE(Programming());
  // 29 00 ends it; so does the default session.
  EXPECT_EQ(Ask({0x29, 0x00}).bytes,
            (std::vector<uint8_t>{0x69, 0x00, auth::kDeAuthenticationSuccessful}));
  EXPECT_FALSE(Programming());
  ASSERT_THAT(Authenticate(pki_.Tester()), IsOk());
  server_.Reset();
  EXPECT_FALSE(server_.Authenticated("programming"));
}

// The negative corpus of issue 25: every case refused with its NRC, the ECU left
// unauthenticated and programming still closed.
TEST_F(Authentication, NegativeCorpusRefusedWithIsoNrcs) {
  testing::TestPki foreign{"stranger", kNow};
  struct Case {
    const char* name;
    std::function<Response()> attempt;
    uint8_t nrc;
  };
  const TesterCredentials good = pki_.Tester();
  auto verify = [this](const TesterCredentials& c) {
    return [this, c] { return Ask(EncodeVerifyCertificate(c.ChainDer())); };
  };
  auto prove = [this](const TesterCredentials& c, std::function<Bytes(Bytes challenge)> sign) {
    return [this, c, sign] {
      Bytes challenge = Challenge(c.ChainDer());
      EXPECT_FALSE(challenge.empty());
      return Ask(EncodeProofOfOwnership(sign(challenge)));
    };
  };
  Bytes truncated = good.ChainDer();
  truncated.resize(truncated.size() / 2);
  Bytes forged_leaf = good.chain[0].Der();
  forged_leaf[forged_leaf.size() - 3] ^= 0x01;  // inside the CA's signature of the leaf
  const Bytes ca_der = good.chain[1].Der();
  forged_leaf.insert(forged_leaf.end(), ca_der.begin(), ca_der.end());
  PrivateKey ed = PrivateKey::Generate(KeyType::kEd25519).value();
  const Certificate ed_leaf = Certificate::Issue({.common_name = "ed25519 tester",
                                                  .not_before = kNow - hours(1),
                                                  .not_after = kNow + hours(1),
                                                  .roles = {"programming"}},
                                                 ed.public_key(), &pki_.ca, pki_.ca_key)
                                  .value();
  PrivateKey no_role_key = P256();
  const Certificate no_role =
      Certificate::Issue(
          {.common_name = "no role", .not_before = kNow - hours(1), .not_after = kNow + hours(1)},
          no_role_key.public_key(), &pki_.ca, pki_.ca_key)
          .value();
  std::vector<Case> corpus = {
      {"wrong CA", verify(foreign.Tester()), nrc::kCertificateInvalidChainOfTrust},
      {"expired", verify(pki_.Tester({"programming"}, kNow - hours(48), kNow - hours(24))),
       nrc::kCertificateInvalidTimePeriod},
      {"not yet valid", verify(pki_.Tester({"programming"}, kNow + hours(1), kNow + hours(9))),
       nrc::kCertificateInvalidTimePeriod},
      {"wrong role", verify(pki_.Tester({"diagnostics"})), nrc::kCertificateInvalidScope},
      {"no role", verify({{no_role, pki_.ca}, no_role_key}), nrc::kCertificateInvalidContent},
      {"bad certificate signature", [&] { return Ask(EncodeVerifyCertificate(forged_leaf)); },
       nrc::kCertificateInvalidSignature},
      {"Ed25519 key", verify({{ed_leaf, pki_.ca}, ed}), nrc::kCertificateInvalidType},
      {"truncated certificate", [&] { return Ask(EncodeVerifyCertificate(truncated)); },
       nrc::kCertificateInvalidFormat},
      {"garbage certificate",
       [&] {
         return Ask(EncodeVerifyCertificate(Bytes{0x30, 0x03, 0x02, 0x01, 0x00}));
       },
       nrc::kCertificateInvalidFormat},
      {"no chain to its CA", verify({{good.chain[0]}, good.key}),
       nrc::kCertificateInvalidChainOfTrust},
      {"length field past the end",
       [&] {
         return Ask({0x29, 0x01, 0x00, 0x10, 0x00, 0x30, 0x82});
       },
       nrc::kIncorrectMessageLength},
      {"bytes after the challenge",
       [&] {
         auto r = EncodeVerifyCertificate(good.ChainDer());
         r.push_back(0x00);
         return Ask(r);
       },
       nrc::kIncorrectMessageLength},
      {"bad proof signature",
       prove(good,
             [&](Bytes c) {
               Bytes sig = good.key.Sign(ProofMessage(c)).value();
               sig[sig.size() - 1] ^= 0x01;
               return sig;
             }),
       nrc::kOwnershipVerificationFailed},
      {"proof by another key",
       prove(good, [&](Bytes c) { return P256().Sign(ProofMessage(c)).value(); }),
       nrc::kOwnershipVerificationFailed},
      {"proof of the challenge without our label",
       prove(good, [&](Bytes c) { return good.key.Sign(c).value(); }),
       nrc::kOwnershipVerificationFailed},
      {"replayed challenge",
       [&] {
         // A proof recorded for one challenge, sent after the ECU handed out a new one.
         Bytes old = Challenge(good.ChainDer());
         Bytes recorded = good.key.Sign(ProofMessage(old)).value();
         Bytes fresh = Challenge(good.ChainDer());
         EXPECT_NE(old, fresh);
         return Ask(EncodeProofOfOwnership(recorded));
       },
       nrc::kOwnershipVerificationFailed},
      {"replayed proof after success",
       [&] {
         Bytes c = Challenge(good.ChainDer());
         auto proof = EncodeProofOfOwnership(good.key.Sign(ProofMessage(c)).value());
         EXPECT_TRUE(Ask(proof).positive());
         Ask({0x29, 0x00});
         return Ask(proof);  // no challenge outstanding
       },
       nrc::kRequestSequenceError},
      {"proof without a challenge", [&] { return Ask(EncodeProofOfOwnership(Bytes(64, 1))); },
       nrc::kRequestSequenceError},
      {"bidirectional (not offered)",
       [&] {
         auto r = EncodeVerifyCertificate(good.ChainDer());
         r[1] = auth::kVerifyCertificateBidirectional;
         return Ask(r);
       },
       nrc::kSubFunctionNotSupported},
  };
  int refused = 0;
  for (const Case& c : corpus) {
    server_.Reset();
    Response r = c.attempt();
    EXPECT_FALSE(r.positive()) << c.name;
    EXPECT_EQ(r.nrc(), c.nrc) << c.name << ": got 0x" << std::hex << int(r.nrc()) << " ("
                              << NrcName(r.nrc()) << "), " << server_.last_authentication_refusal();
    EXPECT_FALSE(server_.Authenticated("programming")) << c.name;
    EXPECT_FALSE(Programming()) << c.name;
    refused += !r.positive() && r.nrc() == c.nrc;
  }
  EXPECT_EQ(refused, static_cast<int>(corpus.size()));
  std::cout << "0x29 negative corpus: " << refused << " of " << corpus.size()
            << " refused with the expected NRC\n";
  // After all of that, the genuine tester still gets in.
  EXPECT_THAT(Authenticate(good), IsOk());
  EXPECT_TRUE(Programming());
}

TEST_F(Authentication, TesterSeesTheNrcInItsError) {
  testing::TestPki foreign{"stranger", kNow};
  Status s = Authenticate(foreign.Tester());
  EXPECT_THAT(s, IsError(Code::kUnavailable, HasSubstr("0x52")));
  EXPECT_THAT(s, IsError(Code::kUnavailable, HasSubstr("InvalidChainOfTrust")));
}

TEST(AuthenticationParse, FieldsAndShortInputs) {
  const Bytes cert{0x30, 0x01, 0x00};
  const Bytes challenge{9, 8, 7};
  std::vector<uint8_t> r = EncodeVerifyCertificate(cert, challenge);
  VerifyCertificateRequest v;
  ASSERT_FALSE(ParseVerifyCertificate(r, &v));
  EXPECT_EQ(Bytes(v.certificate.begin(), v.certificate.end()), cert);
  EXPECT_EQ(Bytes(v.challenge.begin(), v.challenge.end()), challenge);
  for (size_t n = 0; n < r.size(); ++n) {
    auto bad = ParseVerifyCertificate(std::span(r).first(n), &v);
    ASSERT_TRUE(bad.has_value()) << n;
    EXPECT_EQ(bad->nrc, nrc::kIncorrectMessageLength) << n;
  }
  std::vector<uint8_t> p = EncodeProofOfOwnership(Bytes(70, 0xAB));
  ProofOfOwnershipRequest pr;
  ASSERT_FALSE(ParseProofOfOwnership(p, &pr));
  EXPECT_EQ(pr.proof.size(), 70u);
  EXPECT_TRUE(pr.ephemeral_key.empty());
  for (size_t n = 0; n < p.size(); ++n)
    EXPECT_TRUE(ParseProofOfOwnership(std::span(p).first(n), &pr));
}

}  // namespace
}  // namespace aloft::uds
