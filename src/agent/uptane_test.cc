// Uptane full verification in the agent, attacked: each test is one attack of TUF 1.0's section
// 1.5.2 ("Goals to protect against specific attacks") or of Uptane 1.0 (section 5.4.4 "Full
// verification", and the attacks of the Uptane design's threat model), played by a server that
// serves what the attacker wants. The repositories are real TUF metadata made with the project's
// writers; the device is a simulated A/B flash device. Each attack ends with the offer refused,
// a clear reason reported, and the device still booting its factory image.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "agent/agent.h"
#include "agent/test_device.h"
#include "boot/boot_model.h"
#include "core/clock.h"
#include "core/encoding.h"
#include "core/hash.h"
#include "crypto/key_wrap.h"
#include "flash/sim_flash.h"
#include "support/fault_server.h"
#include "support/matchers.h"
#include "support/package_fixture.h"
#include "support/temp_dir.h"
#include "support/tuf_fixture.h"
#include "tuf/repository.h"

namespace aloft::agent {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

const auto kStart = std::chrono::system_clock::time_point(std::chrono::seconds(1'800'000'000));

using testing::KeyOf;
using testing::NewKey;
using testing::Repo;

class UptaneAttackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    device_.emplace(dir_.path(), testing::RandomBytes(40000, 1));
    package_ = pkgs_.Pack({{"main", image_}}, pkg::Compression::kZstd);
    testing::OfferPackage(server_, package_, testing::ManifestOf(package_));
    // The roots the device ships with.
    ASSERT_THAT(
        WriteFileAtomic(dir_ / "director.root.json", tuf::FileBytes(director_.Root(1, Now()))),
        IsOk());
    ASSERT_THAT(
        WriteFileAtomic(dir_ / "image.root.json", tuf::FileBytes(image_repo_.Root(1, Now()))),
        IsOk());
    server_.SetFile("/tuf/image/1.root.json", tuf::FileBytes(image_repo_.Root(1, Now())));
    AgentConfig c = testing::DeviceConfig(server_, dir_.path() + "/state", pkgs_.Trust({0}, 1));
    c.uptane = UptaneSettings{dir_ / "director.root.json", dir_ / "image.root.json",
                              dir_ / "state/device.key"};
    c.clock = &clock_;
    agent_.emplace(std::move(c), device_->Modules(), device_->staging.get());
  }

  int64_t Now() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(clock_.Wall().time_since_epoch())
        .count();
  }
  // The package's entry as a targets file lists it (for `ecus`, an ECU's hardware).
  json Entry(int64_t action, const std::string& hardware = "board-a",
             const std::string& serial = "dev") const {
    return tuf::TargetEntry(
        static_cast<int64_t>(package_.size()), Sha256Hex(package_),
        {{"action", action}, {"ecus", {{serial, {{"hardware_id", hardware}}}}}});
  }
  // The Image repository at version `v` listing the package, served.
  Repo::Files ServeImage(int64_t v, std::optional<json> targets = std::nullopt) {
    json t = targets.value_or(
        json{{"fw/1.2.0.aloft", tuf::TargetEntry(static_cast<int64_t>(package_.size()),
                                                 Sha256Hex(package_), json::object())}});
    Repo::Files f = image_repo_.Publish(v, t, Now());
    ServeImageFiles(v, f);
    return f;
  }
  void ServeImageFiles(int64_t v, const Repo::Files& f) {
    server_.SetFile("/tuf/image/timestamp.json", f.timestamp);
    server_.SetFile("/tuf/image/" + std::to_string(v) + ".snapshot.json", f.snapshot);
    server_.SetFile("/tuf/image/" + std::to_string(v) + ".targets.json", f.targets);
  }
  // The Director's answer at version `v` listing `targets` for this device.
  void ServeDirector(int64_t v, const json& targets, bool with_root = true) {
    Repo::Files f = director_.Publish(v, targets, Now());
    json d = {{"timestamp", f.timestamp}, {"snapshot", f.snapshot}, {"targets", f.targets}};
    if (with_root) d["roots"] = json::array();
    server_.SetCheckInExtra({{"director", d}});
  }
  void ServeHonest(int64_t v = 1) {
    ServeImage(v);
    ServeDirector(v, {{"fw/1.2.0.aloft", Entry(1)}});
  }

