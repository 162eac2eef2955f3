// Must-show 3 of issue 4: bad input leaves the active image untouched and the server gets a clear
// error. Each case offers one bad update to a device on simulated flash (ab layout unless said),
// runs the agent until it is idle again, then resets the device through the boot model: it must
// start the factory image, and the failure feedback must name the problem.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "agent/agent.h"
#include "agent/test_device.h"
#include "boot/boot_model.h"
#include "core/hash.h"
#include "flash/sim_flash.h"
#include "pkg/manifest.h"
#include "support/fault_server.h"
#include "support/matchers.h"
#include "support/package_fixture.h"
#include "support/temp_dir.h"

namespace aloft::agent {
namespace {

using boot::LayoutKind;
using nlohmann::json;
using ::testing::HasSubstr;

constexpr flash::FlashGeometry kGeometry{256 * 1024, 4096, 8};

struct Case {
  LayoutKind layout = LayoutKind::kAb;
  std::string installed = "1.0.0";
  uint64_t counter = 0;  // the device's security counter
  std::string device_type = "board-a";
  std::vector<int> trusted = {0};
  size_t threshold = 1;
  std::optional<uint64_t> fail_flash_op;  // an injected flash write error
  flash::FlashGeometry geometry = kGeometry;
  uint64_t max_window = 8 << 20;  // the decoder memory the device allows
};

struct Outcome {
  std::string status, details;  // the final feedback
  bool boots_factory_image = false;
  std::string booted_sha256;  // what the reset started
  int downloads = 0;
  State state = State::kIdle;  // the journal's, after the run
};

class BadInputTest : public ::testing::Test {
 protected:
  // Offers `package` (whose manifest the check-in carries, unless `manifest` is given).
  Outcome Offer(const Case& c, const Bytes& package, json manifest = nullptr) {
    Outcome out;
    const std::string run = dir_ / ("run-" + std::to_string(++runs_));
    std::filesystem::create_directories(run + "/state");
    boot::Layout layout = boot::Layout::Compute(c.layout, c.geometry).value();
    {
      auto f = flash::SimFlash::Create(run + "/flash", c.geometry);
      EXPECT_THAT(boot::Provision(*f, layout, factory_, c.installed, c.counter), IsOk());
    }
    testing::FaultServer server;
    if (manifest.is_null()) manifest = testing::ManifestOf(package);
    testing::OfferPackage(server, package, manifest);
    auto f = flash::SimFlash::Open(run + "/flash", c.geometry);
    auto booted = boot::Boot(*f, layout);
    EXPECT_THAT(booted, IsOk());
    const uint64_t ops_at_boot = f->operations();
    if (c.fail_flash_op) f->FailOperation(ops_at_boot + *c.fail_flash_op);
    auto storage = MakeFlashStorage(*f, layout, booted->slot);
    auto staging = testing::StagingFor(*f, layout, run + "/state");
    AgentConfig cfg =
        testing::DeviceConfig(server, run + "/state", pkgs_.Trust(c.trusted, c.threshold));
    cfg.device_type = c.device_type;
    cfg.max_window = c.max_window;
    Agent agent(cfg, {{"main", storage.get()}}, staging.get());
    auto step = agent.Run();
    EXPECT_THAT(step, IsOk());
    out.state = agent.journal().state;
    for (const auto& fb : server.feedback()) {
      if (fb.value("status", "") == "failure" || fb.value("status", "") == "success") {
        out.status = fb["status"];
        out.details = fb.value("details", json::array()).dump();
      }
    }
    out.downloads = server.artifact_requests();
    // Reset: the bootloader must start the factory image, untouched.
    auto again = flash::SimFlash::Open(run + "/flash", c.geometry);
    auto reboot = boot::Boot(*again, layout);
    EXPECT_THAT(reboot, IsOk());
    out.boots_factory_image =
        reboot.ok() && !reboot->trial && SlotSha256(reboot->image) == Sha256Hex(factory_);
    if (reboot.ok()) out.booted_sha256 = SlotSha256(reboot->image);
    std::printf("  %-40s -> %s %s\n",
                ::testing::UnitTest::GetInstance()->current_test_info()->name(), out.status.c_str(),
                out.details.c_str());
    return out;
  }

