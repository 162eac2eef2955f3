// The simulated ECU's programming behind Authentication (0x29) instead of, or as well as,
// security access (0x27): the tester's flash sequence with a certificate programs the ECU over
// ISO-TP on simulated time; without one, or with one the ECU refuses, nothing is erased and the
// image that ran before still starts (docs/identity.md).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/hash.h"
#include "ecusim/ecu.h"
#include "ecusim/rig.h"
#include "support/matchers.h"
#include "support/temp_dir.h"
#include "uds/authentication.h"
#include "uds/test_pki.h"

namespace aloft::ecusim {
namespace {

using ::testing::HasSubstr;

class EcuAuth : public ::testing::Test {
 protected:
  void Make(ProgrammingAccess access) {
    EcuConfig c{.name = "ecm", .layout = BankLayout::kAb, .app_size = 256 << 10};
    c.access = access;
    c.auth_anchors = {oem_.root};
    auto rig = Rig::Create(std::move(c), {}, dir_.path());
    ASSERT_THAT(rig, IsOk());
    rig_ = std::move(*rig);
    ASSERT_THAT(rig_->ecu().Provision(MakeAppImage("1.0.0", "P1", Bytes(1000, 1))), IsOk());
  }
  Result<uds::FlashReport> Flash(std::shared_ptr<const uds::TesterCredentials> credentials,
                                 bool with_key) {
    uds::FlashPlan plan = rig_->Plan(image_);
    plan.credentials = std::move(credentials);
    if (!with_key) plan.key = nullptr;
    plan.expect_version = "2.0.0";
    auto report = rig_->Flash(std::move(plan));
    // A refused sequence leaves the ECU in the programming session: S3 ends it (a reset).
    rig_->loop().RunFor(std::chrono::seconds(6));
    return report;
  }
  std::string Runs() { return rig_->ecu().status().version; }
  static std::shared_ptr<const uds::TesterCredentials> Tester(const testing::TestPki& pki,
                                                              std::vector<std::string> roles) {
    return std::make_shared<const uds::TesterCredentials>(pki.Tester(std::move(roles)));
  }

  testing::TempDir dir_;
  testing::TestPki oem_{"OEM diagnostics root"};
  std::unique_ptr<Rig> rig_;
  const Bytes image_ = MakeAppImage("2.0.0", "P1", Bytes(100'000, 7));
};

TEST_F(EcuAuth, CertificateInsteadOfSecurityAccess_Programs) {
  Make(ProgrammingAccess::kAuthentication);
  auto report = Flash(Tester(oem_, {"programming"}), /*with_key=*/false);
  ASSERT_THAT(report, IsOk());
  EXPECT_EQ(report->version_after, "2.0.0");
  EXPECT_THAT(report->steps, ::testing::Contains(HasSubstr("29 01, 29 03 -> 69 03 12 as "
                                                           "CN=tester-17")));
  EXPECT_EQ(Runs(), "2.0.0");
}

TEST_F(EcuAuth, WithoutAuthentication_0x34_NothingErased) {
  Make(ProgrammingAccess::kAuthentication);
  // Security access alone no longer opens programming.
  auto report = Flash(nullptr, /*with_key=*/true);
  EXPECT_THAT(report, IsError(Code::kUnavailable, HasSubstr("0x34 (authenticationRequired)")));
  EXPECT_EQ(Runs(), "1.0.0");
  EXPECT_TRUE(rig_->ecu().Bootable());
}

TEST_F(EcuAuth, ForeignCaOrWrongRole_RefusedAtTheCertificate_NothingErased) {
  Make(ProgrammingAccess::kAuthentication);
  testing::TestPki stranger("stranger");
  auto report = Flash(Tester(stranger, {"programming"}), false);
  EXPECT_THAT(report, IsError(Code::kUnavailable, HasSubstr("negative response 0x52")));
  report = Flash(Tester(oem_, {"diagnostics"}), false);
  EXPECT_THAT(report, IsError(Code::kUnavailable, HasSubstr("0x56")));
  EXPECT_EQ(Runs(), "1.0.0");
  EXPECT_TRUE(rig_->ecu().Bootable());
}

TEST_F(EcuAuth, Both_NeedsTheCertificateAndTheKey) {
  Make(ProgrammingAccess::kBoth);
  EXPECT_THAT(Flash(Tester(oem_, {"programming"}), false),
              IsError(Code::kUnavailable, HasSubstr("0x33")));
  EXPECT_THAT(Flash(nullptr, true), IsError(Code::kUnavailable, HasSubstr("0x34")));
  EXPECT_EQ(Runs(), "1.0.0");
  auto report = Flash(Tester(oem_, {"programming", "diagnostics"}), true);
  ASSERT_THAT(report, IsOk());
  EXPECT_EQ(Runs(), "2.0.0");
}

}  // namespace
}  // namespace aloft::ecusim
