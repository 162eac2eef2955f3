#include "crypto/ca_directory.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>

#include "core/file.h"
#include "support/matchers.h"
#include "support/temp_dir.h"

namespace aloft::crypto {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class CaDir : public ::testing::Test {
 protected:
  std::string Dir() const { return tmp_.path() + "/ca"; }
  testing::TempDir tmp_;
  SystemClock clock_;
};

TEST_F(CaDir, IssuesSignsRevokes_AndOpenSslAgrees) {
  auto ca = CaDirectory::Init(Dir(), "Fleet devices CA", 3650, clock_);
  ASSERT_THAT(ca, IsOk());
  EXPECT_THAT(CaDirectory::Init(Dir(), "again", 10, clock_),
              IsError(Code::kAlreadyExists, HasSubstr("holds a CA already")));

  auto device_key = PrivateKey::Generate(KeyType::kEcdsaP256).value();
  auto csr = CertificateRequest::Make(device_key, "dev-0001").value();
  auto cert = ca->Sign(csr, {.days = 365, .tls_client = true});
  ASSERT_THAT(cert, IsOk());
  EXPECT_EQ(cert->CommonName(), "dev-0001");
  EXPECT_TRUE(VerifyChain({*cert}, {ca->certificate()}, std::chrono::system_clock::now()).ok());
  auto other = ca->Issue({.common_name = "dev-0002", .tls_client = true},
                         PrivateKey::Generate(KeyType::kEcdsaP256)->public_key());
  ASSERT_THAT(other, IsOk());

  ASSERT_THAT(ca->Revoke(cert->SerialHex()), IsOk());
  EXPECT_THAT(ca->Revoke(cert->SerialHex()), IsOk());  // twice: no error
  EXPECT_THAT(ca->Revoke("abcdef"), IsError(Code::kNotFound, HasSubstr("abcdef")));
  auto crl = RevocationList::Load(ca->crl_path());
  ASSERT_THAT(crl, IsOk());
  EXPECT_THAT(crl->VerifiedBy(ca->certificate()), IsOk());
  EXPECT_THAT(crl->Serials(), ElementsAre(cert->SerialHex()));

  // Opened again: the same CA and what it issued.
  auto again = CaDirectory::Open(Dir(), clock_);
  ASSERT_THAT(again, IsOk());
  ASSERT_EQ(again->issued().size(), 2u);
  EXPECT_EQ(again->issued()[0].common_name, "dev-0001");
  EXPECT_TRUE(again->issued()[0].revoked);
  EXPECT_FALSE(again->issued()[1].revoked);

  // OpenSSL's verify with the CRL refuses the revoked certificate and takes the other.
  ASSERT_THAT(WriteFileAtomic(tmp_.path() + "/1.crt", cert->Pem()), IsOk());
  ASSERT_THAT(WriteFileAtomic(tmp_.path() + "/2.crt", other->Pem()), IsOk());
  const std::string verify = "openssl verify -crl_check -CAfile " + ca->cert_path() + " -CRLfile " +
                             ca->crl_path() + " " + tmp_.path();
  EXPECT_NE(std::system((verify + "/1.crt >/dev/null 2>&1").c_str()), 0);
  EXPECT_EQ(std::system((verify + "/2.crt >/dev/null 2>&1").c_str()), 0);
}

TEST_F(CaDir, BadInputsNameTheProblem) {
  auto missing = CaDirectory::Open(Dir(), clock_);
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.error().message(), HasSubstr("ca.key"));
  EXPECT_THAT(CaDirectory::Init(Dir(), "", 10, clock_),
              IsError(Code::kInvalidArgument, HasSubstr("name")));
  auto ca = CaDirectory::Init(Dir(), "CA", 10, clock_);
  ASSERT_THAT(ca, IsOk());
  EXPECT_THAT(ca->Issue({.common_name = ""}, ca->certificate().Key().value()),
              IsError(Code::kInvalidArgument, HasSubstr("name")));
  // A certificate never outlives its CA.
  auto long_lived = ca->Issue({.common_name = "x", .days = 9999},
                              PrivateKey::Generate(KeyType::kEcdsaP256)->public_key());
  ASSERT_THAT(long_lived, IsOk());
  EXPECT_LE(long_lived->NotAfter(), ca->certificate().NotAfter());
  ASSERT_THAT(WriteFileAtomic(Dir() + "/issued.json", "{"), IsOk());
  EXPECT_THAT(CaDirectory::Open(Dir(), clock_),
              IsError(Code::kMalformed, HasSubstr("issued.json")));
}

}  // namespace
}  // namespace aloft::crypto
