// The manager against a simulated car (manager_fixture.h): a bundle verified, backed up,
// installed; a delta bundle rebuilt as it goes out; bad bundles refused before any ECU is touched;
// a failing ECU sending all back; a gateway restart converging.
#include "uds/test_pki.h"
#include "vehicle/manager_fixture.h"

namespace aloft::vehicle {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

TEST_F(ManagerTest, InstallsABundle_BackingUpSingleBankEcusFirst) {
  EXPECT_EQ(network_->route("adas"), "fd 0x7E2/0x7EA");
  EXPECT_EQ(network_->route("hu"), "DoIP 0x1010");
  // ecm follows tcm, although its image is larger (larger ones go first otherwise).
  const InstallReport r = Install(
      Bundle("2.0.0", [](pkg::PackOptions& o) { o.components[0].install["after"] = {"tcm"}; }));
  EXPECT_EQ(r.result, InstallResult::kAllNew) << r.Summary();
  EXPECT_EQ(Versions(), "ecm=2.0.0 tcm=2.0.0 adas=2.0.0 hu=2.0.0 ");
  auto at = [&](const std::string& line) {
    return std::find(r.campaign.log.begin(), r.campaign.log.end(), line) - r.campaign.log.begin();
  };
  EXPECT_LT(at("tcm: transferred 2.0.0"), at("ecm: transferred 2.0.0"));
  EXPECT_LT(at("tcm: runs 2.0.0"), at("ecm: runs 2.0.0"));
  EXPECT_LT(at("ecm: runs 2.0.0"), static_cast<ptrdiff_t>(r.campaign.log.size()));
  EXPECT_LT(at("hu: transferred 2.0.0"), at("ecm: transferred 2.0.0")) << "the largest first";
  EXPECT_EQ(r.before.at("tcm").software, "1.0.0");
  EXPECT_EQ(r.after.at("tcm").software, "2.0.0");
  EXPECT_EQ(r.after.at("hu").hardware, "H1");
  // The single-bank ECUs were read back before their erase; the A/B ones need no backup.
  EXPECT_TRUE(stages_.count("tcm backup") && stages_.count("adas backup"));
  EXPECT_FALSE(stages_.count("ecm backup") || stages_.count("hu backup"));
  EXPECT_TRUE(stages_.count("hu transfer"));
  EXPECT_TRUE(std::filesystem::exists(dir.path() + "/gateway/backup/tcm.bin"));
  EXPECT_THAT(r.Summary(), HasSubstr("tcm: 1.0.0 -> 2.0.0"));

  // The next one uses the kept images as backups: no read-back.
  stages_.clear();
  const InstallReport again = Install(Bundle("2.1.0"));
  EXPECT_EQ(again.result, InstallResult::kAllNew) << again.Summary();
  EXPECT_FALSE(stages_.count("tcm backup"));
  EXPECT_EQ(Versions(), "ecm=2.1.0 tcm=2.1.0 adas=2.1.0 hu=2.1.0 ");
}

// A delta bundle: each ECU's image is rebuilt from the gateway's copy of what it runs while it is
// flashed; the ECU's check routine gets the signed SHA-256. A delta whose base an ECU no longer
// runs, or whose base the gateway has no copy of, is refused before any ECU is touched.
TEST_F(ManagerTest, DeltaBundle_ImagesRebuiltAsTheyGoOut_FromTheGatewaysCopies) {
  // The bundles' own versions are not the ECUs'.
  auto release = [this](const std::string& ecus, const std::string& bundle) {
    return Bundle(ecus, [bundle](pkg::PackOptions& o) { o.version = bundle; });
  };
  const std::string full = release("2.0.0", "2026.1.0");
  ASSERT_EQ(Install(full).result, InstallResult::kAllNew);
  pkg::DeltaPackageOptions d;
  d.from = full;
  d.to = release("2.1.0", "2026.2.0");
  d.keys = {&keys[0]};
  d.output = dir.path() + "/car-2.1.0-delta.aloft";
  ManualClock clock;
  auto made = pkg::MakeDeltaPackage(d, clock);
  ASSERT_THAT(made, IsOk());
  uint64_t images = 0, patches = 0;
  for (const auto& c : *made) images += c.image_size, patches += c.patch_size;
  std::printf("delta bundle: %llu bytes of patches for %llu bytes of images\n",
              static_cast<unsigned long long>(patches), static_cast<unsigned long long>(images));
  EXPECT_LT(patches * 10, images);

  const InstallReport r = Install(d.output);
  EXPECT_EQ(r.result, InstallResult::kAllNew) << r.Summary();
  EXPECT_EQ(Versions(), "ecm=2.1.0 tcm=2.1.0 adas=2.1.0 hu=2.1.0 ");

  // Again: every ECU runs 2.1.0 now, not the delta's base.
  const uint64_t ops = FlashOperations();
  const InstallReport again = Install(d.output);
  EXPECT_EQ(again.result, InstallResult::kRefused);
  EXPECT_THAT(again.problems,
              Contains("ecm: the delta applies to 2.0.0; the ECU runs 2.1.0 (it needs a full "
                       "image)"));
  EXPECT_EQ(FlashOperations(), ops);

  // A delta from 2.1.0 while the gateway lost its copy of hu's image (an A/B ECU: nothing to
  // read back from).
  pkg::DeltaPackageOptions e = d;
  e.from = d.to;
  e.to = release("2.2.0", "2026.3.0");
  e.output = dir.path() + "/car-2.2.0-delta.aloft";
  ASSERT_THAT(pkg::MakeDeltaPackage(e, clock), IsOk());
  std::filesystem::remove(dir.path() + "/gateway/backup/hu.bin");
  const InstallReport lost = Install(e.output);
  EXPECT_EQ(lost.result, InstallResult::kRefused);
  EXPECT_THAT(lost.problems, ElementsAre("hu: the gateway holds no copy of its 2.1.0 image for "
                                         "the delta to apply to (it needs a full image)"));
  EXPECT_EQ(FlashOperations(), ops);
}

TEST_F(ManagerTest, BadBundles_AreRefusedBeforeAnyEcuIsTouched) {
  struct Case {
    std::string name, bundle, error;
  };
  // Made with pkg directly: `aloft bundle` refuses to write some of these.
  const std::vector<Case> cases = {
      {"bad signature", Bundle("2.0.0", nullptr, {1}), "signature"},
      {"unknown ECU", Bundle("2.0.0", [](pkg::PackOptions& o) { o.components[3].name = "radio"; }),
       "radio: unknown ECU"},
      {"wrong hardware",
       Bundle("2.0.0", [](pkg::PackOptions& o) { o.components[1].install["hardware"] = "T2"; }),
       "tcm: wrong hardware: the image is for 'T2', the ECU is 'T1'"},
      {"downgrade", Bundle("0.9.0"), "a downgrade (0.9.0 is older than the running 1.0.0)"},
      {"dependency cycle",
       Bundle("2.0.0",
              [](pkg::PackOptions& o) {
                o.components[0].install["after"] = {"hu"};
                o.components[3].install["after"] = {"ecm"};
              }),
       "a dependency cycle: ecm -> hu -> ecm"},
      {"other model",
       Bundle("2.0.0",
              [](pkg::PackOptions& o) {
                o.hardware = {"bus-x"};
                o.extra["vehicle"]["model"] = "bus-x";
              }),
       "the bundle is for vehicle model 'bus-x'; this vehicle is 'test-car'"},
  };
  const uint64_t before = FlashOperations();
  for (const Case& c : cases) {
    const InstallReport r = Install(c.bundle);
    EXPECT_EQ(r.result, InstallResult::kRefused) << c.name;
    ASSERT_FALSE(r.problems.empty()) << c.name;
    EXPECT_THAT(r.problems.front(), HasSubstr(c.error)) << c.name;
  }
  EXPECT_EQ(FlashOperations(), before);
  EXPECT_EQ(Versions(), "ecm=1.0.0 tcm=1.0.0 adas=1.0.0 hu=1.0.0 ");
  EXPECT_THAT(stages_, IsEmpty());
}

// An encrypted bundle (docs/encryption.md): the gateway decrypts it before it flashes, with the
// key its content_key seam gives; without it, or with another package's key, it is refused
// before any ECU is touched.
TEST_F(ManagerTest, EncryptedBundle_DecryptedByTheGatewayBeforeItFlashes) {
  const crypto::ContentKey key = crypto::NewContentKey();
  const std::string bundle = Bundle("2.0.0", [&key](pkg::PackOptions& o) { o.content_key = key; });
  const uint64_t before = FlashOperations();
  InstallReport none = Install(bundle);
  EXPECT_EQ(none.result, InstallResult::kRefused);
  ASSERT_FALSE(none.problems.empty());
  EXPECT_THAT(none.problems.front(), HasSubstr("no key to decrypt it"));
  content_key_for_ = [](const pkg::Manifest&) {
    return Result<std::optional<crypto::ContentKey>>(crypto::NewContentKey());
  };
  StartGateway();
  InstallReport other = Install(bundle);
  EXPECT_EQ(other.result, InstallResult::kRefused);
  ASSERT_FALSE(other.problems.empty());
  EXPECT_THAT(other.problems.front(), HasSubstr("not with the key given"));
  EXPECT_EQ(FlashOperations(), before);
  content_key_for_ = [key](const pkg::Manifest&) {
    return Result<std::optional<crypto::ContentKey>>(key);
  };
  StartGateway();
  const InstallReport r = Install(bundle);
  EXPECT_EQ(r.result, InstallResult::kAllNew) << r.Summary();
  EXPECT_EQ(Versions(), "ecm=2.0.0 tcm=2.0.0 adas=2.0.0 hu=2.0.0 ");
}

// ECUs that decrypt themselves (docs/encryption.md): the description gives adas and hu a key of
// their own; the gateway sends them their payloads as the bundle stores them (compressed and
// sealed), the content key wrapped for each one's key; ecm and tcm get their plain images.
TEST_F(ManagerTest, EncryptedBundle_EcusThatDecryptGetTheCiphertext) {
  RebuildCar([](ecusim::VehicleSpec& spec) {
    for (auto& e : spec.ecus) {
      if (e.config.name != "adas" && e.config.name != "hu") continue;
      e.config.decrypt_key =
          std::make_shared<const crypto::RecipientKey>(crypto::RecipientKey::Generate().value());
    }
  });
  const crypto::ContentKey key = crypto::NewContentKey();
  content_key_for_ = [key](const pkg::Manifest&) {
    return Result<std::optional<crypto::ContentKey>>(key);
  };
  StartGateway();
  const InstallReport r =
      Install(Bundle("2.0.0", [&key](pkg::PackOptions& o) { o.content_key = key; }));
  EXPECT_EQ(r.result, InstallResult::kAllNew) << r.Summary();
  EXPECT_EQ(Versions(), "ecm=2.0.0 tcm=2.0.0 adas=2.0.0 hu=2.0.0 ");
  std::string log;
  for (const std::string& line : r.campaign.log) log += line + "\n";
  EXPECT_THAT(log, HasSubstr("adas: transferred 2.0.0 (sealed: the ECU decrypted it)"));
  EXPECT_THAT(log, HasSubstr("hu: transferred 2.0.0 (sealed: the ECU decrypted it)"));
  EXPECT_THAT(log, HasSubstr("ecm: transferred 2.0.0\n"));
}

TEST_F(ManagerTest, AFailingEcu_SendsEveryEcuBack) {
  wrong_key_.insert("hu");  // it refuses every attempt
  const InstallReport r = Install(Bundle("2.0.0"));
  EXPECT_EQ(r.result, InstallResult::kAllOld) << r.Summary();
  EXPECT_THAT(r.campaign.first_failure, HasSubstr("hu"));
  EXPECT_EQ(Versions(), "ecm=1.0.0 tcm=1.0.0 adas=1.0.0 hu=1.0.0 ");
}

TEST_F(ManagerTest, AGatewayRestartMidCampaign_Converges) {
  const std::string bundle = Bundle("2.0.0");
  bool finished = false;
  manager_->Install(bundle, [&](InstallReport) { finished = true; });
  // Into the transfers (past the backups), then the gateway's power goes.
  loop_.RunUntil([&] { return stages_.count("adas transfer") > 0; }, std::chrono::minutes(10));
  loop_.RunFor(std::chrono::seconds(1));
  ASSERT_FALSE(finished);
  StartGateway();
  std::optional<InstallReport> recovered;
  manager_->Recover([&](InstallReport r) { recovered = std::move(r); });
  loop_.RunUntil([&] { return recovered.has_value(); }, std::chrono::hours(1));
  ASSERT_TRUE(recovered.has_value());
  EXPECT_EQ(recovered->result, InstallResult::kAllOld) << recovered->Summary();
  loop_.RunFor(std::chrono::seconds(2));
  EXPECT_EQ(Versions(), "ecm=1.0.0 tcm=1.0.0 adas=1.0.0 hu=1.0.0 ");
  // And the bundle installs afterwards.
  EXPECT_EQ(Install(bundle).result, InstallResult::kAllNew);
  EXPECT_EQ(Versions(), "ecm=2.0.0 tcm=2.0.0 adas=2.0.0 hu=2.0.0 ");
}

// ECUs that program only after UDS Authentication (0x29): the head unit instead of security
// access, the transmission control unit as well as it (its backup is read after both). Without
// a tester certificate the bundle is refused before any ECU is touched; with one, all-new.
TEST_F(ManagerTest, EcusBehindUdsAuthentication_TheGatewaysTesterCertificate) {
  testing::TestPki oem("OEM root");
  RebuildCar([&](ecusim::VehicleSpec& spec) {
    for (auto& e : spec.ecus) {
      if (e.config.name == "hu") e.config.access = ecusim::ProgrammingAccess::kAuthentication;
      if (e.config.name == "tcm") e.config.access = ecusim::ProgrammingAccess::kBoth;
      e.config.auth_anchors = {oem.root};
    }
  });
  const std::string before = Versions();
  const uint64_t operations = FlashOperations();
  const InstallReport refused = Install(Bundle("2.0.0"));
  EXPECT_EQ(refused.result, InstallResult::kRefused);
  EXPECT_THAT(refused.problems, Contains(HasSubstr("hu: it programs only after UDS "
                                                   "authentication (0x29)")));
  EXPECT_THAT(refused.problems, Contains(HasSubstr("tcm: it programs only after")));
  EXPECT_EQ(Versions(), before);
  EXPECT_EQ(FlashOperations(), operations);

  tester_ = std::make_shared<const uds::TesterCredentials>(oem.Tester({"programming"}));
  StartGateway();
  const InstallReport r = Install(Bundle("2.0.0"));
  EXPECT_EQ(r.result, InstallResult::kAllNew) << r.Summary();
  EXPECT_EQ(Versions(), "ecm=2.0.0 tcm=2.0.0 adas=2.0.0 hu=2.0.0 ");
  EXPECT_TRUE(stages_.count("tcm backup"));
}

}  // namespace
}  // namespace aloft::vehicle
