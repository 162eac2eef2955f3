// Content keys wrapped per device (X25519 + HKDF-SHA256 + AES-256-GCM, docs/encryption.md).
#include "crypto/key_wrap.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "crypto/keys.h"
#include "support/matchers.h"
#include "support/temp_dir.h"

namespace aloft::crypto {
namespace {

using ::testing::_;
using ::testing::HasSubstr;

TEST(KeyWrap, TheDeviceItWasWrappedForUnwrapsIt_81Bytes) {
  auto device = RecipientKey::Generate();
  ASSERT_THAT(device, IsOk());
  const ContentKey key = NewContentKey();
  auto wrapped = WrapContentKey(key, device->PublicRaw());
  ASSERT_THAT(wrapped, IsOk());
  EXPECT_EQ(wrapped->size(), kWrappedKeySize);
  EXPECT_EQ(Base64Encode(*wrapped).size(), 108u);
  EXPECT_THAT(device->Unwrap(*wrapped), IsOkAndHolds(key));
  // Each wrap is new (a new ephemeral key), and each opens.
  auto again = WrapContentKey(key, device->PublicRaw());
  ASSERT_THAT(again, IsOk());
  EXPECT_NE(*again, *wrapped);
  EXPECT_THAT(device->Unwrap(*again), IsOkAndHolds(key));
}

// A content key (bytes 100..131) wrapped by Python's `cryptography` as the format describes,
// for the device key whose X25519 private bytes are 0..31: unwrapped here.
TEST(KeyWrap, KnownAnswer_AWrapMadeByAnIndependentImplementationOpens) {
  auto device = RecipientKey::FromPem(
      "-----BEGIN PRIVATE KEY-----\n"
      "MC4CAQAwBQYDK2VuBCIEIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f\n"
      "-----END PRIVATE KEY-----\n",
      "test key");
  ASSERT_THAT(device, IsOk());
  auto wrapped = HexDecode(
      "01358072d6365880d1aeea329adf9121383851ed21a28e3b75e965d0d2cd166254c2de11b711dc8dfd1bfecdb7"
      "249b2dad5ef61b1e564b002a4f09c30e95841b91ad579432c9c430053edfa9441097eee8");
  ASSERT_THAT(wrapped, IsOk());
  ContentKey want;
  for (size_t i = 0; i < want.size(); ++i) want[i] = static_cast<uint8_t>(100 + i);
  EXPECT_THAT(device->Unwrap(*wrapped), IsOkAndHolds(want));
}

TEST(KeyWrap, ADeviceNotAmongTheRecipientsCannotUnwrap) {
  auto device = RecipientKey::Generate(), other = RecipientKey::Generate();
  ASSERT_THAT(device, IsOk());
  ASSERT_THAT(other, IsOk());
  auto wrapped = WrapContentKey(NewContentKey(), device->PublicRaw());
  ASSERT_THAT(wrapped, IsOk());
  EXPECT_THAT(other->Unwrap(*wrapped),
              IsError(Code::kUntrusted, HasSubstr("not wrapped for this device's key")));
}

TEST(KeyWrap, EveryChangedByteIsRefused) {
  auto device = RecipientKey::Generate();
  ASSERT_THAT(device, IsOk());
  auto wrapped = WrapContentKey(NewContentKey(), device->PublicRaw());
  ASSERT_THAT(wrapped, IsOk());
  for (size_t i = 0; i < wrapped->size(); ++i) {
    Bytes bad = *wrapped;
    bad[i] ^= 0x20;
    EXPECT_FALSE(device->Unwrap(bad).ok()) << "byte " << i;
  }
  EXPECT_THAT(device->Unwrap(ByteSpan(*wrapped).first(80)), IsError(Code::kMalformed, _));
  EXPECT_THAT(device->Unwrap({}), IsError(Code::kMalformed, _));
}

TEST(KeyWrap, KeysAreSavedAndLoaded_PublicKeysParsedAsPemBase64OrRaw) {
  testing::TempDir dir;
  auto device = RecipientKey::Generate();
  ASSERT_THAT(device, IsOk());
  ASSERT_THAT(device->Save(dir.path() + "/dev"), IsOk());
  auto loaded = RecipientKey::Load(dir.path() + "/dev.key");
  ASSERT_THAT(loaded, IsOk());
  EXPECT_EQ(loaded->PublicRaw(), device->PublicRaw());
  EXPECT_THAT(device->Save(dir.path() + "/dev"), IsError(Code::kAlreadyExists, _));

  const Bytes raw = device->PublicRaw();
  EXPECT_THAT(ParseRecipientPublic(device->PublicPem(), "pem"), IsOkAndHolds(raw));
  EXPECT_THAT(ParseRecipientPublic(Base64Encode(raw), "b64"), IsOkAndHolds(raw));
  EXPECT_THAT(ParseRecipientPublic("AAAA", "short"),
              IsError(Code::kInvalidArgument, HasSubstr("short: an X25519 public key is 32")));
  // A signing key is no encryption key.
  auto signing = PrivateKey::Generate(KeyType::kEd25519);
  ASSERT_THAT(signing, IsOk());
  EXPECT_THAT(ParseRecipientPublic(signing->public_key().ToPem(), "release.pub"),
              IsError(Code::kInvalidArgument, HasSubstr("release.pub: not an X25519")));
  EXPECT_THAT(RecipientKey::FromPem(signing->ToPem(), "release.key"),
              IsError(Code::kInvalidArgument, HasSubstr("release.key: not an X25519 key")));
}

}  // namespace
}  // namespace aloft::crypto
