// Scenario files: what they say, their defaults, and bad ones refused naming the file, the table
// and the key.
#include "fleetsim/scenario.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "support/matchers.h"

namespace aloft::fleetsim {
namespace {

using ::testing::HasSubstr;

TEST(Scenario, AFullOneIsRead) {
  auto s = ParseScenario(R"(
name = "chaos"
database = "postgres"
servers = 2
connections = 128
timeout_s = 300
[release]
version = "3.0.0"
size = 1000
[[devices]]
count = 900
poll_s = 2.5
bandwidth_kbps = 800
install_s = 4
[devices.faults]
download_drop = 0.1
power_cut = 0.05
[[devices]]
name = "flaky"
count = 100
protocol = "mqtt"
version = "1.1.0"
ecus = ["ecm", "tcm", "adas"]
parallel_ecus = 2
[devices.faults]
health_fail = 0.5
vanish = 0.01
[rollout]
waves = [{percent = 10, error_threshold = 20}, {percent = 100}]
[[event]]
at_s = 20
do = "kill-server"
server = 1
[[event]]
at_wave = 2
do = "faults"
health_fail = 0.3
[[event]]
at_s = 30
do = "restart-broker"
[[event]]
at_s = 40
do = "cut-network"
for_s = 7.5
[expect]
rollout = "paused"
wave = 2
)",
                         "chaos.toml");
  ASSERT_THAT(s, IsOk());
  EXPECT_EQ(s->name, "chaos");
  EXPECT_EQ(s->devices(), 1000u);
  EXPECT_EQ(s->servers, 2);
  EXPECT_EQ(s->release_version, "3.0.0");
  EXPECT_EQ(s->groups[0].poll.count(), 2500);
  EXPECT_EQ(s->groups[0].bandwidth_bps, 100'000u);
  EXPECT_DOUBLE_EQ(s->groups[0].faults.download_drop, 0.1);
  EXPECT_EQ(s->groups[1].version, "1.1.0");
  EXPECT_DOUBLE_EQ(s->groups[1].faults.health_fail, 0.5);
  ASSERT_EQ(s->waves.size(), 2u);
  EXPECT_EQ(s->waves[0].error_threshold, 20);
  EXPECT_EQ(s->waves[1].success_threshold, 90);
  EXPECT_EQ(s->groups[0].protocol, Protocol::kNative);
  EXPECT_EQ(s->groups[1].protocol, Protocol::kMqtt);
  EXPECT_TRUE(s->Uses(Protocol::kMqtt));
  EXPECT_FALSE(s->Uses(Protocol::kDdi));
  EXPECT_TRUE(s->Proxied());
  EXPECT_FALSE(s->groups[0].vehicle());
  EXPECT_TRUE(s->groups[1].vehicle());
  EXPECT_EQ(s->groups[1].parallel_ecus, 2);
  EXPECT_THAT(s->Ecus(), ::testing::ElementsAre("ecm", "tcm", "adas"));
  EXPECT_TRUE(s->HasBoards());
  EXPECT_TRUE(s->HasVehicles());
  ASSERT_EQ(s->events.size(), 4u);
  EXPECT_EQ(s->events[2].kind, Event::Kind::kRestartBroker);
  EXPECT_EQ(s->events[3].kind, Event::Kind::kCutNetwork);
  EXPECT_EQ(s->events[3].duration.count(), 7500);
  EXPECT_EQ(s->events[0].kind, Event::Kind::kKillServer);
  EXPECT_EQ(s->events[0].at->count(), 20000);
  EXPECT_EQ(s->events[1].at_wave, 2);
  EXPECT_DOUBLE_EQ(s->events[1].faults.health_fail, 0.3);
  EXPECT_EQ(s->expect.rollout, "paused");
}

TEST(Scenario, BadOnesAreRefusedNamingWhere) {
  struct Case {
    const char* text;
    const char* says;
  } cases[] = {
      {"", "no [[devices]]"},
      {"[[devices]]\ncount = 0", "[[devices]] #1: key 'count' must be at least 1"},
      {"[[devices]]\ncount = 1\ncolour = 2", "unknown key 'colour'"},
      {"servers = 2\n[[devices]]\ncount = 1", "needs database = \"postgres\""},
      {"database = \"mysql\"\n[[devices]]\ncount = 1", "must be sqlite or postgres"},
      {"[[devices]]\ncount = 1\n[devices.faults]\nvanish = 2", "key 'vanish' must be from 0"},
      {"[[devices]]\ncount = 1\n[[event]]\ndo = \"kill-server\"\nat_s = 1\nserver = 3",
       "must name one of the 1 servers"},
      {"[[devices]]\ncount = 1\n[[event]]\ndo = \"restart-postgres\"\nat_s = 1",
       "restart-postgres needs database = postgres"},
      {"[[devices]]\ncount = 1\n[[event]]\ndo = \"faults\"", "give at_s or at_wave"},
      {"[[devices]]\ncount = 1\n[[event]]\ndo = \"explode\"\nat_s = 1", "not 'explode'"},
      {"[[devices]]\ncount = 1\n[expect]\nrollout = \"done\"", "must be finished or paused"},
      {"[[devices]]\ncount = 1\nprotocol = \"coap\"", "must be native, mqtt or ddi, not 'coap'"},
      {"[[devices]]\ncount = 1\necus = [\"main\"]", "'main' is not a module name"},
      {"[[devices]]\ncount = 1\necus = [\"E CM\"]", "'E CM' is not a module name"},
      {"[[devices]]\ncount = 1\nparallel_ecus = 2", "key 'parallel_ecus' needs ecus"},
      {"[[devices]]\ncount = 1\nprotocol = \"ddi\"\necus = [\"ecm\"]", "not ddi"},
      {"[[devices]]\ncount = 1\n[[event]]\ndo = \"restart-broker\"\nat_s = 1",
       "restart-broker needs devices with protocol = \"mqtt\""},
      {"[[devices]]\ncount = 1\n[[event]]\ndo = \"cut-network\"\nat_s = 1",
       "key 'for_s' must be given"},
      {"[[devices]]\ncount = 1\n[[event]]\ndo = \"kill-server\"\nat_s = 1\nfor_s = 2",
       "key 'for_s' belongs to cut-network only"},
      {"[[devices]]\ncount = [", "x.toml:2"},
  };
  for (const Case& c : cases) {
    auto s = ParseScenario(c.text, "x.toml");
    ASSERT_FALSE(s.ok()) << c.text;
    EXPECT_THAT(s.error().message(), HasSubstr("x.toml")) << c.text;
    EXPECT_THAT(s.error().message(), HasSubstr(c.says)) << c.text;
  }
}

}  // namespace
}  // namespace aloft::fleetsim
