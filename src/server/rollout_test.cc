// Rollouts through aloftd's HTTP API, with simulated devices checking in over loopback and a clock
// the test drives: waves gated by thresholds, pause on errors, the maintenance window, approval,
// cancel, dynamic joins, expiry, and the leader lease. SQLite and PostgreSQL.
#include "server/rollout.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "client/http_client.h"
#include "core/clock.h"
#include "core/encoding.h"
#include "core/file.h"
#include "core/hash.h"
#include "crypto/key_wrap.h"
#include "pkg/manifest.h"
#include "server/app.h"
#include "server/config.h"
#include "server/store.h"
#include "support/matchers.h"
#include "support/package_fixture.h"
#include "support/temp_dir.h"
#include "support/test_db.h"
#include "support/test_server.h"

namespace aloft::server {
namespace {

using ::aloft::testing::Backend;
using ::testing::HasSubstr;
using json = nlohmann::json;
using std::chrono::hours;
using std::chrono::minutes;

// 2026-11-22T00:00:00Z
const auto kMidnight = std::chrono::system_clock::time_point(std::chrono::seconds(1795305600));

class RolloutTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    database_ = testing::FreshDatabase(GetParam(), dir_.path());
    if (database_.empty()) GTEST_SKIP() << "no PostgreSQL (set ALOFT_TEST_PG_URL)";
    ASSERT_THAT(WriteFileAtomic(dir_ / "release.pub", pkgs_.keys[0].public_key().ToPem()), IsOk());
    ServerConfig c;
    c.data_dir = dir_ / "data";
    c.database = database_;
    c.trust = {dir_ / "release.pub"};
    c.threads = 4;
    c.rollout_tick_ms = 0;  // the test ticks
    if (with_delta_key_) {
      ASSERT_THAT(WriteFileAtomic(dir_ / "delta.key", pkgs_.keys[1].ToPem()), IsOk());
      c.delta_key = dir_ / "delta.key";
    }
    ASSERT_THAT(srv_.Start(c, clock_, log_), IsOk());
    base_ = srv_.base();
    admin_ = srv_.admin();
  }

  client::HttpResponse Call(const std::string& method, const std::string& path,
                            const std::string& token, const std::string& body = "") {
    return srv_.Call(method, path, token, body);
  }

  json CallJson(const std::string& method, const std::string& path, const std::string& token,
                const json& body, int expect) {
    return srv_.CallJson(method, path, token, body, expect);
  }

  std::string Token(const std::string& name, const std::string& role) {
    return CallJson("POST", "/api/v1/tokens", admin_, {{"name", name}, {"role", role}}, 201)
        .value("token", "");
  }

  void SetUpRelease() {
    CallJson("POST", "/api/v1/device-types", admin_, {{"name", "board-a"}}, 201);
    Upload("/api/v1/releases",
           pkgs_.Pack({{"main", testing::RandomBytes(20000, 1)}}, pkg::Compression::kNone));
  }

  json Upload(const std::string& path, const Bytes& bytes, int expect = 201) {
    std::string file = dir_ / ("upload-" + std::to_string(uploads_++));
    EXPECT_THAT(WriteFileAtomic(file, AsChars(bytes)), IsOk());
    auto res = srv_.Upload(path, file, admin_);
    EXPECT_EQ(res.status, expect) << res.body;
    return json::parse(res.body, nullptr, false);
  }

  // Registers a device and has it check in once, reporting main 1.0.0.
  void AddDevice(const std::string& name, const std::string& group) {
    json j = CallJson("POST", "/api/v1/devices", admin_,
                      {{"name", name}, {"device_type", "board-a"}, {"group", group}}, 201);
    tokens_[name] = j.value("token", "");
    CheckIn(name);
  }

  // The device's check-in (reporting the version it runs); its action, or null.
  json CheckIn(const std::string& name) {
    auto v = versions_.find(name);
    json in = CallJson("POST", "/device/v1/" + name + "/check-in", tokens_[name],
                       {{"versions", {{"main", v == versions_.end() ? "1.0.0" : v->second}}}}, 200);
    return in["action"];
  }

  int Feedback(const std::string& name, int64_t action, const std::string& status,
               std::string* body = nullptr) {
    auto res =
        Call("POST", "/device/v1/" + name + "/actions/" + std::to_string(action) + "/feedback",
             tokens_[name], json({{"status", status}}).dump());
    if (body) *body = res.body;
    return res.status;
  }

  // Every device checks in; those with an action: name -> action.
  std::map<std::string, json> CheckInAll() {
    std::map<std::string, json> out;
    for (const auto& [name, token] : tokens_) {
      json a = CheckIn(name);
      if (a.is_object()) out[name] = a;
    }
    return out;
  }

