// Vehicle bundles: a description packed into a signed package and read back; the checks a
// bundle must pass against the vehicle before any ECU is touched.
#include "vehicle/bundle.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/file.h"
#include "support/matchers.h"
#include "support/package_fixture.h"
#include "vehicle/inventory.h"

namespace aloft::vehicle {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr const char* kDescription = R"(
[bundle]
name = "demo-car"
version = "2.0.0"
model = "aloft-demo"

[policy]
mode = "forced"
max_duration_s = 900
max_deferrals = 2

[policy.preconditions]
max_speed_kph = 0
gears = ["P", "N"]
power_modes = ["ON"]
min_low_voltage = 11.8
min_soc = 25.5
not_charging = true

[[ecu]]
name = "ecm"
image = "ecm.bin"
version = "4.3.0"
hardware = "H3"
install = "uds-ab"
bus = "powertrain"
request_id = 0x7E0
response_id = 0x7E8
address = 0x80000
security_counter = 7

[[ecu]]
name = "hu"
image = "hu.bin"
version = "26.1.0"
hardware = "HU-3"
bus = "doip"
doip_address = 0x1010
after = ["ecm"]
requires = ["ecm >=4.3.0", "abs >= 7.0.0"]
)";

class BundleTest : public ::testing::Test, public testing::PackageFixture {
 protected:
  // Writes the description (with `edit` applied) and its images; the description's path.
  std::string Describe(const std::string& text = kDescription) {
    EXPECT_THAT(WriteFileAtomic(dir.path() + "/ecm.bin", AsChars(testing::RandomBytes(5000, 1))),
                IsOk());
    EXPECT_THAT(WriteFileAtomic(dir.path() + "/hu.bin", AsChars(testing::RandomBytes(7000, 2))),
                IsOk());
    const std::string path = dir.path() + "/bundle.toml";
    EXPECT_THAT(WriteFileAtomic(path, text), IsOk());
    return path;
  }

  Result<VehicleBundle> PackAndRead(const std::string& description) {
    ALOFT_ASSIGN_OR_RETURN(pkg::PackOptions o, LoadBundleDescription(description));
    o.keys = {&keys[0]};
    o.output = dir.path() + "/car.aloft";
    o.progress = Progress::Mode::kNever;
    ManualClock clock;
    ALOFT_RETURN_IF_ERROR(pkg::Pack(o, clock));
    ALOFT_ASSIGN_OR_RETURN(File f, File::OpenRead(o.output));
    auto trust = Trust({0}, 1);
    ALOFT_ASSIGN_OR_RETURN(auto reader, pkg::PackageReader::Open(f, o.output, &trust));
    return ReadBundle(reader->manifest(), o.output);
  }

  Inventory Car() {
    Inventory inv;
    inv["ecm"] = {.name = "ecm", .answered = true, .hardware = "H3", .software = "4.2.0"};
    inv["hu"] = {.name = "hu", .answered = true, .hardware = "HU-3", .software = "25.11.0"};
    inv["abs"] = {.name = "abs", .answered = true, .hardware = "A1", .software = "7.1.0"};
    return inv;
  }
};

TEST_F(BundleTest, DescriptionPacksIntoASignedBundleThatReadsBack) {
  auto b = PackAndRead(Describe());
  ASSERT_THAT(b, IsOk());
  EXPECT_EQ(b->name, "demo-car");
  EXPECT_EQ(b->version, "2.0.0");
  EXPECT_EQ(b->model, "aloft-demo");
  EXPECT_EQ(b->policy.mode, UpdateMode::kForced);
  EXPECT_EQ(b->policy.max_duration, std::chrono::seconds(900));
  EXPECT_EQ(b->policy.max_deferrals, 2);
  const Preconditions& p = b->policy.preconditions;
  EXPECT_EQ(p.max_speed_kph, 0.0);
  EXPECT_THAT(p.gears, ElementsAre(126, 0));
  EXPECT_THAT(p.power_modes, ElementsAre("ON"));
  EXPECT_EQ(p.min_low_voltage, 11.8);
  EXPECT_EQ(p.min_soc, 25.5);
  EXPECT_TRUE(p.not_charging);
  ASSERT_EQ(b->ecus.size(), 2u);
  const EcuTarget& ecm = b->ecus[0];
  EXPECT_EQ(ecm.method, InstallMethod::kUdsAb);
  EXPECT_EQ(ecm.version, "4.3.0");
  EXPECT_EQ(ecm.hardware, "H3");
  EXPECT_EQ(ecm.request_id, 0x7E0u);
  EXPECT_EQ(ecm.response_id, 0x7E8u);
  EXPECT_EQ(ecm.address, 0x80000u);
  EXPECT_EQ(ecm.security_counter, 7u);
  EXPECT_EQ(ecm.size, 5000u);
  const EcuTarget& hu = b->ecus[1];
  EXPECT_EQ(hu.method, InstallMethod::kUds);
  EXPECT_EQ(hu.doip_address, 0x1010);
  EXPECT_THAT(hu.after, ElementsAre("ecm"));
  ASSERT_EQ(hu.requires_versions.size(), 2u);
  EXPECT_EQ(hu.requires_versions[1].ToString(), "abs >=7.0.0");
  EXPECT_THAT(DependencyOrder(*b), IsOkAndHolds(ElementsAre("ecm", "hu")));
  EXPECT_THAT(CheckBundle(*b, Car(), {}), IsEmpty());
}