  Bytes Package(const Bytes& image, std::vector<int> signers = {0}) {
    return pkgs_.Pack({{"main", image}}, pkg::Compression::kZstd, signers);
  }

  void ExpectRefused(const Outcome& o, const std::string& what, bool downloaded = false) {
    EXPECT_EQ(o.state, State::kIdle);
    EXPECT_EQ(o.status, "failure");
    EXPECT_THAT(o.details, HasSubstr(what));
    EXPECT_TRUE(o.boots_factory_image);
    if (!downloaded) {
      EXPECT_EQ(o.downloads, 0) << "refused before downloading a byte";
    }
  }

  testing::TempDir dir_;
  testing::PackageFixture pkgs_;
  Bytes factory_ = testing::RandomBytes(40000, 1), image_ = testing::RandomBytes(36000, 2);
  int runs_ = 0;
};

TEST_F(BadInputTest, GoodPackage_IsInstalled) {
  // The control case: the same harness with nothing wrong installs (no reboot in this run).
  Outcome o = Offer({}, Package(image_));
  EXPECT_EQ(o.status, "");  // waiting for the reboot, not failed
  EXPECT_EQ(o.state, State::kReboot);
  EXPECT_EQ(o.downloads, 1);
  EXPECT_FALSE(o.boots_factory_image);  // the reset starts the new image on trial
}

TEST_F(BadInputTest, BadSignature) {
  Bytes pkg = Package(image_);
  json m = testing::ManifestOf(pkg);
  std::string sig = m["signatures"][0]["sig"];
  sig[5] = sig[5] == 'A' ? 'B' : 'A';
  m["signatures"][0]["sig"] = sig;
  ExpectRefused(Offer({}, pkg, m), "untrusted");
}

TEST_F(BadInputTest, UntrustedKey) {
  ExpectRefused(Offer({}, Package(image_, {1})), "not trusted");
}

TEST_F(BadInputTest, BelowThreshold) {
  Case c;
  c.trusted = {0, 1};
  c.threshold = 2;
  ExpectRefused(Offer(c, Package(image_, {0})), "1 of 2 required signatures");
}

TEST_F(BadInputTest, WrongHardware) {
  Case c;
  c.device_type = "board-b";
  ExpectRefused(Offer(c, Package(image_)), "wrong hardware");
}

TEST_F(BadInputTest, Downgrade) {
  Case c;
  c.installed = "2.0.0";
  ExpectRefused(Offer(c, Package(image_)), "downgrade refused");
}

TEST_F(BadInputTest, LowerSecurityCounter) {
  Case c;
  c.counter = 5;
  ExpectRefused(Offer(c, Package(image_)), "security counter 0 is below the device's 5");
}

TEST_F(BadInputTest, DeltaBaseMismatch) {
  Bytes pkg = Package(image_);
  auto e = pkg::ParseEnvelope(testing::ManifestOf(pkg).dump());
  ASSERT_THAT(e, IsOk());
  json& comp = e->manifest.signed_json["components"][0];
  comp["type"] = "delta";
  comp["base"] = {{"version", "0.9.0"}, {"size", 40000}, {"sha256", Sha256Hex(image_)}};
  e->signatures.clear();
  ASSERT_THAT(pkg::Sign(*e, pkgs_.keys[0]), IsOk());
  auto text = pkg::SerializeEnvelope(*e);
  ASSERT_THAT(text, IsOk());
  ExpectRefused(Offer({}, pkg, json::parse(*text)), "delta base mismatch");
}

// A new release of the factory image: most of it unchanged.
Bytes NextRelease(Bytes image) {
  for (size_t i = 1000; i < image.size(); i += 4000) image[i] ^= 0x5a;
  Bytes fresh = testing::RandomBytes(3000, 9);
  image.insert(image.begin() + 20000, fresh.begin(), fresh.end());
  return image;
}

TEST_F(BadInputTest, DeltaPackage_IsInstalledInEveryLayout) {
  const Bytes next = NextRelease(factory_);
  const Bytes delta = pkgs_.Delta(
      pkgs_.Pack({{"main", factory_}}, pkg::Compression::kZstd, {0}, "1.0.0"), Package(next));
  const auto entries = testing::TarEntries(delta);
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_LT(entries[1].data.size(), 3000 + 500u) << "the patch is little beyond the new bytes";
  for (LayoutKind layout : {LayoutKind::kAb, LayoutKind::kBackup}) {
    Case c;
    c.layout = layout;
    Outcome o = Offer(c, delta);
    EXPECT_EQ(o.status, "");
    EXPECT_EQ(o.state, State::kReboot);
    EXPECT_EQ(o.booted_sha256, Sha256Hex(next)) << "the reset starts the patched image";
  }
}

// A delta whose patch was damaged before signing: the payload hash matches, the image does not.
TEST_F(BadInputTest, CorruptDeltaPatch_IsRefusedAndTheOldImageRuns) {
  const Bytes next = NextRelease(factory_);
  Bytes delta = pkgs_.Delta(pkgs_.Pack({{"main", factory_}}, pkg::Compression::kZstd, {0}, "1.0.0"),
                            Package(next));
  auto entries = testing::TarEntries(delta);
  ASSERT_EQ(entries.size(), 2u);
  Bytes& patch = entries[1].data;
  patch[patch.size() / 2] ^= 0x40;
  auto e = pkg::ParseEnvelope(std::string(entries[0].data.begin(), entries[0].data.end()));
  ASSERT_THAT(e, IsOk());
  e->manifest.signed_json["components"][0]["payload"]["sha256"] = Sha256Hex(patch);
  e->signatures.clear();
  ASSERT_THAT(pkg::Sign(*e, pkgs_.keys[0]), IsOk());
  auto text = pkg::SerializeEnvelope(*e);
  ASSERT_THAT(text, IsOk());
  entries[0].data.assign(text->begin(), text->end());
  for (LayoutKind layout : {LayoutKind::kAb, LayoutKind::kBackup}) {
    Case c;
    c.layout = layout;
    ExpectRefused(Offer(c, testing::BuildTar(entries), json::parse(*text)), "delta",
                  /*downloaded=*/true);
  }
}

TEST_F(BadInputTest, TruncatedPackage) {
  Bytes pkg = Package(image_);
  json m = testing::ManifestOf(pkg);
  pkg.resize(pkg.size() - 9000);  // offered with its own (truncated) size and hash
  ExpectRefused(Offer({}, pkg, m), "truncated", /*downloaded=*/true);
}

TEST_F(BadInputTest, OversizedImage) {
  ExpectRefused(Offer({}, Package(testing::RandomBytes(200000, 3))), "no space");
}

TEST_F(BadInputTest, CompressionWindowBeyondTheDevicesMemory) {
  Case c;
  c.geometry = {1 << 20, 4096, 8};
  c.max_window = 64 << 10;  // the 300 kB image's window is its size (zstd decodes smaller
                            // images straight into its 128 KiB output buffer, needing none)
  ExpectRefused(Offer(c, Package(testing::RandomBytes(300000, 6))), "decoder window",
                /*downloaded=*/true);
}

TEST_F(BadInputTest, NoSpaceForThePackage) {
  Case c;
  c.layout = LayoutKind::kBackup;  // running, backup and download regions of 60 KiB each
  c.geometry = {48 * 4096, 4096, 8};
  ExpectRefused(Offer(c, Package(testing::RandomBytes(60000, 4))), "no space",
                /*downloaded=*/true);
}

TEST_F(BadInputTest, FlashWriteError_DuringInstall) {
  for (LayoutKind k : {LayoutKind::kAb, LayoutKind::kBackup}) {
    Case c;
    c.layout = k;
    // ab: the 5th program/erase of the install; backup: one well into the running region.
    c.fail_flash_op = k == LayoutKind::kAb ? 5 : 40;
    ExpectRefused(Offer(c, Package(image_)), "flash", /*downloaded=*/true);
  }
}

}  // namespace
}  // namespace aloft::agent
