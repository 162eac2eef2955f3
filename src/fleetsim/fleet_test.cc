// The simulated fleet against a real aloftd (in this process, over loopback HTTP): 300 devices
// register, take a rollout's actions with faults on (dropped downloads that resume, power cuts
// during the install, failed health checks, devices that vanish and so keep the rollout from
// finishing), and the end's checks find the server's records and the devices' deeds the same;
// a record changed behind the fleet's back is found as lost.
#include "fleetsim/fleet.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/clock.h"
#include "core/file.h"
#include "fleetsim/checks.h"
#include "support/matchers.h"
#include "support/temp_dir.h"
#include "support/test_server.h"

namespace aloft::fleetsim {
namespace {

using nlohmann::json;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

class FleetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server::ServerConfig c;
    c.data_dir = dir_ / "data";
    c.database = dir_ / "aloft.db";
    c.rollout_tick_ms = 100;
    ASSERT_THAT(srv_.Start(c, SystemClock::Instance(), log_), IsOk());
    srv_.CallJson("POST", "/api/v1/device-types", srv_.admin(), {{"name", "sim-board"}}, 201);
    registration_ = srv_.CallJson("POST", "/api/v1/device-types/sim-board/registration-tokens",
                                  srv_.admin(), {{"expires_in", "never"}}, 201)
                        .value("token", "");
    ASSERT_THAT(WriteFileAtomic(dir_ / "fw.bin", std::string(100'000, 'x') + "end"), IsOk());
    auto up = srv_.Upload(
        "/api/v1/releases?name=fw&version=2.0.0&device_type=sim-board&module=main&filename=fw.bin",
        dir_ / "fw.bin", srv_.admin());
    ASSERT_EQ(up.status, 201) << up.body;
  }

  Scenario Small() {
    Scenario s;
    DeviceGroup g;
    g.count = 300;
    g.poll = std::chrono::milliseconds(300);
    g.install = std::chrono::milliseconds(100);
    g.reboot = std::chrono::milliseconds(100);
    g.bandwidth_bps = 10'000'000;
    g.faults = {.download_drop = 0.2, .health_fail = 0.1, .power_cut = 0.2, .vanish = 0.02};
    s.groups.push_back(g);
    return s;
  }

  // Runs `fleet` until `until` holds (or 60 s).
  bool RunUntil(Fleet& fleet, HttpEngine& /*http*/, const std::function<bool()>& until) {
    const int64_t deadline = NowMs() + 60'000;
    while (NowMs() < deadline) {
      fleet.Run(NowMs());
      fleet.Wait(NowMs(), 20);
      if (until()) return true;
    }
    return false;
  }
  std::string RolloutState() {
    return srv_.CallJson("GET", "/api/v1/rollouts/r", srv_.admin(), nullptr, 200)
        .value("state", "");
  }

  testing::TempDir dir_;
  std::ostringstream log_;
  testing::TestServer srv_;
  std::string registration_;
};

TEST_F(FleetTest, ARolloutWithFaults_TheServerAndTheDevicesAgree) {
  const Scenario s = Small();
  HttpEngine http(32);
  Fleet fleet(s, {.servers = {srv_.base()}, .registration = registration_, .seed = 7}, http);
  ASSERT_THAT(fleet.Start(NowMs()), IsOk());
  ASSERT_TRUE(RunUntil(fleet, http, [&] { return fleet.counters().registered == 300; }));
  srv_.CallJson("POST", "/api/v1/rollouts", srv_.admin(),
                {{"name", "r"},
                 {"release", "fw@2.0.0"},
                 {"filter", {{"device_type", "sim-board"}}},
                 {"waves", {{{"percent", 100}, {"error_threshold", 100}}}}},
                201);
  int64_t next = 0;
  std::string state;
  ASSERT_TRUE(RunUntil(fleet, http,
                       [&] {
                         if (NowMs() < next) return false;
                         next = NowMs() + 250;
                         state = RolloutState();
                         return fleet.counters().offered == 300 && fleet.busy() == 0 &&
                                fleet.AllReported();
                       }))
      << state << ", busy " << fleet.busy();
  // The devices that vanished hold their actions open: the rollout cannot finish (until they
  // come back, or it expires).
  EXPECT_EQ(state, "running");
  const FleetCounters& c = fleet.counters();
  EXPECT_EQ(c.offered, 300u);
  EXPECT_GT(c.download_drops, 0u);
  EXPECT_GT(c.power_cuts, 0u);
  EXPECT_GT(c.failed, 0u);
  EXPECT_GT(c.vanished, 0u);
  EXPECT_EQ(c.succeeded + c.failed + c.vanished, 300u);
  EXPECT_EQ(c.bad_downloads, 0u);

  auto view = ReadServerView(srv_.base(), srv_.admin(), {"fw@2.0.0"});
  ASSERT_THAT(view, IsOk());
  CheckReport r = Check(fleet, *view, c.duplicate_offers);
  EXPECT_TRUE(r.ok()) << r.lost << " " << r.duplicated << " " << r.wrong_version << ": "
                      << (r.examples.empty() ? "" : r.examples[0]);
  EXPECT_EQ(r.on_release, c.succeeded);
  EXPECT_EQ(r.server_states["succeeded"], c.succeeded);
  EXPECT_EQ(r.server_states["failed"], c.failed);
  EXPECT_EQ(r.vanished_open, c.vanished);

  // The checks can fail: a succeeded action the server holds as failed is lost; a second
  // action for a device is a duplicate; a version the device never reported is wrong.
  ServerView bent = *view;
  std::string changed;
  for (auto& [name, actions] : bent.actions) {
    if (actions.back().state == "succeeded") {
      changed = name;
      actions.back().state = "failed";
      bent.versions[name] = "9.9.9";
      actions.push_back({actions.back().id + 100000, "pending"});
      break;
    }
  }
  // A device whose modules the server shows on two versions (a car half-updated) is mixed.
  bent.versions[changed == fleet.Name(0) ? fleet.Name(1) : fleet.Name(0)] =
      "mixed: ecm 2.0.0, tcm 1.0.0";
  CheckReport bad = Check(fleet, bent, 0);
  EXPECT_EQ(bad.lost, 1u);
  EXPECT_EQ(bad.duplicated, 1u);
  EXPECT_EQ(bad.wrong_version, 1u);
  EXPECT_EQ(bad.mixed, 1u);
  EXPECT_FALSE(bad.ok());
}

}  // namespace
}  // namespace aloft::fleetsim
