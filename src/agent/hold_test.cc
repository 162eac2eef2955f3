// The agent's hold state: a verified package waits for the server's word. `install: false`
// (download-only, or outside a maintenance window) keeps it staged without touching the active
// image and without downloading again; `install: true` installs it; a cancel, or an action the
// server no longer offers, drops it (a cancel is acknowledged with "canceled").
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

using nlohmann::json;

class HoldTest : public ::testing::Test {
 protected:
  void SetUp() override {
    device_.emplace(dir_.path(), testing::RandomBytes(40000, 1));
    package_ = pkgs_.Pack({{"main", image_}}, pkg::Compression::kZstd);
    testing::OfferPackage(server_, package_, testing::ManifestOf(package_));
    agent_.emplace(testing::DeviceConfig(server_, dir_.path() + "/state", pkgs_.Trust({0}, 1)),
                   device_->Modules(), device_->staging.get());
  }

  // The offered action with `install` set.
  void Offer(bool install) {
    json a = {{"id", 1},
              {"release", "fw"},
              {"version", testing::ManifestOf(package_)["signed"]["version"]},
              {"mode", install ? "forced" : "download-only"},
              {"install", install},
              {"download",
               {{"url", server_.artifact_url()},
                {"size", package_.size()},
                {"sha256", Sha256Hex(package_)}}},
              {"manifest", testing::ManifestOf(package_)}};
    server_.SetAction(a);
  }

  std::vector<std::string> Statuses() {
    std::vector<std::string> out;
    for (const auto& f : server_.feedback()) out.push_back(f.value("status", ""));
    return out;
  }

  // What a reset starts now: true when it is the factory image, untouched.
  bool BootsFactoryImage() { return device_->BootsFactoryImage(); }

  testing::TempDir dir_;
  testing::PackageFixture pkgs_;
  testing::FaultServer server_;
  Bytes image_ = testing::RandomBytes(36000, 2);
  Bytes package_;
  std::optional<testing::SimAbDevice> device_;
  std::optional<Agent> agent_;
};

TEST_F(HoldTest, InstallFalse_HoldsTheVerifiedPackage_ThenInstallsWhenTold) {
  Offer(false);
  EXPECT_THAT(agent_->Run(), IsOkAndHolds(Agent::Step::kIdle));
  EXPECT_EQ(agent_->journal().state, State::kHold);
  EXPECT_EQ(server_.artifact_requests(), 1);
  EXPECT_THAT(Statuses(), ::testing::Contains("downloaded"));
  EXPECT_THAT(Statuses(), ::testing::Not(::testing::Contains("installing")));
  EXPECT_TRUE(BootsFactoryImage()) << "nothing installed while the server says not yet";

  // Still not: the next poll asks again and downloads nothing.
  const int check_ins = server_.check_ins();
  EXPECT_THAT(agent_->Run(), IsOkAndHolds(Agent::Step::kIdle));
  EXPECT_EQ(agent_->journal().state, State::kHold);
  EXPECT_EQ(server_.check_ins(), check_ins + 1);
  EXPECT_EQ(server_.artifact_requests(), 1);

  Offer(true);
  EXPECT_THAT(agent_->Run(), IsOkAndHolds(Agent::Step::kReboot));
  EXPECT_EQ(server_.artifact_requests(), 1) << "installed from the staged package";
  EXPECT_THAT(Statuses(), ::testing::Contains("installed"));
  EXPECT_FALSE(BootsFactoryImage()) << "the reset starts the new image on trial";
}

TEST_F(HoldTest, CancelWhileHeld_DropsItAndSaysCanceled) {
  Offer(false);
  EXPECT_THAT(agent_->Run(), IsOkAndHolds(Agent::Step::kIdle));
  ASSERT_EQ(agent_->journal().state, State::kHold);
  server_.SetAction({{"id", 1}, {"release", "fw"}, {"state", "canceling"}, {"cancel", true}});
  EXPECT_THAT(agent_->Run(), IsOkAndHolds(Agent::Step::kIdle));
  EXPECT_EQ(agent_->journal().state, State::kIdle);
  EXPECT_FALSE(agent_->journal().offer);
  EXPECT_EQ(Statuses().back(), "canceled");
  EXPECT_TRUE(BootsFactoryImage());
  // Idle again: the next check-in finds nothing and stays idle.
  server_.SetAction(nullptr);
  EXPECT_THAT(agent_->Run(), IsOkAndHolds(Agent::Step::kIdle));
  EXPECT_EQ(agent_->journal().state, State::kIdle);
}

TEST_F(HoldTest, ActionGoneWhileHeld_DropsItQuietly) {
  Offer(false);
  EXPECT_THAT(agent_->Run(), IsOkAndHolds(Agent::Step::kIdle));
  ASSERT_EQ(agent_->journal().state, State::kHold);
  const size_t reports = server_.feedback().size();
  server_.SetAction(nullptr);  // closed at the server (canceled before it knew, expired)
  EXPECT_THAT(agent_->Run(), IsOkAndHolds(Agent::Step::kIdle));
  EXPECT_EQ(agent_->journal().state, State::kIdle);
  EXPECT_EQ(server_.feedback().size(), reports) << "nothing to report on a closed action";
  EXPECT_TRUE(BootsFactoryImage());
}

TEST_F(HoldTest, CancelOfAnActionNeverHeld_IsAcknowledged) {
  server_.SetAction({{"id", 7}, {"release", "fw"}, {"state", "canceling"}, {"cancel", true}});
  EXPECT_THAT(agent_->Run(), IsOkAndHolds(Agent::Step::kIdle));
  EXPECT_EQ(agent_->journal().state, State::kIdle);
  ASSERT_EQ(server_.feedback().size(), 1u);
  EXPECT_EQ(Statuses().back(), "canceled");
  EXPECT_EQ(server_.artifact_requests(), 0);
}

TEST_F(HoldTest, InstallRefusedByTheServer_KeepsHolding_ThenInstallsWhenAllowed) {
  // The check-in said "install", and the maintenance window closed before the install began:
  // aloftd refuses "installing" with 409. The agent must not touch the slot.
  Offer(true);
  server_.RefuseFeedback("installing", 409,
                         "action 1 may not install outside its rollout's maintenance window");
  EXPECT_THAT(agent_->Run(), IsOkAndHolds(Agent::Step::kIdle));
  EXPECT_EQ(agent_->journal().state, State::kHold);
  EXPECT_THAT(agent_->held_reason(), ::testing::HasSubstr("maintenance window"));
  EXPECT_THAT(Statuses(), ::testing::Not(::testing::Contains("installed")));
  EXPECT_TRUE(BootsFactoryImage()) << "installed although the server refused";

  // Refused again at the next poll: still held, nothing downloaded again.
  EXPECT_THAT(agent_->Run(), IsOkAndHolds(Agent::Step::kIdle));
  EXPECT_EQ(agent_->journal().state, State::kHold);
  EXPECT_TRUE(BootsFactoryImage());
  EXPECT_EQ(server_.artifact_requests(), 1);

  // The window opens: the install goes ahead from the staged package.
  server_.RefuseFeedback("installing", 0);
  EXPECT_THAT(agent_->Run(), IsOkAndHolds(Agent::Step::kReboot));
  EXPECT_TRUE(agent_->held_reason().empty());
  EXPECT_EQ(server_.artifact_requests(), 1);
  EXPECT_THAT(Statuses(), ::testing::Contains("installed"));
  EXPECT_FALSE(BootsFactoryImage());
}

}  // namespace
}  // namespace aloft::agent
