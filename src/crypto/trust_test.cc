#include "crypto/trust.h"

#include <gtest/gtest.h>

#include "support/matchers.h"

namespace aloft::crypto {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

class TrustSetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int i = 0; i < 4; ++i) keys_.push_back(PrivateKey::Generate(KeyType::kEd25519).value());
  }
  Signature SignWith(int i, ByteSpan msg) {
    return {keys_[i].keyid(), "ed25519", keys_[i].Sign(msg).value()};
  }
  TrustSet FirstThree(size_t threshold) {
    return TrustSet({keys_[0].public_key(), keys_[1].public_key(), keys_[2].public_key()},
                    threshold);
  }
  std::vector<PrivateKey> keys_;
  Bytes msg_ = Bytes{1, 2, 3};
};

TEST_F(TrustSetTest, TwoOfThreeHoldsWithAnyTwo) {
  TrustSet trust = FirstThree(2);
  SignatureReport report;
  EXPECT_THAT(trust.Check(msg_, {SignWith(0, msg_), SignWith(2, msg_)}, &report), IsOk());
  EXPECT_EQ(report.valid.size(), 2u);
  EXPECT_THAT(trust.Check(msg_, {SignWith(1, msg_), SignWith(2, msg_), SignWith(0, msg_)}), IsOk());
}

TEST_F(TrustSetTest, TwoOfThreeFailsWithOne) {
  TrustSet trust = FirstThree(2);
  EXPECT_THAT(
      trust.Check(msg_, {SignWith(1, msg_)}),
      IsError(Code::kUntrusted, AllOf(HasSubstr("1 of 2 required signatures"),
                                      HasSubstr("valid from " + keys_[1].keyid().substr(0, 16)))));
}

TEST_F(TrustSetTest, TheSameKeyTwiceCountsOnce) {
  TrustSet trust = FirstThree(2);
  EXPECT_THAT(trust.Check(msg_, {SignWith(0, msg_), SignWith(0, msg_)}),
              IsError(Code::kUntrusted, HasSubstr("1 of 2")));
}

TEST_F(TrustSetTest, UntrustedKeysCountForNothingAndAreNamed) {
  TrustSet trust = FirstThree(1);
  EXPECT_THAT(trust.Check(msg_, {SignWith(3, msg_)}),
              IsError(Code::kUntrusted,
                      AllOf(HasSubstr("0 of 1 required signature"),
                            HasSubstr(keys_[3].keyid().substr(0, 16) + "\u2026 is not trusted"),
                            HasSubstr("trusted keys: " + keys_[0].keyid().substr(0, 16)))));
}

TEST_F(TrustSetTest, ABadSignatureFromATrustedKeyIsNamed) {
  TrustSet trust = FirstThree(1);
  Signature s = SignWith(1, msg_);
  Bytes other = {9, 9, 9};
  EXPECT_THAT(trust.Check(other, {s}), IsError(Code::kUntrusted, HasSubstr("does not verify")));
  // A wrong method name does not verify either.
  s.method = "ecdsa-p256-sha256";
  EXPECT_THAT(trust.Check(msg_, {s}), IsError(Code::kUntrusted, HasSubstr("does not verify")));
}

TEST_F(TrustSetTest, NoSignaturesAtAll) {
  EXPECT_THAT(FirstThree(1).Check(msg_, {}), IsError(Code::kUntrusted, HasSubstr("not signed")));
}

TEST_F(TrustSetTest, ImpossibleThresholdsAreRejected) {
  EXPECT_THAT(FirstThree(4).Check(msg_, {SignWith(0, msg_)}),
              IsError(Code::kInvalidArgument, HasSubstr("threshold 4")));
  EXPECT_THAT(FirstThree(0).Validate(), IsError(Code::kInvalidArgument, HasSubstr("threshold 0")));
  EXPECT_THAT(TrustSet().Validate(), IsError(Code::kInvalidArgument, HasSubstr("--trust")));
}

TEST_F(TrustSetTest, AddingAKeyTwiceKeepsOne) {
  TrustSet trust;
  trust.Add(keys_[0].public_key());
  trust.Add(keys_[0].public_key());
  EXPECT_EQ(trust.keys().size(), 1u);
}

}  // namespace
}  // namespace aloft::crypto