TEST_F(BundleTest, DescriptionErrorsNameTheFileTableAndKey) {
  auto bad = [&](const std::string& from, const std::string& to) {
    std::string text = kDescription;
    const size_t at = text.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    text.replace(at, from.size(), to);
    auto o = LoadBundleDescription(Describe(text));
    EXPECT_FALSE(o.ok());
    return o.ok() ? std::string() : o.error().message();
  };
  EXPECT_THAT(bad("mode = \"forced\"", "mode = \"loud\""), HasSubstr("'loud' is not silent"));
  EXPECT_THAT(bad("install = \"uds-ab\"", "install = \"ftp\""),
              HasSubstr("[[ecu]] #1: install 'ftp' is not uds, uds-ab or agent"));
  EXPECT_THAT(bad("version = \"4.3.0\"", "version = \"4.3\""), HasSubstr("[[ecu]] #1: version"));
  EXPECT_THAT(bad("gears = [\"P\", \"N\"]", "gears = [\"X\"]"), HasSubstr("'X' is not a gear"));
  EXPECT_THAT(bad("security_counter = 7", "colour = 7"), HasSubstr("unknown key 'colour'"));
  EXPECT_THAT(bad("after = [\"ecm\"]", "after = [\"bcm\"]"),
              HasSubstr("hu is to follow 'bcm', which is not in the bundle"));
  EXPECT_THAT(bad("security_counter = 7", "after = [\"hu\"]"),
              HasSubstr("a dependency cycle: ecm -> hu -> ecm"));
  EXPECT_THAT(bad("\"ecm >=4.3.0\"", "\"ecm ~4\""), HasSubstr("'ecm ~4': no operator"));
  EXPECT_THAT(bad("doip_address = 0x1010", ""), HasSubstr("needs request_id and response_id"));
}

TEST_F(BundleTest, BadBundlesAreRefusedWithEveryProblemNamed) {
  auto b = PackAndRead(Describe());
  ASSERT_THAT(b, IsOk());

  Inventory inv = Car();
  inv.erase("hu");
  EXPECT_THAT(CheckBundle(*b, inv, {}),
              ElementsAre("hu: unknown ECU (this vehicle has no ECU of that name)"));

  inv = Car();
  inv["ecm"].hardware = "H2";
  EXPECT_THAT(CheckBundle(*b, inv, {}),
              ElementsAre("ecm: wrong hardware: the image is for 'H3', the ECU is 'H2'"));

  inv = Car();
  inv["ecm"].software = "4.10.0";
  EXPECT_THAT(CheckBundle(*b, inv, {}),
              ElementsAre("ecm: a downgrade (4.3.0 is older than the running 4.10.0)"));

  EXPECT_THAT(CheckBundle(*b, Car(), {{"ecm", 8}}),
              ElementsAre("ecm: security counter 7 is below the recorded 8 (anti-rollback)"));

  inv = Car();
  inv["abs"].software = "6.9.9";
  inv["hu"].answered = false;
  inv["hu"].error = "UDS 22: no answer within P2 (150 ms)";
  EXPECT_THAT(CheckBundle(*b, inv, {}),
              ElementsAre("hu: does not answer (UDS 22: no answer within P2 (150 ms))",
                          "hu requires abs >=7.0.0; it would run 6.9.9"));

  VehicleBundle cyclic = *b;
  cyclic.ecus[0].after = {"hu"};
  EXPECT_THAT(CheckBundle(cyclic, Car(), {}), ElementsAre("a dependency cycle: ecm -> hu -> ecm"));
}

TEST_F(BundleTest, APackageWithoutVehicleMembersIsNotABundle) {
  Bytes plain = Pack({{"main", testing::RandomBytes(100, 3)}}, pkg::Compression::kZstd);
  ASSERT_THAT(WriteFileAtomic(dir.path() + "/plain.aloft", AsChars(plain)), IsOk());
  auto f = File::OpenRead(dir.path() + "/plain.aloft");
  ASSERT_THAT(f, IsOk());
  auto reader = pkg::PackageReader::Open(*f, "plain.aloft", nullptr);
  ASSERT_THAT(reader, IsOk());
  EXPECT_THAT(ReadBundle((*reader)->manifest(), "plain.aloft"),
              IsError(Code::kMalformed, HasSubstr("plain.aloft: not a vehicle bundle")));
}

}  // namespace
}  // namespace aloft::vehicle