  // `n` devices of `offers` (not yet used) report success (or failure).
  void Finish(std::map<std::string, json>& offers, int n, bool success) {
    auto it = offers.begin();
    for (int i = 0; i < n; ++i, it = offers.erase(it)) {
      ASSERT_NE(it, offers.end());
      int64_t id = it->second["id"];
      for (const char* st : {"downloading", "downloaded", "installing", "installed"}) {
        ASSERT_EQ(Feedback(it->first, id, st), 200) << it->first << " " << st;
      }
      ASSERT_EQ(Feedback(it->first, id, success ? "success" : "failure"), 200);
      if (success) versions_[it->first] = "1.2.0";
    }
  }

  json Status(const std::string& rollout) {
    return CallJson("GET", "/api/v1/rollouts/" + rollout, admin_, nullptr, 200);
  }

  void Tick() { ASSERT_THAT(srv_.app().TickRollouts(), IsOkAndHolds(true)); }

  testing::TempDir dir_;
  testing::PackageFixture pkgs_;
  ManualClock clock_{kMidnight};
  std::string database_, base_, admin_;
  std::ostringstream log_;
  std::map<std::string, std::string> tokens_;
  std::map<std::string, std::string> versions_;  // what a device reports, after an update
  bool with_delta_key_ = false;
  int uploads_ = 0;
  testing::TestServer srv_;  // last: stops before what it uses goes
};

