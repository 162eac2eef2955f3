// Must-show 1 of issue 4, the MCUboot method: count the flash operations N of a whole update
// (download into flash, install, activate, the bootloader's own writes, confirm, commit), then for
// every i in 1..N run it again with the power cut after operation i, that operation left partial.
// After each cut the device is reset through the boot model and the agent restarted; the device
// must always boot a complete image whose hash is the old or the new one, and the update must
// then finish or be cleanly rolled back, with the server told the truth. The same for an update
// whose health check fails, which covers cuts during the rollback.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "agent/agent.h"
#include "agent/test_device.h"
#include "boot/boot_model.h"
#include "core/hash.h"
#include "flash/sim_flash.h"
#include "support/fault_server.h"
#include "support/matchers.h"
#include "support/package_fixture.h"
#include "support/temp_dir.h"

namespace aloft::agent {
namespace {

using boot::LayoutKind;
using nlohmann::json;

constexpr flash::FlashGeometry kGeometry{256 * 1024, 4096, 8};

struct RunResult;
RunResult Brick(std::string why);

struct RunResult {
  bool bricked = false;
  std::string why;           // for a brick or an inconsistency
  uint64_t operations = 0;   // flash operations over the whole run
  std::string final_status;  // the last feedback status the server got
  bool boots_new = false;    // the final boot starts the new image
  int boots = 0;
  std::string log;  // the bootloader's decisions
};

RunResult Brick(std::string why) {
  RunResult r;
  r.bricked = true;
  r.why = std::move(why);
  return r;
}

class PowerCutTest : public ::testing::TestWithParam<LayoutKind> {
 protected:
  void SetUp() override {
    layout_ = boot::Layout::Compute(GetParam(), kGeometry).value();
    Bytes pkg = pkgs_.Pack({{"main", new_image_}}, pkg::Compression::kZstd);
    package_ = pkg;
    manifest_ = testing::ManifestOf(pkg);
    // The factory image, once: every run starts from a copy.
    auto f = flash::SimFlash::Create(dir_ / "template.flash", kGeometry);
    ASSERT_THAT(f, IsOk());
    ASSERT_THAT(boot::Provision(*f, layout_, old_image_, "1.0.0"), IsOk());
  }

  bool IsOld(const boot::ImageSlot& s) const { return SlotSha256(s) == Sha256Hex(old_image_); }
  bool IsNew(const boot::ImageSlot& s) const { return SlotSha256(s) == Sha256Hex(new_image_); }

