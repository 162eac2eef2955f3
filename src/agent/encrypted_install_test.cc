// Encrypted packages on a device (docs/encryption.md): the agent enrols its own encryption key
// with its first check-in, opens the content key the server wrapped for it, and decrypts while it
// installs. Every way the payload or its key can be wrong ends with the offer refused, the reason
// reported, and the factory image still booting: a key wrapped for another device, none at all,
// the key of another package (all before a byte is downloaded), a tampered, reordered or
// truncated payload (at verification, before the slot is switched).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "agent/agent.h"
#include "agent/test_device.h"
#include "boot/boot_model.h"
#include "core/encoding.h"
#include "core/hash.h"
#include "crypto/aead_stream.h"
#include "crypto/key_wrap.h"
#include "flash/sim_flash.h"
#include "support/fault_server.h"
#include "support/matchers.h"
#include "support/package_fixture.h"
#include "support/temp_dir.h"

namespace aloft::agent {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

class EncryptedInstallTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Room for an image of three chunks.
    device_.emplace(dir_.path(), factory_, flash::FlashGeometry{1024 * 1024, 4096, 8});
    pkgs_.content_key = content_key_;
    package_ = pkgs_.Pack({{"main", image_}}, pkg::Compression::kZstd);
    // The device's key pair, as the agent would make it on its first start.
    auto key = crypto::RecipientKey::Generate();
    ASSERT_THAT(key, IsOk());
    ASSERT_THAT(key->Save(dir_.path() + "/state/encryption"), IsOk());
    device_key_.emplace(std::move(key).value());
    agent_.emplace(testing::DeviceConfig(server_, dir_.path() + "/state", pkgs_.Trust({0}, 1)),
                   device_->Modules(), device_->staging.get());
  }

  // Offers `package` with `wrapped` (base64; "" for none) as its encryption.wrapped_key.
  void Offer(const Bytes& package, const std::string& wrapped) {
    server_.SetArtifact(package);
    json a = testing::PackageAction(server_, package, testing::ManifestOf(package));
    a["encryption"] = {{"key_id", crypto::ContentKeyId(content_key_)}};
    if (!wrapped.empty()) a["encryption"]["wrapped_key"] = wrapped;
    server_.SetAction(a);
  }
  std::string WrappedFor(const crypto::RecipientKey& device, const crypto::ContentKey& key) {
    return Base64Encode(crypto::WrapContentKey(key, device.PublicRaw()).value());
  }
  std::string Failure() const {
    for (const auto& f : server_.feedback()) {
      if (f.value("status", "") == "failure") return f.dump();
    }
    return "";
  }
  // The offer of `package` is refused with `reason`; the factory image still boots.
  void ExpectRefused(const std::string& reason, bool downloaded) {
    auto step = agent_->Run();
    EXPECT_THAT(step, IsOkAndHolds(Agent::Step::kIdle));
    EXPECT_THAT(Failure(), HasSubstr(reason));
    if (!downloaded) {
      EXPECT_EQ(server_.artifact_requests(), 0) << "refused before the download";
    }
    EXPECT_TRUE(device_->BootsFactoryImage());
  }
  // The package with its encrypted payload entry changed by `edit`.
  Bytes Broken(const std::function<void(Bytes&)>& edit) {
    auto entries = testing::TarEntries(package_);
    edit(entries[1].data);
    return testing::BuildTar(entries);
  }

  testing::TempDir dir_;
  testing::PackageFixture pkgs_;
  testing::FaultServer server_;
  const crypto::ContentKey content_key_ = crypto::NewContentKey();
  const Bytes factory_ = testing::RandomBytes(40000, 1);
  Bytes image_ = testing::RandomBytes(150'000, 2), package_;
  std::optional<crypto::RecipientKey> device_key_;
  std::optional<testing::SimAbDevice> device_;
  std::optional<Agent> agent_;
};

// The control: the key wrapped for this device opens the payload; the new image boots on trial.
// The device's public key went with its first check-in only.
TEST_F(EncryptedInstallTest, TheDeviceItIsWrappedForInstallsIt) {
  server_.SetAction(nullptr);
  ASSERT_THAT(agent_->Run(), IsOkAndHolds(Agent::Step::kIdle));
  Offer(package_, WrappedFor(*device_key_, content_key_));
  ASSERT_THAT(agent_->Run(), IsOkAndHolds(Agent::Step::kReboot));
  EXPECT_EQ(Failure(), "");
  EXPECT_FALSE(device_->BootsFactoryImage());
  const auto bodies = server_.check_in_bodies();
  ASSERT_GE(bodies.size(), 2u);
  EXPECT_EQ(bodies[0].value("encryption_key", ""), Base64Encode(device_key_->PublicRaw()));
  EXPECT_FALSE(bodies[1].contains("encryption_key"));
}