TEST_P(RolloutTest, ThreeWavesOverAThousandDevices_ThresholdsWindowApprovalCancel) {
  SetUpRelease();
  for (int i = 0; i < 1000; ++i) AddDevice("dev-" + std::to_string(i), "field");
  for (int i = 0; i < 10; ++i) AddDevice("lab-" + std::to_string(i), "lab");
  const std::string release = Token("rel", "release"), approver = Token("appr", "approver");

  // Waves of 10%, 30% and the rest; installs only from 02:00 to 04:00 UTC; starts at 01:00.
  json spec = {
      {"name", "r1"},
      {"release", "fw@1.2.0"},
      {"filter", {{"groups", {"field"}}}},
      {"waves",
       {{{"percent", 10}, {"success_threshold", 90}, {"error_threshold", 5}},
        {{"percent", 30}, {"success_threshold", 85}, {"error_threshold", 10}, {"confirm", true}},
        json::object()}},
      {"maintenance_window",
       {{"schedule", "0 2 * * *"}, {"duration", "02:00:00"}, {"time_zone", "UTC"}}},
      {"start_at", "2026-11-22T01:00:00Z"},
      {"approval", true}};
  json r = CallJson("POST", "/api/v1/rollouts", release, spec, 201);
  EXPECT_EQ(r["state"], "awaiting-approval");

  // Approval: nothing moves before it; the creator and a release token may not give it.
  clock_.Advance(hours(2));
  Tick();
  EXPECT_EQ(Status("r1")["state"], "awaiting-approval");
  EXPECT_TRUE(CheckInAll().empty());
  auto self = CallJson("POST", "/api/v1/rollouts/r1/approve", release, nullptr, 403);
  EXPECT_THAT(self["message"].get<std::string>(), HasSubstr("needs 'approver'"));
  CallJson("POST", "/api/v1/rollouts", approver,
           {{"name", "r-own"}, {"release", spec["release"]}, {"approval", true}}, 201);
  auto own = CallJson("POST", "/api/v1/rollouts/r-own/approve", approver, nullptr, 403);
  EXPECT_THAT(own["message"].get<std::string>(), HasSubstr("another approver"));
  CallJson("POST", "/api/v1/rollouts/r-own/cancel", approver, nullptr, 200);
  clock_.Advance(-hours(2));  // back to 00:00
  r = CallJson("POST", "/api/v1/rollouts/r1/approve", approver, nullptr, 200);
  EXPECT_EQ(r["state"], "scheduled");
  EXPECT_EQ(r["approved_by"], "token:appr");

  // The start time.
  Tick();
  EXPECT_EQ(Status("r1")["state"], "scheduled");
  EXPECT_TRUE(CheckInAll().empty());
  clock_.Advance(hours(1));  // 01:00
  Tick();
  json st = Status("r1");
  EXPECT_EQ(st["state"], "running");
  EXPECT_EQ(st["wave"], 1);
  EXPECT_EQ(st["devices"], 1000);
  EXPECT_EQ(st["waves"][0]["devices"], 100);
  EXPECT_EQ(st["waves"][1]["devices"], 300);
  EXPECT_EQ(st["waves"][2]["devices"], 600);

  // Wave 1: 100 devices offered, none from the lab; outside the window they may download only.
  auto wave1 = CheckInAll();
  ASSERT_EQ(wave1.size(), 100u);
  std::set<std::string> offered;  // every device an action was offered to
  for (const auto& [name, a] : wave1) offered.insert(name);
  for (const auto& [name, a] : wave1) {
    EXPECT_EQ(name.rfind("dev-", 0), 0u) << name;
    EXPECT_FALSE(a["install"].get<bool>());
    EXPECT_FALSE(a["maintenance_window"]["open"].get<bool>());
    EXPECT_EQ(a["maintenance_window"]["next_start"], "2026-11-22T02:00:00Z");
  }
  {
    const auto& [name, a] = *wave1.begin();
    int64_t id = a["id"];
    EXPECT_EQ(Feedback(name, id, "downloading"), 200);
    EXPECT_EQ(Feedback(name, id, "downloaded"), 200);
    std::string body;
    EXPECT_EQ(Feedback(name, id, "installing", &body), 409);
    EXPECT_THAT(body, HasSubstr("opens next at 2026-11-22T02:00:00Z"));
  }
  clock_.Advance(hours(1));  // 02:00: the window opens
  wave1 = CheckInAll();
  ASSERT_EQ(wave1.size(), 100u);
  for (const auto& [name, a] : wave1) EXPECT_TRUE(a["install"].get<bool>()) << name;

  // 85 of 100 succeeded: below 90%, the wave holds.
  Finish(wave1, 85, true);
  Tick();
  EXPECT_EQ(Status("r1")["wave"], 1);
  // 5 failed: 5%, not above the error threshold of 5%.
  Finish(wave1, 5, false);
  Tick();
  st = Status("r1");
  EXPECT_EQ(st["state"], "running");
  EXPECT_EQ(st["wave"], 1);
  EXPECT_EQ(CheckInAll().size(), 10u) << "only wave 1's unfinished devices have actions";
  // 90 succeeded: wave 2 starts.
  Finish(wave1, 5, true);
  Tick();
  st = Status("r1");
  EXPECT_EQ(st["wave"], 2);
  EXPECT_EQ(st["waves"][0]["states"]["succeeded"], 90);
  EXPECT_EQ(st["waves"][0]["states"]["failed"], 5);
  EXPECT_EQ(st["waves"][0]["success_rate"], 90.0);

  // Wave 2: 31 of 300 fail (10.3% > 10%): the rollout pauses and wave 3 waits.
  auto offers = CheckInAll();
  std::map<std::string, json> wave2;
  for (auto& [name, a] : offers) {
    if (offered.insert(name).second) wave2[name] = a;
  }
  ASSERT_EQ(wave2.size(), 300u);
  Finish(wave2, 200, true);
  Finish(wave2, 31, false);
  Tick();
  st = Status("r1");
  EXPECT_EQ(st["state"], "paused");
  EXPECT_THAT(st["reason"].get<std::string>(), HasSubstr("31 of 300 failed"));
  Tick();
  EXPECT_EQ(Status("r1")["state"], "paused");
  // Resumed, the errors are accepted; 255 successes (85%) reach the threshold, and the wave
  // waits for a person to confirm the next one.
  EXPECT_EQ(CallJson("POST", "/api/v1/rollouts/r1/resume", release, nullptr, 200)["state"],
            "running");
  Tick();
  EXPECT_EQ(Status("r1")["state"], "running");
  Finish(wave2, 54, true);
  Tick();
  EXPECT_EQ(Status("r1")["wave"], 2) << "254 of 300 is below 85%";
  Finish(wave2, 1, true);
  Tick();
  st = Status("r1");
  EXPECT_EQ(st["state"], "awaiting-confirmation");
  Tick();
  EXPECT_EQ(Status("r1")["state"], "awaiting-confirmation");
  EXPECT_EQ(CheckInAll().size(), 5u + 14u) << "no wave 3 action before the confirmation";
  r = CallJson("POST", "/api/v1/rollouts/r1/confirm", release, nullptr, 200);
  EXPECT_EQ(r["state"], "running");
  EXPECT_EQ(r["wave"], 3);

  // Wave 3: 300 succeed, 100 downloaded, 50 installing, 150 untouched; cancel.
  offers = CheckInAll();
  std::map<std::string, json> wave3;
  for (auto& [name, a] : offers) {
    if (offered.insert(name).second) wave3[name] = a;
  }
  ASSERT_EQ(wave3.size(), 600u);
  Finish(wave3, 300, true);
  std::vector<std::pair<std::string, int64_t>> downloaded, installing;
  auto it = wave3.begin();
  for (int i = 0; i < 150; ++i, it = wave3.erase(it)) {
    int64_t id = it->second["id"];
    ASSERT_EQ(Feedback(it->first, id, "downloaded"), 200);
    if (i < 100) {
      downloaded.emplace_back(it->first, id);
    } else {
      ASSERT_EQ(Feedback(it->first, id, "installing"), 200);
      installing.emplace_back(it->first, id);
    }
  }
  r = CallJson("POST", "/api/v1/rollouts/r1/cancel", release, nullptr, 200);
  EXPECT_EQ(r["state"], "canceled");
  Tick();
  st = Status("r1");
  EXPECT_EQ(st["state"], "canceled");
  // Untouched actions close at once; devices holding a download are told to drop it.
  EXPECT_EQ(st["waves"][2]["states"]["canceled"], 150);
  EXPECT_EQ(st["waves"][2]["states"]["canceling"], 100);
  EXPECT_EQ(st["waves"][2]["states"]["installing"], 50);
  // Canceled devices are offered nothing and may not install; installs under way finish.
  for (const auto& [name, id] : downloaded) {
    json a = CheckIn(name);
    EXPECT_EQ(a["id"], id) << name;
    EXPECT_EQ(a["cancel"], true) << name;
    EXPECT_FALSE(a.contains("download")) << name;
    EXPECT_EQ(Feedback(name, id, "installing"), 409) << name;
    EXPECT_EQ(Feedback(name, id, "canceled"), 200) << name;
    EXPECT_TRUE(CheckIn(name).is_null()) << name;
  }
  for (const auto& [name, a] : wave3) EXPECT_TRUE(CheckIn(name).is_null()) << name;
  EXPECT_EQ(Status("r1")["waves"][2]["states"]["canceled"], 250);
  for (const auto& [name, id] : installing) {
    EXPECT_EQ(Feedback(name, id, "installed"), 200);
    EXPECT_EQ(Feedback(name, id, "success"), 200);
  }
  st = Status("r1");
  EXPECT_EQ(st["succeeded"], 90 + 255 + 300 + 50);
  EXPECT_EQ(st["failed"], 5 + 31);
  EXPECT_EQ(st["downloads"], 90 + 5 + 255 + 31 + 300 + 50 + 100);
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(CheckIn("lab-" + std::to_string(i)).is_null());
  EXPECT_NE(st["duration_median_s"], nullptr);
}