  // The report of the last refused offer.
  std::string Failure() {
    for (const auto& f : server_.feedback()) {
      if (f.value("status", "") == "failure") return f.dump();
    }
    return "";
  }
  // Runs the agent once; expects the offer refused with `reason` and nothing installed.
  void ExpectRefused(const std::string& reason) {
    auto step = agent_->Run();
    EXPECT_THAT(step, IsOkAndHolds(Agent::Step::kIdle));
    EXPECT_THAT(Failure(), HasSubstr(reason));
    EXPECT_EQ(server_.artifact_requests(), 0) << "refused before a byte was downloaded";
    EXPECT_TRUE(BootsFactoryImage());
  }
  bool BootsFactoryImage() { return device_->BootsFactoryImage(); }

  testing::TempDir dir_;
  testing::PackageFixture pkgs_;
  testing::FaultServer server_;
  ManualClock clock_{kStart};
  Repo image_repo_, director_;
  Bytes image_ = testing::RandomBytes(36000, 2);
  Bytes package_;
  std::optional<testing::SimAbDevice> device_;
  std::optional<Agent> agent_;
};

// The control: with honest repositories the same device installs the update. (Every test below
// changes one thing from this.)
TEST_F(UptaneAttackTest, Honest_BothRepositoriesAgree_TheUpdateIsInstalled) {
  ServeHonest();
  EXPECT_THAT(agent_->Run(), IsOkAndHolds(Agent::Step::kReboot));
  EXPECT_EQ(Failure(), "");
  EXPECT_FALSE(BootsFactoryImage());
  // The check-in carried a signed manifest with the device's key (enrolment) and counter 1.
  auto bodies = server_.check_in_bodies();
  ASSERT_FALSE(bodies.empty());
  EXPECT_EQ(bodies[0]["uptane"]["manifest"]["signed"]["counter"], 1);
  EXPECT_TRUE(bodies[0]["uptane"]["manifest"]["signed"].contains("public_key"));
}

// The version manifest goes with the first check-in (with the device's public key), then only
// when what runs changed; the counter rises with each manifest, not with each check-in.
TEST_F(UptaneAttackTest, TheManifestIsSentWhenTheDirectorHasNotTakenIt) {
  ServeImage(1);
  ServeDirector(1, json::object());
  server_.SetAction(nullptr);
  ASSERT_THAT(agent_->Run(), IsOkAndHolds(Agent::Step::kIdle));
  ASSERT_THAT(agent_->Run(), IsOkAndHolds(Agent::Step::kIdle));
  auto bodies = server_.check_in_bodies();
  ASSERT_EQ(bodies.size(), 2u);
  EXPECT_EQ(bodies[0]["uptane"]["manifest"]["signed"]["counter"], 1);
  EXPECT_FALSE(bodies[1]["uptane"].contains("manifest")) << bodies[1].dump();
  EXPECT_EQ(bodies[1]["uptane"]["have"]["timestamp"], 1);
  EXPECT_EQ(bodies[1]["uptane"]["have"]["root"], 1);
}

// TUF 1.5.2 "Arbitrary installation attacks": the server offers bytes that are not the target
// both repositories list.
TEST_F(UptaneAttackTest, Tuf152_ArbitraryInstallation_AnOfferThatIsNotTheVerifiedTargetIsRefused) {
  Bytes evil = pkgs_.Pack({{"main", testing::RandomBytes(36000, 66)}}, pkg::Compression::kZstd);
  ServeHonest();
  testing::OfferPackage(server_, evil, testing::ManifestOf(evil));  // signed, but not the target
  ExpectRefused("is not the verified target");
}

