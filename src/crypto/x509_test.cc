#include "crypto/x509.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "core/file.h"
#include "support/matchers.h"

namespace aloft::crypto {
namespace {

using std::chrono::hours;
using ::testing::_;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

const auto kNow = std::chrono::system_clock::from_time_t(1'796'000'000);  // 2026-11

struct Pki {
  PrivateKey root_key = PrivateKey::Generate(KeyType::kEcdsaP256).value();
  PrivateKey mid_key = PrivateKey::Generate(KeyType::kEcdsaP256).value();
  PrivateKey leaf_key = PrivateKey::Generate(KeyType::kEcdsaP256).value();
  Certificate root, mid, leaf;
  Pki() {
    root = Certificate::Issue({.common_name = "root",
                               .not_before = kNow - hours(24),
                               .not_after = kNow + hours(24 * 365),
                               .ca = true},
                              root_key.public_key(), nullptr, root_key)
               .value();
    mid = Certificate::Issue({.common_name = "workshop CA",
                              .not_before = kNow - hours(24),
                              .not_after = kNow + hours(24 * 90),
                              .ca = true},
                             mid_key.public_key(), &root, root_key)
              .value();
    leaf = Certificate::Issue({.common_name = "tester-17",
                               .not_before = kNow - hours(1),
                               .not_after = kNow + hours(8),
                               .roles = {"programming", "diagnostics"}},
                              leaf_key.public_key(), &mid, mid_key)
               .value();
  }
};

TEST(X509, IssuedChainVerifiesAndCarriesRoles) {
  Pki p;
  EXPECT_TRUE(VerifyChain({p.leaf, p.mid}, {p.root}, kNow).ok())
      << VerifyChain({p.leaf, p.mid}, {p.root}, kNow).why;
  EXPECT_EQ(p.leaf.CommonName(), "tester-17");
  EXPECT_THAT(p.leaf.Roles().value(), ElementsAre("programming", "diagnostics"));
  EXPECT_FALSE(p.mid.Roles().has_value());
  auto key = p.leaf.Key();
  ASSERT_THAT(key, IsOk());
  EXPECT_EQ(key->keyid(), p.leaf_key.keyid());
  EXPECT_EQ(p.leaf.NotAfter(), kNow + hours(8));
}

TEST(X509, DerChainRoundTripsAndTruncationIsAFormatError) {
  Pki p;
  Bytes der = p.leaf.Der();
  const Bytes mid = p.mid.Der();
  der.insert(der.end(), mid.begin(), mid.end());
  auto chain = Certificate::ChainFromDer(der, "chain");
  ASSERT_THAT(chain, IsOk());
  ASSERT_EQ(chain->size(), 2u);
  EXPECT_EQ((*chain)[1].CommonName(), "workshop CA");
  for (size_t cut : {size_t{1}, size_t{40}, der.size() - mid.size() + 10, der.size() - 1}) {
    auto r = Certificate::ChainFromDer(ByteSpan(der).first(cut), "chain");
    EXPECT_THAT(r, IsError(Code::kMalformed, HasSubstr("truncated"))) << cut;
  }
  EXPECT_THAT(Certificate::ChainFromDer({}, "chain"), IsError(Code::kMalformed, HasSubstr("no")));
}

TEST(X509, RefusalsAreClassified) {
  Pki p;
  EXPECT_EQ(VerifyChain({p.leaf, p.mid}, {p.root}, kNow + hours(9)).problem, CertProblem::kTime);
  EXPECT_EQ(VerifyChain({p.leaf, p.mid}, {p.root}, kNow - hours(2)).problem, CertProblem::kTime);
  EXPECT_EQ(VerifyChain({p.leaf}, {p.root}, kNow).problem, CertProblem::kChain);
  Pki other;
  EXPECT_EQ(VerifyChain({p.leaf, p.mid}, {other.root}, kNow).problem, CertProblem::kChain);
  // A flipped bit in the leaf's signature (the DER's last bytes).
  Bytes der = p.leaf.Der();
  der[der.size() - 3] ^= 0x01;
  auto forged = Certificate::FromDer(der, "forged");
  ASSERT_THAT(forged, IsOk());
  EXPECT_EQ(VerifyChain({*forged, p.mid}, {p.root}, kNow).problem, CertProblem::kSignature);
  EXPECT_EQ(VerifyChain({p.leaf, p.mid}, {p.root}, kNow, {p.leaf.SerialHex()}).problem,
            CertProblem::kRevoked);
  // An Ed25519 key where ECDSA P-256 is required.
  auto ed = PrivateKey::Generate(KeyType::kEd25519).value();
  auto ed_leaf = Certificate::Issue(
      {.common_name = "ed", .not_before = kNow - hours(1), .not_after = kNow + hours(1)},
      ed.public_key(), &p.mid, p.mid_key);
  ASSERT_THAT(ed_leaf, IsOk());
  EXPECT_EQ(VerifyChain({*ed_leaf, p.mid}, {p.root}, kNow).problem, CertProblem::kType);
}

// The role extension as OpenSSL's command line writes it (docs/identity.md) is read back.
TEST(X509, RoleExtensionFromOpenSslCommandLine) {
  const auto dir = std::filesystem::temp_directory_path() / "aloft-x509-test";
  std::filesystem::create_directories(dir);
  const std::string crt = dir / "t.crt", key = dir / "t.key";
  const std::string cmd =
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
      "-days 1 -subj /CN=cli -addext \"" +
      std::string(kRoleOid) + "=ASN1:UTF8String:programming\" -keyout " + key + " -out " + crt +
      " >/dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  auto certs = Certificate::Load(crt);
  ASSERT_THAT(certs, IsOk());
  EXPECT_THAT((*certs)[0].Roles().value(), ElementsAre("programming"));
  EXPECT_TRUE(VerifyChain(*certs, *certs, std::chrono::system_clock::now()).ok());
  std::filesystem::remove_all(dir);
}

// A device's enrolment: its CSR read back (ours and OpenSSL's command line's), a forged one
// refused, and the certificate issued from it verifying under the CA.
TEST(X509, CertificateRequests) {
  Pki p;
  auto device_key = PrivateKey::Generate(KeyType::kEcdsaP256).value();
  auto csr = CertificateRequest::Make(device_key, "dev-0001");
  ASSERT_THAT(csr, IsOk());
  auto read = CertificateRequest::FromPem(csr->Pem(), "dev.csr");
  ASSERT_THAT(read, IsOk());
  EXPECT_EQ(read->CommonName(), "dev-0001");
  EXPECT_EQ(read->Key()->keyid(), device_key.keyid());
  std::string forged = csr->Pem();
  forged[forged.size() / 2] = forged[forged.size() / 2] == 'A' ? 'B' : 'A';
  EXPECT_THAT(CertificateRequest::FromPem(forged, "forged.csr"),
              IsError(Code::kInvalidArgument, HasSubstr("forged.csr")));
  EXPECT_THAT(CertificateRequest::FromPem("hello", "x.csr"),
              IsError(Code::kInvalidArgument, HasSubstr("not a PEM certificate request")));
  auto cert = Certificate::Issue({.common_name = read->CommonName(),
                                  .not_before = kNow - hours(1),
                                  .not_after = kNow + hours(24 * 365),
                                  .tls_client = true},
                                 read->Key().value(), &p.mid, p.mid_key);
  ASSERT_THAT(cert, IsOk());
  EXPECT_TRUE(VerifyChain({*cert, p.mid}, {p.root}, kNow).ok());

  const auto dir = std::filesystem::temp_directory_path() / "aloft-x509-csr-test";
  std::filesystem::create_directories(dir);
  const std::string file = dir / "cli.csr";
  const std::string cmd =
      "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
      "-subj /CN=dev-cli -keyout " +
      (dir / "cli.key").string() + " -out " + file + " >/dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  auto cli = CertificateRequest::Load(file);
  ASSERT_THAT(cli, IsOk());
  EXPECT_EQ(cli->CommonName(), "dev-cli");
  std::filesystem::remove_all(dir);
}

// A revocation list: its serials read back, its signature checked against the CA, and OpenSSL's
// command line agreeing.
TEST(X509, RevocationLists) {
  Pki p;
  Pki other;
  auto crl = RevocationList::Issue(p.mid, p.mid_key, {p.leaf.SerialHex(), "0a1b2c"}, kNow,
                                   kNow + hours(24 * 7));
  ASSERT_THAT(crl, IsOk());
  auto read = RevocationList::FromPem(crl->Pem(), "crl.pem");
  ASSERT_THAT(read, IsOk());
  EXPECT_THAT(read->Serials(), ::testing::UnorderedElementsAre(p.leaf.SerialHex(), "0a1b2c"));
  EXPECT_THAT(read->VerifiedBy(p.mid), IsOk());
  EXPECT_THAT(read->VerifiedBy(other.mid), IsError(Code::kUntrusted, _));
  EXPECT_EQ(read->NextUpdate(), kNow + hours(24 * 7));
  EXPECT_EQ(VerifyChain({p.leaf, p.mid}, {p.root}, kNow, read->Serials()).problem,
            CertProblem::kRevoked);
  EXPECT_THAT(RevocationList::Issue(p.mid, p.mid_key, {"xyz"}, kNow, kNow),
              IsError(Code::kInvalidArgument, HasSubstr("'xyz' is not hex")));

  const auto dir = std::filesystem::temp_directory_path() / "aloft-x509-crl-test";
  std::filesystem::create_directories(dir);
  ASSERT_THAT(WriteFileAtomic((dir / "crl.pem").string(), crl->Pem()), IsOk());
  ASSERT_THAT(WriteFileAtomic((dir / "ca.pem").string(), p.mid.Pem()), IsOk());
  const std::string cmd = "openssl crl -in " + (dir / "crl.pem").string() + " -CAfile " +
                          (dir / "ca.pem").string() + " -noout 2>&1 | grep -q 'verify OK'";
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace aloft::crypto