TEST_P(RolloutTest, DynamicRolloutTakesLateDevices_ExpiryCancelsWhatIsOpen) {
  SetUpRelease();
  for (int i = 0; i < 4; ++i) AddDevice("dev-" + std::to_string(i), "field");
  json spec = {{"name", "dyn"},
               {"release", "fw@1.2.0"},
               {"filter", {{"groups", {"field"}}}},
               {"dynamic", true},
               {"expires_at", "2026-11-22T06:00:00Z"}};
  CallJson("POST", "/api/v1/rollouts", admin_, spec, 201);
  Tick();
  EXPECT_EQ(CheckInAll().size(), 4u);
  AddDevice("late", "field");
  AddDevice("late-lab", "lab");
  Tick();
  auto offers = CheckInAll();
  EXPECT_EQ(offers.size(), 5u);
  EXPECT_TRUE(offers.count("late"));
  EXPECT_EQ(Status("dyn")["devices"], 5);
  // A non-dynamic rollout does not take late devices.
  spec["name"] = "static";
  spec["dynamic"] = false;
  spec["filter"] = {{"groups", {"lab"}}};
  CallJson("POST", "/api/v1/rollouts", admin_, spec, 201);
  Tick();
  EXPECT_TRUE(CheckIn("late-lab").is_object());
  AddDevice("later-lab", "lab");
  Tick();
  EXPECT_TRUE(CheckIn("later-lab").is_null());
  EXPECT_EQ(Status("static")["devices"], 1);

  clock_.Advance(hours(6));
  Tick();
  EXPECT_EQ(Status("dyn")["state"], "expired");
  EXPECT_EQ(Status("dyn")["waves"][0]["states"]["canceled"], 5);
  EXPECT_TRUE(CheckInAll().empty());
}