  RunResult Run(bool healthy, std::optional<uint64_t> cut_at) {
    RunResult out;
    const std::string run = dir_ / ("run-" + std::to_string(++runs_));
    std::filesystem::create_directories(run + "/state");
    std::filesystem::copy_file(dir_ / "template.flash", run + "/flash");
    testing::FaultServer server;
    testing::OfferPackage(server, package_, manifest_);
    auto final_status = [&]() -> std::string {
      for (const auto& f : server.feedback()) {
        std::string s = f.value("status", "");
        if (s == "success" || s == "failure") return s;
      }
      return "";
    };
    uint64_t ops = 0;
    bool done = false;
    for (int cycle = 0; cycle < 40; ++cycle) {
      auto f = flash::SimFlash::Open(run + "/flash", kGeometry, {}, 1000 + runs_ * 31 + cycle);
      if (!f.ok()) return Brick(f.error().ToString());
      if (cut_at && *cut_at > ops) f->CutPowerAfter(*cut_at - ops);
      auto booted = boot::Boot(*f, layout_);
      if (!booted.ok()) {
        if (f->powered())
          return Brick("boot " + std::to_string(out.boots) + ": " + booted.error().ToString());
        ops += f->operations();  // the cut hit the bootloader's own write: reset again
        f->PowerOn();
        continue;
      }
      ++out.boots;
      out.log += booted->log;
      if (!IsOld(booted->image) && !IsNew(booted->image)) {
        return Brick("booted an image that is neither old nor new: " + DescribeSlot(booted->image));
      }
      if (done) {
        out.boots_new = IsNew(booted->image);
        if (booted->trial) return Brick("the final boot is still a trial");
        ops += f->operations();
        break;
      }
      auto storage = MakeFlashStorage(*f, layout_, booted->slot);
      auto staging = testing::StagingFor(*f, layout_, run + "/state");
      AgentConfig c = testing::DeviceConfig(server, run + "/state", pkgs_.Trust({0}, 1));
      c.boot_id = "boot-" + std::to_string(out.boots);
      c.tries = 3;
      c.health_check = healthy ? "" : "exit 3";
      c.download.checkpoint_bytes = 4096;
      c.download.backoff_initial = std::chrono::milliseconds(1);
      Agent agent(c, {{"main", storage.get()}}, staging.get());
      for (int k = 0; k < 5; ++k) {
        auto step = agent.Run();
        if (!step.ok()) {
          if (!f->powered()) break;  // the cut: reset
          return Brick("agent: " + step.error().ToString());
        }
        if (*step == Agent::Step::kReboot) break;
        if (!final_status().empty() && agent.journal().state == State::kIdle) {
          done = true;
          break;
        }
      }
      ops += f->operations();
      f->PowerOn();
    }
    if (!done) return Brick("the update never finished (" + std::to_string(out.boots) + " boots)");
    out.operations = ops;
    out.final_status = final_status();
    if ((out.final_status == "success") != out.boots_new) {
      return Brick("the server was told " + out.final_status + " but the device boots the " +
                   (out.boots_new ? "new" : "old") + " image");
    }
    return out;
  }

  void CutEverywhere(bool healthy) {
    RunResult clean = Run(healthy, std::nullopt);
    ASSERT_FALSE(clean.bricked) << clean.why;
    EXPECT_EQ(clean.final_status, healthy ? "success" : "failure");
    EXPECT_EQ(clean.boots_new, healthy) << clean.log;
    const uint64_t n = clean.operations;
    ASSERT_GT(n, 20u);
    int bricks = 0, finished = 0, rolled_back = 0;
    for (uint64_t i = 1; i <= n; ++i) {
      RunResult r = Run(healthy, i);
      if (r.bricked) {
        ++bricks;
        ADD_FAILURE() << "cut after operation " << i << " of " << n << ": " << r.why;
        continue;
      }
      (r.boots_new ? finished : rolled_back)++;
    }
    std::printf(
        "layout %s, %s update: cuts: %llu, bricks: %d (then finished: %d, rolled back: %d)\n",
        std::string(boot::LayoutName(GetParam())).c_str(),
        healthy ? "healthy" : "unhealthy (rollback)", static_cast<unsigned long long>(n), bricks,
        finished, rolled_back);
    EXPECT_EQ(bricks, 0);
    // A cut never turns a good update into a failed one: the agent resumes (and reinstalls when
    // the bootloader undid an unfinished install). A bad one never ends installed.
    EXPECT_EQ(healthy ? rolled_back : finished, 0);
  }

  testing::TempDir dir_;
  testing::PackageFixture pkgs_;
  boot::Layout layout_;
  Bytes old_image_ = testing::RandomBytes(40000, 1), new_image_ = testing::RandomBytes(36000, 2);
  Bytes package_;
  json manifest_;
  int runs_ = 0;
};

TEST_P(PowerCutTest, HealthyUpdate_CutAtEveryFlashOperation_NeverBricks) { CutEverywhere(true); }

TEST_P(PowerCutTest, FailedHealthCheck_CutAtEveryFlashOperation_RollsBackCleanly) {
  CutEverywhere(false);
}

INSTANTIATE_TEST_SUITE_P(Layouts, PowerCutTest,
                         ::testing::Values(LayoutKind::kAb, LayoutKind::kBackup),
                         [](const auto& p) { return std::string(boot::LayoutName(p.param)); });

}  // namespace
}  // namespace aloft::agent