// TUF 1.5.2 "Endless data attacks": a timestamp.json that never ends is cut off at 16 KiB.
TEST_F(UptaneAttackTest, Tuf152_EndlessData_AnEndlessTimestampIsCutOff) {
  ServeHonest();
  server_.SetFile("/tuf/image/timestamp.json", std::string(4096, ' '), /*endless=*/true);
  ExpectRefused("endless data");
}

// TUF 1.5.2 "Extraneous dependencies attacks": the server offers an update the Director did not
// give this device (here: action 2, while the Director lists only action 7).
TEST_F(UptaneAttackTest, Tuf152_ExtraneousDependencies_AnOfferTheDirectorDoesNotListIsRefused) {
  ServeImage(1);
  ServeDirector(1, {{"fw/1.2.0.aloft", Entry(7)}});
  ExpectRefused("is not in the Director's targets for this device");
}

// TUF 1.5.2 "Indefinite freeze attacks": the Director's answer stays the same, valid when
// signed, past its expiry; the device's clock moved on.
TEST_F(UptaneAttackTest, Tuf152_IndefiniteFreeze_ExpiredDirectorMetadataIsRefused) {
  ServeHonest();
  clock_.Advance(std::chrono::hours(25));
  ExpectRefused("expired");
}

// TUF 1.5.2 "Malicious mirrors preventing updates" and a key outside its role: a mirror serves
// Image targets signed by a key of its own.
TEST_F(UptaneAttackTest, Tuf152_MaliciousMirror_TargetsSignedByAnotherKeyAreRefused) {
  ServeHonest();
  Repo mirror = image_repo_;
  mirror.targets = NewKey();
  ServeImageFiles(1, mirror.Publish(1, {{"fw/1.2.0.aloft", Entry(1)}}, Now()));
  ExpectRefused("targets.json: signed by 0 of the role's keys");
}

// TUF 1.5.2 "Mix-and-match attacks": the snapshot of one time served with the targets of another.
TEST_F(UptaneAttackTest, Tuf152_MixAndMatch_TargetsOfAnotherSnapshotAreRefused) {
  ServeHonest();
  Repo::Files now = image_repo_.Publish(1, {{"fw/1.2.0.aloft", Entry(1)}}, Now());
  Repo::Files other = image_repo_.Publish(1, {{"fw/other.aloft", Entry(1)}}, Now());
  ServeImageFiles(1, {other.targets, now.snapshot, now.timestamp});
  ExpectRefused("mix-and-match");
}

// TUF 1.5.2 "Rollback attacks": after version 3 was trusted, version 2 is served.
TEST_F(UptaneAttackTest, Tuf152_Rollback_AnOlderDirectorTimestampThanTrustedIsRefused) {
  ServeImage(1);
  ServeDirector(3, json::object());
  server_.SetAction(nullptr);
  ASSERT_THAT(agent_->Run(), IsOkAndHolds(Agent::Step::kIdle));  // trusts Director version 3
  testing::OfferPackage(server_, package_, testing::ManifestOf(package_));
  ServeDirector(2, {{"fw/1.2.0.aloft", Entry(1)}});
  ExpectRefused("rollback attack");
}

// TUF 1.5.2 "Compromise of keys below the threshold": an attacker with one of the two root keys
// signs a root that hands the targets role to a key of theirs.
TEST_F(UptaneAttackTest, Tuf152_KeysBelowThreshold_ARootSignedByOneOfTwoRootKeysIsRefused) {
  ServeHonest();
  Repo attacker = image_repo_;
  attacker.targets = NewKey();
  json root = *tuf::NewRoot(2, Now() + tuf::kRootLifetimeMs,
                            {{"root", {{KeyOf(image_repo_.root_keys[0]), KeyOf(NewKey())}, 1}},
                             {"targets", {{KeyOf(attacker.targets)}, 1}},
                             {"snapshot", {{KeyOf(image_repo_.snapshot)}, 1}},
                             {"timestamp", {{KeyOf(image_repo_.timestamp)}, 1}}});
  ASSERT_TRUE(tuf::Sign(root, image_repo_.root_keys[0]).ok());  // one of two
  server_.SetFile("/tuf/image/2.root.json", tuf::FileBytes(root));
  ServeImageFiles(1, attacker.Publish(1, {{"fw/1.2.0.aloft", Entry(1)}}, Now()));
  ExpectRefused("signed by 1 of the role's keys, its threshold is 2");
}