// One broken rollout stopped the tick for every rollout after it.
TEST_P(RolloutTest, WindowClosing_RefusesNewInstalls_NotOnesUnderWay) {
  SetUpRelease();
  AddDevice("dev-a", "field");
  AddDevice("dev-b", "field");
  // Installs from 00:00 to 01:00 UTC; the clock starts at midnight.
  CallJson("POST", "/api/v1/rollouts", admin_,
           {{"name", "w"},
            {"release", "fw@1.2.0"},
            {"filter", {{"groups", {"field"}}}},
            {"maintenance_window",
             {{"schedule", "0 0 * * *"}, {"duration", "1h"}, {"time_zone", "UTC"}}}},
           201);
  Tick();
  auto offers = CheckInAll();
  ASSERT_EQ(offers.size(), 2u);
  for (const auto& [name, a] : offers) {
    EXPECT_TRUE(a["install"].get<bool>()) << name;
    EXPECT_EQ(Feedback(name, a["id"], "downloaded"), 200);
  }
  EXPECT_EQ(Feedback("dev-a", offers["dev-a"]["id"], "installing"), 200);
  clock_.Advance(std::chrono::minutes(61));  // the window closed
  // dev-a's install began in the window: its progress and its result are taken.
  EXPECT_EQ(Feedback("dev-a", offers["dev-a"]["id"], "installing"), 200);
  EXPECT_EQ(Feedback("dev-a", offers["dev-a"]["id"], "installed"), 200);
  // dev-b checked in while the window was open but begins now: refused, it waits.
  std::string body;
  EXPECT_EQ(Feedback("dev-b", offers["dev-b"]["id"], "installing", &body), 409);
  EXPECT_THAT(body, HasSubstr("maintenance window"));
  EXPECT_FALSE(CheckIn("dev-b")["install"].get<bool>());
}

TEST_P(RolloutTest, ABrokenRollout_DoesNotStallTheOthers) {
  SetUpRelease();
  AddDevice("a", "first");
  AddDevice("b", "second");
  CallJson("POST", "/api/v1/rollouts", admin_,
           {{"name", "broken"}, {"release", "fw@1.2.0"}, {"filter", {{"groups", {"first"}}}}}, 201);
  CallJson("POST", "/api/v1/rollouts", admin_,
           {{"name", "fine"}, {"release", "fw@1.2.0"}, {"filter", {{"groups", {"second"}}}}}, 201);
  {  // the first rollout's stored waves become unreadable
    auto store = Store::Open(database_, 1);
    ASSERT_THAT(store, IsOk());
    ASSERT_THAT((*store)->Write([](Tx& tx) -> aloft::Status {
      ALOFT_RETURN_IF_ERROR(
          tx.connection().Query("UPDATE rollouts SET waves = 'x' WHERE name = 'broken'"));
      return OkStatus();
    }),
                IsOk());
  }
  Tick();
  EXPECT_TRUE(CheckIn("b").is_object()) << "the rollout after the broken one did not start";
  EXPECT_TRUE(CheckIn("a").is_null());
  EXPECT_EQ(Status("fine")["state"], "running");
  EXPECT_THAT(log_.str(), HasSubstr("rollout 'broken': "));
}

TEST_P(RolloutTest, BadSpecsAreRefusedWithTheField) {
  SetUpRelease();
  const std::string rel = "fw@1.2.0";
  struct Case {
    json body;
    std::string message;
  } cases[] = {
      {{{"release", rel}}, "field 'name' is missing"},
      {{{"name", "x"}}, "field 'release' is missing"},
      {{{"name", "x"}, {"release", "fw"}}, "NAME@VERSION"},
      {{{"name", "x"}, {"release", "fw@9.9.9"}}, "not found"},
      {{{"name", "x"}, {"release", rel}, {"mode", "eager"}}, "mode 'eager'"},
      {{{"name", "x"}, {"release", rel}, {"waves", json::array()}}, "1 to 100 waves"},
      {{{"name", "x"}, {"release", rel}, {"waves", {{{"percent", 0}}}}}, "waves[0].percent"},
      {{{"name", "x"}, {"release", rel}, {"waves", {{{"percent", 5}, {"count", 3}}}}},
       "both 'percent' and 'count'"},
      {{{"name", "x"}, {"release", rel}, {"filter", {{"colour", "red"}}}},
       "unknown field 'filter.colour'"},
      {{{"name", "x"}, {"release", rel}, {"filter", {{"device_type", "board-z"}}}},
       "'board-z' is not a target"},
      {{{"name", "x"}, {"release", rel}, {"start_at", "tomorrow"}}, "RFC 3339"},
      {{{"name", "x"},
        {"release", rel},
        {"maintenance_window", {{"schedule", "0 25 * * *"}, {"duration", "1h"}}}},
       "maintenance_window"},
      {{{"name", "x"},
        {"release", rel},
        {"start_at", "2026-11-22T02:00:00Z"},
        {"expires_at", "2026-11-22T01:00:00Z"}},
       "after 'start_at'"},
  };
  for (const auto& c : cases) {
    auto res = Call("POST", "/api/v1/rollouts", admin_, c.body.dump());
    EXPECT_TRUE(res.status == 400 || res.status == 404) << c.body.dump() << ": " << res.status;
    EXPECT_THAT(res.body, HasSubstr(c.message)) << c.body.dump();
  }
  CallJson("POST", "/api/v1/rollouts", admin_, {{"name", "x"}, {"release", rel}}, 201);
  CallJson("POST", "/api/v1/rollouts", admin_, {{"name", "x"}, {"release", rel}}, 409);
  CallJson("POST", "/api/v1/rollouts/nope/pause", admin_, nullptr, 404);
  CallJson("POST", "/api/v1/rollouts/x/confirm", admin_, nullptr, 409);
  CallJson("POST", "/api/v1/rollouts/x/cancel", admin_, nullptr, 200);
  CallJson("POST", "/api/v1/rollouts/x/resume", admin_, nullptr, 409);
}

