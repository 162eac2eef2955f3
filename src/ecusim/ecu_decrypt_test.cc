// An ECU that decrypts its own download (docs/encryption.md, "ECUs that decrypt"): the tester
// sends the payload as the package stores it (zstd, then sealed in 64 KiB AES-256-GCM chunks),
// after the content key wrapped for the ECU's own X25519 key (22 F1 A0, 31 01 02 10); the ECU
// opens each chunk, decompresses and programs, and checks the signed SHA-256. Every way the key
// or the ciphertext can be wrong is refused with the ISO NRC, the old image still starting.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>

#include "core/encoding.h"
#include "core/hash.h"
#include "crypto/key_wrap.h"
#include "ecusim/ecu.h"
#include "ecusim/rig.h"
#include "support/matchers.h"
#include "support/package_fixture.h"
#include "support/temp_dir.h"
#include "uds/flasher.h"

namespace aloft::ecusim {
namespace {

using ::testing::HasSubstr;

Bytes Body(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(i % 97 < 60 ? i % 13 : rng());
  return b;
}

class EcuDecryptTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto k = crypto::RecipientKey::Generate();
    ASSERT_THAT(k, IsOk());
    ecu_key_ = std::make_shared<const crypto::RecipientKey>(std::move(*k));
    EcuConfig c{.name = "hu", .layout = BankLayout::kAb};
    c.decrypt_key = ecu_key_;
    auto rig = Rig::Create(std::move(c), {.rates = {500'000, 2'000'000}, .fd = true}, dir_.path());
    ASSERT_THAT(rig, IsOk());
    rig_ = std::move(*rig);
    ASSERT_THAT(rig_->ecu().Provision(MakeAppImage("1.0.0", "P1", Body(20'000, 1))), IsOk());
    // The new image in an encrypted package, as a bundle holds it.
    image_ = MakeAppImage("2.0.0", "P1", Body(200'000, 2));
    pkgs_.content_key = content_key_;
    const auto entries = testing::TarEntries(pkgs_.Pack({{"hu", image_}}, pkg::Compression::kZstd));
    sealed_ = entries[1].data;
    const auto m = nlohmann::json::parse(AsChars(entries[0].data));
    const std::string salt = m["signed"]["components"][0]["encryption"]["salt"];
    auto raw = Base64Decode(salt);
    ASSERT_THAT(raw, IsOk());
    std::copy(raw->begin(), raw->end(), salt_.begin());
  }
  // The sealed download of the new image, the content key wrapped for `for_key`.
  uds::FlashPlan Plan(const crypto::RecipientKey* for_key = nullptr) {
    uds::FlashPlan plan = rig_->Plan(sealed_);
    plan.sha256 = Sha256(image_);
    plan.expect_version = "2.0.0";
    plan.sealed = uds::SealedTransfer{
        .compression = 1,
        .salt = salt_,
        .image_size = image_.size(),
        .wrap = [this, for_key](std::span<const uint8_t> ecu_public) -> Result<Bytes> {
          if (for_key) return crypto::WrapContentKey(content_key_, for_key->PublicRaw());
          return crypto::WrapContentKey(content_key_, Bytes(ecu_public.begin(), ecu_public.end()));
        }};
    return plan;
  }
  // After a reset: the ECU starts `version`.
  void ExpectRuns(const std::string& version) {
    rig_->ecu().PowerCycle(std::chrono::milliseconds(0));
    rig_->loop().RunFor(std::chrono::seconds(1));
    EXPECT_EQ(rig_->ecu().status().version, version);
  }

  testing::TempDir dir_;
  testing::PackageFixture pkgs_;
  const crypto::ContentKey content_key_ = crypto::NewContentKey();
  std::shared_ptr<const crypto::RecipientKey> ecu_key_;
  std::unique_ptr<Rig> rig_;
  Bytes image_, sealed_;
  crypto::PayloadSalt salt_{};
};

TEST_F(EcuDecryptTest, TheSealedPayloadIsOpenedProgrammedAndStarted) {
  auto report = rig_->Flash(Plan());
  ASSERT_THAT(report, IsOk());
  EXPECT_EQ(report->version_after, "2.0.0");
  EXPECT_EQ(report->bytes, sealed_.size()) << "the ciphertext went over the bus";
  EXPECT_LT(sealed_.size(), image_.size()) << "compressed, then sealed";
  std::string steps;
  for (const auto& s : report->steps) steps += s + "\n";
  EXPECT_THAT(steps, HasSubstr("22 F1 A0 -> 62 F1 A0"));
  EXPECT_THAT(steps, HasSubstr("-> 71 01 02 10 00"));
  EXPECT_THAT(steps, HasSubstr("34 11 44"));  // zstd, encryption method 1
  EXPECT_EQ(rig_->ecu().status().version, "2.0.0");
  EXPECT_EQ(rig_->ecu().status().bank, 1);
}

TEST_F(EcuDecryptTest, AKeyWrappedForAnotherEcu_IsRefusedBeforeAnyErase) {
  auto other = crypto::RecipientKey::Generate();
  ASSERT_THAT(other, IsOk());
  auto report = rig_->Flash(Plan(&*other));
  ASSERT_FALSE(report.ok());
  EXPECT_THAT(report.error().message(), HasSubstr("31 01 02 10"));
  EXPECT_THAT(report.error().message(), HasSubstr("0x31"));
  EXPECT_FALSE(rig_->ecu().status().boot.banks[1].valid) << "nothing erased or written";
  ExpectRuns("1.0.0");
}

// The ciphertext changed in one byte, two chunks swapped, the last chunk dropped: the block
// that completes a bad chunk (or 37, for a missing last chunk) is answered 0x31; the new bank is
// never valid and the old image starts.
class SealedPayloadAttack : public EcuDecryptTest,
                            public ::testing::WithParamInterface<std::string> {};

TEST_P(SealedPayloadAttack, IsRefusedWith0x31_TheOldImageStarts) {
  const size_t S = crypto::kChunkPlain + crypto::kChunkTag;
  ASSERT_GT(sealed_.size(), S + 100) << "two chunks at least";
  if (GetParam() == "tampered") sealed_[S / 2] ^= 0x01;
  if (GetParam() == "truncated") sealed_.resize(S);
  if (GetParam() == "reordered") {
    // The second chunk put first (both whole): chunk 0 fails at once.
    Bytes swapped(sealed_.begin() + static_cast<ptrdiff_t>(S), sealed_.end());
    swapped.insert(swapped.end(), sealed_.begin(), sealed_.begin() + static_cast<ptrdiff_t>(S));
    sealed_ = swapped;
  }
  auto report = rig_->Flash(Plan());
  ASSERT_FALSE(report.ok());
  EXPECT_THAT(report.error().message(), HasSubstr(GetParam() == "truncated" ? "37" : "36"));
  EXPECT_THAT(report.error().message(), HasSubstr("0x31"));
  EXPECT_FALSE(rig_->ecu().status().boot.banks[1].valid);
  ExpectRuns("1.0.0");
}

INSTANTIATE_TEST_SUITE_P(Ciphertext, SealedPayloadAttack,
                         ::testing::Values("tampered", "reordered", "truncated"),
                         [](const auto& p) { return p.param; });

// An ECU without a decryption key: 22 F1 A0 and a data format with encryption are refused.
TEST(EcuDecrypt, AnEcuWithoutAKey_RefusesEncryptedDownloads) {
  testing::TempDir dir;
  auto rig = Rig::Create({.name = "ecm"}, {.rates = {500'000}, .fd = false}, dir.path());
  ASSERT_THAT(rig, IsOk());
  auto r = (*rig)->Ask({0x22, 0xF1, 0xA0});
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->bytes, (Bytes{0x7F, 0x22, 0x31}));
  ASSERT_THAT((*rig)->Unlock(), IsOk());
  r = (*rig)->Ask({0x34, 0x01, 0x44, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00});
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->bytes, (Bytes{0x7F, 0x34, 0x31}));
}

}  // namespace
}  // namespace aloft::ecusim
