#include "crypto/keys.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sys/stat.h>

#include "core/file.h"
#include "core/hash.h"
#include "support/matchers.h"
#include "support/temp_dir.h"

namespace aloft::crypto {
namespace {

using ::testing::HasSubstr;

Bytes Hex(std::string_view s) { return HexDecode(s).value(); }

// RFC 8032 section 7.1, TEST 1 (empty message) and TEST 2 (one byte).
TEST(Ed25519, Rfc8032Vectors) {
  struct Case {
    const char *seed, *pub, *msg, *sig;
  } cases[] = {
      {"9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
       "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
       "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf"
       "9b46b"
       "d25bf5f0595bbe24655141438e7a100b"},
      {"4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
       "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
       "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f"
       "11d8c"
       "387b2eaeb4302aeeb00d291612bb0c00"},
  };
  for (const Case& c : cases) {
    auto key = PrivateKey::FromRawEd25519(Hex(c.seed));
    ASSERT_THAT(key, IsOk());
    auto sig = key->Sign(Hex(c.msg));
    ASSERT_THAT(sig, IsOk());
    EXPECT_EQ(HexEncode(*sig), c.sig);
    auto pub = PublicKey::FromRawEd25519(Hex(c.pub));
    ASSERT_THAT(pub, IsOk());
    EXPECT_EQ(pub->keyid(), key->keyid());
    EXPECT_THAT(pub->Verify(Hex(c.msg), *sig), IsOk());
  }
}

TEST(KeyId, IsSha256OfTheSubjectPublicKeyInfoDer) {
  Bytes raw = Hex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
  // RFC 8410: an Ed25519 SubjectPublicKeyInfo is this 12-byte prefix and the raw key.
  Bytes der = Hex("302a300506032b6570032100");
  der.insert(der.end(), raw.begin(), raw.end());
  auto pub = PublicKey::FromRawEd25519(raw);
  ASSERT_THAT(pub, IsOk());
  EXPECT_EQ(pub->Der(), der);
  EXPECT_EQ(pub->keyid(), Sha256Hex(der));
}

class KeyTypes : public ::testing::TestWithParam<KeyType> {};

TEST_P(KeyTypes, SignVerifyAndRejectTampering) {
  auto key = PrivateKey::Generate(GetParam());
  ASSERT_THAT(key, IsOk());
  EXPECT_EQ(key->type(), GetParam());
  Bytes msg(1000, 0x5a);
  auto sig = key->Sign(msg);
  ASSERT_THAT(sig, IsOk());
  EXPECT_THAT(key->public_key().Verify(msg, *sig), IsOk());

  msg[500] ^= 1;
  EXPECT_THAT(key->public_key().Verify(msg, *sig),
              IsError(Code::kUntrusted, HasSubstr("does not verify")));
  msg[500] ^= 1;
  Bytes bad_sig = *sig;
  bad_sig[bad_sig.size() / 2] ^= 0x80;
  EXPECT_THAT(key->public_key().Verify(msg, bad_sig), IsError(Code::kUntrusted, HasSubstr("")));
  auto other = PrivateKey::Generate(GetParam());
  EXPECT_THAT(other->public_key().Verify(msg, *sig), IsError(Code::kUntrusted, HasSubstr("")));
  EXPECT_NE(other->keyid(), key->keyid());
}

TEST_P(KeyTypes, SaveAndLoadRoundTripWithPrivateKeyMode0600) {
  testing::TempDir dir;
  auto key = PrivateKey::Generate(GetParam());
  ASSERT_THAT(SaveKeyPair(*key, dir / "release"), IsOk());
  struct stat st;
  ASSERT_EQ(::stat((dir / "release.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat((dir / "release.pub").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);

  auto loaded = PrivateKey::Load(dir / "release.key");
  ASSERT_THAT(loaded, IsOk());
  EXPECT_EQ(loaded->keyid(), key->keyid());
  auto pub = PublicKey::Load(dir / "release.pub");
  ASSERT_THAT(pub, IsOk());
  EXPECT_EQ(pub->keyid(), key->keyid());
  auto sig = loaded->Sign(AsBytes("hello"));
  EXPECT_THAT(pub->Verify(AsBytes("hello"), *sig), IsOk());

  // A second keygen to the same place keeps the first pair.
  auto again = PrivateKey::Generate(GetParam());
  EXPECT_THAT(SaveKeyPair(*again, dir / "release"),
              IsError(Code::kAlreadyExists, HasSubstr("release")));
  EXPECT_EQ(PublicKey::Load(dir / "release.pub")->keyid(), key->keyid());
}

INSTANTIATE_TEST_SUITE_P(All, KeyTypes, ::testing::Values(KeyType::kEd25519, KeyType::kEcdsaP256),
                         [](const auto& param_info) {
                           return param_info.param == KeyType::kEd25519 ? "ed25519" : "ecdsa_p256";
                         });

TEST(Keys, WrongFilesGiveClearErrors) {
  testing::TempDir dir;
  auto key = PrivateKey::Generate(KeyType::kEd25519);
  ASSERT_THAT(SaveKeyPair(*key, dir / "k"), IsOk());
  EXPECT_THAT(PublicKey::Load(dir / "k.key"),
              IsError(Code::kInvalidArgument, HasSubstr("k.key: is a private key")));
  EXPECT_THAT(PrivateKey::Load(dir / "k.pub"),
              IsError(Code::kInvalidArgument, HasSubstr("k.pub: is a public key")));
  ASSERT_THAT(WriteFileAtomic(dir / "junk", "hello"), IsOk());
  EXPECT_THAT(PublicKey::Load(dir / "junk"),
              IsError(Code::kInvalidArgument, HasSubstr("junk: not a PEM public key")));
  EXPECT_THAT(PublicKey::Load(dir / "missing.pub"),
              IsError(Code::kNotFound, HasSubstr("missing.pub")));
}

TEST(Keys, UnsupportedKeyTypesAreNamed) {
  EVP_PKEY* rsa = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048});
  ASSERT_NE(rsa, nullptr);
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(bio, rsa);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  std::string pem(data, size_t(len));
  BIO_free(bio);
  EVP_PKEY_free(rsa);
  EXPECT_THAT(PublicKey::FromPem(pem, "rsa.pub"),
              IsError(Code::kUnsupported, HasSubstr("rsa.pub: key type 'RSA'")));
  EXPECT_THAT(ParseKeyType("rsa"), IsError(Code::kInvalidArgument, HasSubstr("'rsa'")));
}

}  // namespace
}  // namespace aloft::crypto