class RolloutDeltaTest : public RolloutTest {
 protected:
  RolloutDeltaTest() { with_delta_key_ = true; }
};

// Three devices in one rollout: one runs 1.0.0 (the server makes a delta from it), one 1.1.0 (a
// delta was uploaded), one 0.9.0 (unknown to the server: the full image).
TEST_P(RolloutDeltaTest, OldVersionsGetDeltas_UnknownGetsTheFullImage_BytesSavedCounted) {
  CallJson("POST", "/api/v1/device-types", admin_, {{"name", "board-a"}}, 201);
  Bytes v100 = testing::RandomBytes(200000, 7);
  Bytes v110 = v100, v120 = v100;
  for (size_t i = 5000; i < 5100; ++i) v110[i] ^= 0x5a;
  for (size_t i = 90000; i < 90300; ++i) v120[i] ^= 0xa5;
  auto pack = [&](const Bytes& image, const char* version) {
    return pkgs_.Pack({{"main", image}}, pkg::Compression::kNone, {0}, version);
  };
  Bytes p100 = pack(v100, "1.0.0"), p110 = pack(v110, "1.1.0"), p120 = pack(v120, "1.2.0");
  Upload("/api/v1/releases", p100);
  json full = Upload("/api/v1/releases", p120);
  const int64_t full_size = full["size"];
  // An uploaded delta must be signed by a trusted key and be a delta of this release.
  Upload("/api/v1/releases/fw/1.2.0/deltas", pkgs_.Delta(p110, p120, {2}), 422);
  Upload("/api/v1/releases/fw/1.2.0/deltas", p120, 400);
  json up = Upload("/api/v1/releases/fw/1.2.0/deltas", pkgs_.Delta(p110, p120));
  EXPECT_EQ(up["base_version"], "1.1.0");
  EXPECT_EQ(up["source"], "uploaded");

  for (const char* d : {"old", "mid", "unknown"}) AddDevice(d, "field");
  versions_ = {{"old", "1.0.0"}, {"mid", "1.1.0"}, {"unknown", "0.9.0"}};
  CallJson("POST", "/api/v1/rollouts", admin_,
           {{"name", "d"}, {"release", "fw@1.2.0"}, {"filter", {{"groups", {"field"}}}}}, 201);
  Tick();
  // Before the server made the delta from 1.0.0, "old" is offered the full image.
  EXPECT_FALSE(CheckIn("old")["download"].contains("delta"));
  ASSERT_THAT(srv_.app().MakeQueuedDeltas(), IsOkAndHolds(1));
  ASSERT_THAT(srv_.app().MakeQueuedDeltas(), IsOkAndHolds(0)) << "once per base version";

  auto trust = pkgs_.Trust({0, 1}, 1);
  int64_t delta_bytes = 0;
  for (const char* d : {"old", "mid", "unknown"}) {
    json a = CheckIn(d);
    ASSERT_TRUE(a.is_object()) << d;
    const json& dl = a["download"];
    if (std::string(d) == "unknown") {
      EXPECT_FALSE(dl.contains("delta"));
      EXPECT_EQ(dl["size"], full_size);
    } else {
      EXPECT_EQ(dl["delta"]["base_version"], versions_[d]) << d;
      EXPECT_EQ(dl["delta"]["full_size"], full_size);
      EXPECT_LT(dl["size"].get<int64_t>() * 10, full_size) << d << ": a delta of 300 bytes";
      delta_bytes += dl["size"].get<int64_t>();
      // The offered manifest is the delta package's, signed (made here: by the delta key).
      auto envelope = pkg::ParseEnvelope(a["manifest"].dump());
      ASSERT_THAT(envelope, IsOk());
      EXPECT_THAT(pkg::VerifySignatures(*envelope, trust), IsOk()) << d;
      EXPECT_EQ(envelope->manifest.components[0].base->version, versions_[d]);
    }
    // What is downloaded is what was offered.
    std::string url = dl["url"];
    auto body = Call("GET", url.substr(base_.size()), tokens_[d]);
    ASSERT_EQ(body.status, 200);
    EXPECT_EQ(Sha256Hex(AsBytes(body.body)), dl["sha256"]) << d;
    if (std::string(d) != "unknown") {
      Bytes bytes(body.body.begin(), body.body.end());
      EXPECT_THAT(testing::ReadPackage(bytes, &trust), IsOk()) << d;
    }
    int64_t id = a["id"];
    for (const char* st : {"downloading", "downloaded", "installing", "installed", "success"}) {
      ASSERT_EQ(Feedback(d, id, st), 200);
    }
  }
  json st = Status("d");
  EXPECT_EQ(st["downloads"], 3);
  EXPECT_EQ(st["download_bytes"], full_size + delta_bytes);
  EXPECT_EQ(st["bytes_saved"], 2 * full_size - delta_bytes);
}