// Uptane 1.0 section 5.4.4.2 / "wrong software installation": the Director lists the image for
// another hardware than this ECU's.
TEST_F(UptaneAttackTest, Uptane5442_WrongSoftwareInstallation_ATargetForOtherHardwareIsRefused) {
  ServeImage(1);
  ServeDirector(1, {{"fw/1.2.0.aloft", Entry(1, "board-b")}});
  ExpectRefused("wrong software installation");
}

// Uptane 1.0 section 5.4.4.3: a compromised Director (online key) lists an image the offline
// Image repository does not sign.
TEST_F(UptaneAttackTest,
       Uptane5443_CompromisedDirector_AnImageTheImageRepositoryDoesNotListIsRefused) {
  Bytes evil = pkgs_.Pack({{"main", testing::RandomBytes(36000, 66)}}, pkg::Compression::kZstd);
  ServeImage(1);
  ServeDirector(
      1, {{"fw/1.2.0.aloft",
           tuf::TargetEntry(static_cast<int64_t>(evil.size()), Sha256Hex(evil),
                            {{"action", 1}, {"ecus", {{"dev", {{"hardware_id", "board-a"}}}}}})}});
  testing::OfferPackage(server_, evil, testing::ManifestOf(evil));
  ExpectRefused("the Director and the Image repository disagree");
}

// Uptane's drop-request attack: the server (or a man in the middle) drops the Director's part of
// the answer; the device installs nothing on the server's word alone.
TEST_F(UptaneAttackTest, Uptane_DropRequest_AnAnswerWithoutDirectorMetadataIsRefused) {
  ServeImage(1);
  ExpectRefused("sent no Director metadata");
}

// An encrypted package (docs/encryption.md): the content key wrapped for this device is signed
// into its Director target; that one is used, whatever the (unsigned) action carries.
TEST_F(UptaneAttackTest, AnEncryptedPackage_OpensWithTheWrapTheDirectorSigned) {
  const crypto::ContentKey content = crypto::NewContentKey();
  pkgs_.content_key = content;
  package_ = pkgs_.Pack({{"main", image_}}, pkg::Compression::kZstd);
  pkgs_.content_key.reset();
  auto mine = crypto::RecipientKey::Generate(), other = crypto::RecipientKey::Generate();
  ASSERT_THAT(mine, IsOk());
  ASSERT_THAT(other, IsOk());
  std::filesystem::create_directories(dir_ / "state");
  ASSERT_THAT(mine->Save(dir_ / "state/encryption"), IsOk());
  auto wrap = [&](const crypto::RecipientKey& k) {
    return json{
        {"key_id", crypto::ContentKeyId(content)},
        {"wrapped_key", Base64Encode(crypto::WrapContentKey(content, k.PublicRaw()).value())}};
  };
  json action = testing::PackageAction(server_, package_, testing::ManifestOf(package_));
  action["encryption"] = wrap(*other);  // not this device's: the Director's is taken
  server_.SetArtifact(package_);
  server_.SetAction(action);
  ServeImage(1);
  json entry = Entry(1);
  entry["custom"]["encryption"] = wrap(*mine);
  ServeDirector(1, {{"fw/1.2.0.aloft", entry}});
  EXPECT_THAT(agent_->Run(), IsOkAndHolds(Agent::Step::kReboot));
  EXPECT_EQ(Failure(), "");
  EXPECT_FALSE(BootsFactoryImage());
}

}  // namespace
}  // namespace aloft::agent