TEST_F(EncryptedInstallTest, AKeyWrappedForAnotherDeviceIsRefusedBeforeTheDownload) {
  auto other = crypto::RecipientKey::Generate();
  ASSERT_THAT(other, IsOk());
  Offer(package_, WrappedFor(*other, content_key_));
  ExpectRefused("not wrapped for this device's key", /*downloaded=*/false);
}

TEST_F(EncryptedInstallTest, NoWrappedKeyIsRefusedBeforeTheDownload) {
  Offer(package_, "");
  ExpectRefused("the server sent no key wrapped for this device", /*downloaded=*/false);
}

TEST_F(EncryptedInstallTest, TheKeyOfAnotherPackageIsRefusedBeforeTheDownload) {
  Offer(package_, WrappedFor(*device_key_, crypto::NewContentKey()));
  ExpectRefused("but the key wrapped for this device is", /*downloaded=*/false);
}

// A delta of an encrypted release (docs/encryption.md): made from the base's plain image (opened
// with the old release's key), sealed with the new release's key, so the key wrapped for the
// device for that release opens it; opened and patched while it installs. The patch is not in
// the clear in the package.
TEST_F(EncryptedInstallTest, AnEncryptedDelta_IsOpenedAndPatchedWhileItInstalls) {
  const crypto::ContentKey old_key = crypto::NewContentKey();
  pkgs_.content_key = old_key;
  const Bytes base = pkgs_.Pack({{"main", factory_}}, pkg::Compression::kZstd, {0}, "1.0.0");
  Bytes next = factory_;
  for (size_t i = 1000; i < next.size(); i += 4000) next[i] ^= 0x5a;
  pkgs_.content_key = content_key_;
  const Bytes target = pkgs_.Pack({{"main", next}}, pkg::Compression::kZstd, {0}, "1.2.0");
  // Without the keys: refused, naming what is missing.
  EXPECT_THROW(pkgs_.Delta(base, target), std::runtime_error);
  const Bytes delta = pkgs_.Delta(base, target, {0}, old_key, content_key_);
  const json m = testing::ManifestOf(delta);
  const json& c = m["signed"]["components"][0];
  EXPECT_EQ(c["type"], "delta");
  EXPECT_EQ(c["encryption"]["key_id"], crypto::ContentKeyId(content_key_));
  EXPECT_EQ(c["payload"]["size"], crypto::SealedSize(c["encryption"]["size"].get<uint64_t>()));
  const auto entries = testing::TarEntries(delta);
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_LT(entries[1].data.size(), 2000u) << "a delta, not the image";

  Offer(delta, WrappedFor(*device_key_, content_key_));
  ASSERT_THAT(agent_->Run(), IsOkAndHolds(Agent::Step::kReboot));
  EXPECT_EQ(Failure(), "");
  auto again = flash::SimFlash::Open(dir_.path() + "/flash", device_->geometry);
  ASSERT_THAT(again, IsOk());
  auto booted = boot::Boot(*again, device_->layout);
  ASSERT_THAT(booted, IsOk());
  EXPECT_EQ(SlotSha256(booted->image), Sha256Hex(next)) << "the reset starts the patched image";
}

// A server (or mirror) that serves other bytes under the offer's hash: a chunk changed, two
// chunks swapped, the last chunk dropped. The download's hash is the server's word; the chunk
// tags and the signed manifest refuse each one before the slot is switched.
class EncryptedPayloadAttack : public EncryptedInstallTest,
                               public ::testing::WithParamInterface<std::string> {};

TEST_P(EncryptedPayloadAttack, IsRefusedAndTheFactoryImageStillBoots) {
  const size_t S = crypto::kChunkPlain + crypto::kChunkTag;
  const Bytes broken = Broken([&](Bytes& p) {
    ASSERT_GT(p.size(), 2 * S);
    if (GetParam() == "tampered") p[100] ^= 0x01;
    if (GetParam() == "reordered") {
      std::swap_ranges(p.begin(), p.begin() + static_cast<ptrdiff_t>(S),
                       p.begin() + static_cast<ptrdiff_t>(S));
    }
    if (GetParam() == "truncated") p.resize(2 * S);  // the last chunk dropped
  });
  Offer(broken, WrappedFor(*device_key_, content_key_));
  ExpectRefused(GetParam() == "truncated" ? "bytes in the archive" : "sha256 mismatch",
                /*downloaded=*/true);
}

INSTANTIATE_TEST_SUITE_P(Payloads, EncryptedPayloadAttack,
                         ::testing::Values("tampered", "reordered", "truncated"),
                         [](const auto& p) { return p.param; });

}  // namespace
}  // namespace aloft::agent