// Deltas of encrypted releases (docs/encryption.md): none is made while the server lacks a
// release's content key (the device gets the full package); once it has both, the delta is made
// from the plain images and sealed with the target's key, so the key wrapped for the device for
// the release opens it, and the patch never leaves the server in the clear.
TEST_P(RolloutDeltaTest, AnEncryptedRelease_ItsDeltaIsSealedWithTheReleasesKey) {
  CallJson("POST", "/api/v1/device-types", admin_, {{"name", "board-a"}}, 201);
  Bytes v100 = testing::RandomBytes(200000, 7), v120 = v100;
  for (size_t i = 90000; i < 90300; ++i) v120[i] ^= 0xa5;
  const crypto::ContentKey k100 = crypto::NewContentKey(), k120 = crypto::NewContentKey();
  pkgs_.content_key = k100;
  Upload("/api/v1/releases", pkgs_.Pack({{"main", v100}}, pkg::Compression::kZstd, {0}, "1.0.0"));
  pkgs_.content_key = k120;
  json full = Upload("/api/v1/releases",
                     pkgs_.Pack({{"main", v120}}, pkg::Compression::kZstd, {0}, "1.2.0"));
  pkgs_.content_key.reset();
  auto device_key = crypto::RecipientKey::Generate();
  ASSERT_THAT(device_key, IsOk());
  AddDevice("old", "field");
  CallJson("POST", "/device/v1/old/check-in", tokens_["old"],
           {{"versions", {{"main", "1.0.0"}}},
            {"encryption_key", Base64Encode(device_key->PublicRaw())}},
           200);
  CallJson("POST", "/api/v1/rollouts", admin_,
           {{"name", "d"}, {"release", "fw@1.2.0"}, {"filter", {{"groups", {"field"}}}}}, 201);
  Tick();
  // Without the content keys: the full package, and nothing queued.
  EXPECT_FALSE(CheckIn("old")["download"].contains("delta"));
  ASSERT_THAT(srv_.app().MakeQueuedDeltas(), IsOkAndHolds(0));
  for (const auto& [release, key] : {std::pair{"fw/1.0.0", k100}, std::pair{"fw/1.2.0", k120}}) {
    CallJson("PUT", std::string("/api/v1/releases/") + release + "/content-key", admin_,
             {{"content_key", Base64Encode(key)}}, 200);
  }
  EXPECT_FALSE(CheckIn("old")["download"].contains("delta"));  // queues it
  ASSERT_THAT(srv_.app().MakeQueuedDeltas(), IsOkAndHolds(1)) << log_.str();

  const json a = CheckIn("old");
  ASSERT_TRUE(a.is_object());
  ASSERT_EQ(a["download"]["delta"]["base_version"], "1.0.0") << a.dump();
  EXPECT_LT(a["download"]["size"].get<int64_t>() * 10, full["size"].get<int64_t>());
  EXPECT_EQ(a["encryption"]["key_id"], crypto::ContentKeyId(k120));
  auto wrapped = Base64Decode(a["encryption"].value("wrapped_key", ""));
  ASSERT_THAT(wrapped, IsOk());
  auto opened = device_key->Unwrap(*wrapped);
  ASSERT_THAT(opened, IsOkAndHolds(k120));
  const json& c = a["manifest"]["signed"]["components"][0];
  EXPECT_EQ(c["type"], "delta");
  EXPECT_EQ(c["encryption"]["key_id"], crypto::ContentKeyId(k120));
  // The delta downloaded opens with that key only.
  std::string url = a["download"]["url"];
  auto body = Call("GET", url.substr(base_.size()), tokens_["old"]);
  ASSERT_EQ(body.status, 200);
  const Bytes bytes(body.body.begin(), body.body.end());
  auto trust = pkgs_.Trust({0, 1}, 1);
  EXPECT_THAT(testing::ReadPackage(bytes, &trust, nullptr, &*opened), IsOk());
  EXPECT_THAT(testing::ReadPackage(bytes, &trust, nullptr, &k100),
              IsError(Code::kUntrusted, HasSubstr("not with the key given")));
}

