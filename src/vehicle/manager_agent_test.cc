// ECUs that run aloft-agent themselves, in a campaign with the simulated car's UDS ECUs: their
// agents (the agent library on a simulated A/B flash) talk to the gateway's in-car device API over
// loopback while the campaign runs on simulated time.
#include "vehicle/manager_fixture.h"

namespace aloft::vehicle {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// An ECU that runs aloft-agent itself: offered its package through the gateway's in-car device
// API, it downloads and verifies it with the other ECUs' transfers, and installs it last, once
// every other ECU runs its new version (it commits by itself: nothing may fail after it).
TEST_F(ManagerTest, AgentEcu_InstallsItsOwnPackageLast_AllNew) {
  testing::AgentEcuDevice tcu2(dir.path() + "/tcu2", agent_ecus_->port(), "tcu2", "tcu2-token",
                               Trust({0}, 1));
  ASSERT_THAT(tcu2.Step(), IsOk());  // it checks in: the gateway knows what it runs
  const InstallReport r = InstallWithAgent(tcu2, WithAgentEcu("2.0.0"));
  EXPECT_EQ(r.result, InstallResult::kAllNew) << r.Summary();
  EXPECT_EQ(r.before.at("tcu2").software, "1.0.0");
  EXPECT_EQ(Versions(), "ecm=2.0.0 tcm=2.0.0 adas=2.0.0 hu=2.0.0 ");
  EXPECT_EQ(agent_ecus_->state("tcu2").status, "success");
  ASSERT_THAT(tcu2.Step(), IsOk());
  EXPECT_EQ(agent_ecus_->state("tcu2").versions.at("main"), "2.0.0");
  auto at = [&](const std::string& line) {
    return std::find(r.campaign.log.begin(), r.campaign.log.end(), line) - r.campaign.log.begin();
  };
  EXPECT_LT(at("tcu2: transferred 2.0.0"), at("ecm: runs 2.0.0"));
  for (const char* other : {"ecm", "tcm", "adas", "hu"}) {
    EXPECT_LT(at(std::string(other) + ": runs 2.0.0"), at("tcu2: its agent may install 2.0.0"))
        << other;
  }
  EXPECT_LT(at("tcu2: its agent may install 2.0.0"), at("tcu2: runs 2.0.0"));
}

// The gateway restarts while the agent ECU installs, the last wave (every other ECU runs its new
// version): the agent commits meanwhile, so the restarted gateway goes forward, not back.
TEST_F(ManagerTest, AgentEcu_GatewayRestartsWhileItInstalls_TheCampaignGoesForward) {
  testing::AgentEcuDevice tcu2(dir.path() + "/tcu2", agent_ecus_->port(), "tcu2", "tcu2-token",
                               Trust({0}, 1));
  ASSERT_THAT(tcu2.Step(), IsOk());
  manager_->Install(WithAgentEcu("2.0.0"), [](InstallReport) {});
  for (int i = 0; i < 4000 && agent_ecus_->state("tcu2").status != "installed"; ++i) {
    loop_.RunFor(std::chrono::milliseconds(500));
    ASSERT_THAT(tcu2.Step(), IsOk());
  }
  ASSERT_EQ(agent_ecus_->state("tcu2").status, "installed") << "installed, restarting";
  StartGateway();  // the gateway's power goes and comes back
  std::optional<InstallReport> recovered;
  manager_->Recover([&](InstallReport r) { recovered = std::move(r); });
  for (int i = 0; i < 200 && !recovered; ++i) {
    loop_.RunFor(std::chrono::milliseconds(500));
    (void)tcu2.Step();  // it confirms its new image and reports on the action offered again
  }
  ASSERT_TRUE(recovered.has_value());
  EXPECT_EQ(recovered->result, InstallResult::kAllNew) << recovered->Summary();
  EXPECT_THAT(recovered->campaign.log,
              Contains("recover: tcu2 goes on installing 2.0.0: its outcome decides"));
  loop_.RunFor(std::chrono::seconds(2));
  EXPECT_EQ(Versions(), "ecm=2.0.0 tcm=2.0.0 adas=2.0.0 hu=2.0.0 ");
  ASSERT_THAT(tcu2.Step(), IsOk());
  EXPECT_EQ(agent_ecus_->state("tcu2").versions.at("main"), "2.0.0");
}

// Its agent refuses the package (signed by a key it does not trust): nothing was activated yet,
// every ECU goes back; the agent's own slot was never touched.
TEST_F(ManagerTest, AgentEcu_RefusesItsPackage_EveryEcuStaysOld) {
  testing::AgentEcuDevice tcu2(dir.path() + "/tcu2", agent_ecus_->port(), "tcu2", "tcu2-token",
                               Trust({0}, 1));
  ASSERT_THAT(tcu2.Step(), IsOk());
  const InstallReport r = InstallWithAgent(tcu2, WithAgentEcu("2.0.0", {1}));
  EXPECT_EQ(r.result, InstallResult::kAllOld) << r.Summary();
  EXPECT_THAT(r.campaign.first_failure, HasSubstr("tcu2: its agent reports a failure"));
  loop_.RunFor(std::chrono::seconds(2));
  EXPECT_EQ(Versions(), "ecm=1.0.0 tcm=1.0.0 adas=1.0.0 hu=1.0.0 ");
  ASSERT_THAT(tcu2.Step(), IsOk());
  EXPECT_EQ(agent_ecus_->state("tcu2").versions.at("main"), "1.0.0");
  EXPECT_EQ(tcu2.boots(), 1) << "it never restarted";
}

// A UDS ECU fails: the agent ECU's held package is withdrawn, never installed.
TEST_F(ManagerTest, AgentEcu_AnotherEcuFails_ItsHeldPackageIsWithdrawn) {
  testing::AgentEcuDevice tcu2(dir.path() + "/tcu2", agent_ecus_->port(), "tcu2", "tcu2-token",
                               Trust({0}, 1));
  ASSERT_THAT(tcu2.Step(), IsOk());
  wrong_key_.insert("hu");
  const InstallReport r = InstallWithAgent(tcu2, WithAgentEcu("2.0.0"));
  EXPECT_EQ(r.result, InstallResult::kAllOld) << r.Summary();
  ASSERT_THAT(tcu2.Step(), IsOk());  // it hears of the withdrawal and drops the package
  EXPECT_EQ(agent_ecus_->state("tcu2").status, "canceled");
  EXPECT_EQ(tcu2.agent().journal().state, agent::State::kIdle);
  EXPECT_EQ(agent_ecus_->state("tcu2").versions.at("main"), "1.0.0");
  EXPECT_EQ(tcu2.boots(), 1);
}

// Not checked in with the gateway: refused like any ECU that does not answer. An image that is
// not a package for its agent: refused too. Nothing touched either way.
TEST_F(ManagerTest, AgentEcu_NeverCheckedInOrNotAPackage_TheBundleIsRefused) {
  const uint64_t ops = FlashOperations();
  const InstallReport r = Install(WithAgentEcu("2.0.0"));
  EXPECT_EQ(r.result, InstallResult::kRefused);
  EXPECT_THAT(r.problems, ElementsAre("tcu2: does not answer (its agent has not checked in with "
                                      "the gateway)"));
  const std::string raw = dir.path() + "/raw.bin";
  ASSERT_THAT(WriteFileAtomic(raw, std::string(5000, 'x')), IsOk());
  const InstallReport bad = Install(Bundle("2.0.0", [raw](pkg::PackOptions& o) {
    o.components.push_back(
        {.name = "tcu2",
         .path = raw,
         .install = {{"method", "agent"}, {"version", "2.0.0"}, {"hardware", "board-a"}}});
  }));
  EXPECT_EQ(bad.result, InstallResult::kRefused);
  ASSERT_EQ(bad.problems.size(), 1u);
  EXPECT_THAT(bad.problems[0], HasSubstr("tcu2: its image is not a package for its agent"));
  EXPECT_EQ(FlashOperations(), ops);
}

}  // namespace
}  // namespace aloft::vehicle