// A delta whose worker died mid-way stayed 'generating' for ever; it is queued again once stale.
TEST_P(RolloutDeltaTest, ADeltaLeftGenerating_IsMadeOnceStale) {
  CallJson("POST", "/api/v1/device-types", admin_, {{"name", "board-a"}}, 201);
  Bytes v100 = testing::RandomBytes(100000, 3), v120 = v100;
  for (size_t i = 1000; i < 1100; ++i) v120[i] ^= 0x33;
  Upload("/api/v1/releases", pkgs_.Pack({{"main", v100}}, pkg::Compression::kNone, {0}, "1.0.0"));
  Upload("/api/v1/releases", pkgs_.Pack({{"main", v120}}, pkg::Compression::kNone, {0}, "1.2.0"));
  AddDevice("old", "field");
  versions_ = {{"old", "1.0.0"}};
  CallJson("POST", "/api/v1/rollouts", admin_,
           {{"name", "d"}, {"release", "fw@1.2.0"}, {"filter", {{"groups", {"field"}}}}}, 201);
  Tick();
  EXPECT_FALSE(CheckIn("old")["download"].contains("delta"));  // queued now
  {                                                            // a worker claimed it and died
    auto store = Store::Open(database_, 1);
    ASSERT_THAT(store, IsOk());
    ASSERT_THAT((*store)->Write([&](Tx& tx) -> aloft::Status {
      ALOFT_RETURN_IF_ERROR(tx.connection().Query(
          "UPDATE deltas SET state = 'generating', updated_ms = ? WHERE state = 'queued'",
          {int64_t{std::chrono::duration_cast<std::chrono::milliseconds>(
                       clock_.Wall().time_since_epoch())
                       .count()}}));
      return OkStatus();
    }),
                IsOk());
  }
  ASSERT_THAT(srv_.app().MakeQueuedDeltas(), IsOkAndHolds(0)) << "still within its time";
  clock_.Advance(std::chrono::minutes(31));
  ASSERT_THAT(srv_.app().MakeQueuedDeltas(), IsOkAndHolds(1));
  EXPECT_EQ(CheckIn("old")["download"]["delta"]["base_version"], "1.0.0");
}

INSTANTIATE_TEST_SUITE_P(Backends, RolloutDeltaTest,
                         ::testing::Values(Backend::kSqlite, Backend::kPostgres),
                         [](const auto& p) { return testing::BackendName(p.param); });

INSTANTIATE_TEST_SUITE_P(Backends, RolloutTest,
                         ::testing::Values(Backend::kSqlite, Backend::kPostgres),
                         [](const auto& p) { return testing::BackendName(p.param); });

// The lease: one engine leads; another takes over only after the lease ran out, and the old
// leader can then commit nothing.
TEST(RolloutLease, OneLeaderAtATime_TakeoverAfterExpiry) {
  testing::TempDir dir;
  auto store = Store::Open(dir / "aloft.db", 2);
  ASSERT_THAT(store, IsOk());
  RolloutEngine a(**store, "a", std::chrono::seconds(10)),
      b(**store, "b", std::chrono::seconds(10));
  EXPECT_THAT(a.Tick(1000), IsOkAndHolds(true));
  EXPECT_THAT(b.Tick(1000), IsOkAndHolds(false));
  EXPECT_THAT(a.Tick(5000), IsOkAndHolds(true));
  EXPECT_THAT(b.Tick(14999), IsOkAndHolds(false)) << "a renewed at 5 s: valid until 15 s";
  EXPECT_THAT(b.Tick(15000), IsOkAndHolds(true));
  EXPECT_THAT(a.Tick(15001), IsOkAndHolds(false));
}

}  // namespace
}  // namespace aloft::server
