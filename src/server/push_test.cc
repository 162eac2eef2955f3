// Push over MQTT with a real Mosquitto broker (scripts/mqtt.sh) and aloftd in-process, on SQLite
// and PostgreSQL. Devices are MQTT clients written from docs/mqtt.md: they log in with their
// device token (aloftd writes the broker's password file), report properties, ask with otaCheck,
// receive otaUpgrade pushed by a rollout without any poll, download over HTTP and report. Bad
// messages get error reports and never stall the bridge; a gateway speaks for its sub-devices;
// a broker restart in the middle of a rollout loses and duplicates nothing.
#include "server/push.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>

#include "client/http_client.h"
#include "core/clock.h"
#include "core/encoding.h"
#include "core/file.h"
#include "core/hash.h"
#include "mqtt/topics.h"
#include "server/config.h"
#include "support/matchers.h"
#include "support/package_fixture.h"
#include "support/temp_dir.h"
#include "support/test_broker.h"
#include "support/test_db.h"
#include "support/test_server.h"

namespace aloft::server {
namespace {

using ::aloft::testing::Backend;
using ::aloft::testing::MqttProbe;
using ::testing::HasSubstr;
using json = nlohmann::json;
using namespace std::chrono_literals;

const auto kMidnight = std::chrono::system_clock::time_point(std::chrono::seconds(1795305600));

TEST(PushCommand, FromTheCheckInAnswer) {
  EXPECT_EQ(PushBridge::CommandFor(nullptr),
            json::parse(R"({"method":"otaUpgrade","params":{"upgrade":false}})"));
  json cancel = PushBridge::CommandFor(
      {{"id", 7}, {"release", "fw"}, {"version", "2.0.0"}, {"cancel", true}});
  EXPECT_EQ(cancel["method"], "otaCancel");
  EXPECT_EQ(cancel["params"]["id"], 7);
  json up = PushBridge::CommandFor(json::parse(R"({"id": 9, "release": "fw", "version": "2.0.0",
      "modules": ["main"], "mode": "soft", "install": true, "manifest": {"signed": {}},
      "download": {"url": "http://x/a", "size": 10, "md5": "m", "sha256": "s", "sha1": "h"}})"));
  EXPECT_EQ(up["method"], "otaUpgrade");
  const json& p = up["params"];
  EXPECT_EQ(p["upgrade"], true);
  EXPECT_EQ(p["module"], "main");
  EXPECT_EQ(p["version"], "2.0.0");
  EXPECT_EQ(p["url"], "http://x/a");
  EXPECT_EQ(p["size"], 10);
  EXPECT_EQ(p["md5"], "m");
  EXPECT_EQ(p["sha256"], "s");
  EXPECT_EQ(p["id"], 9);
  EXPECT_EQ(p["mode"], "soft");
  EXPECT_TRUE(p["manifest"].is_object());
}

class PushTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    database_ = testing::FreshDatabase(GetParam(), dir_.path());
    if (database_.empty()) GTEST_SKIP() << "no PostgreSQL (set ALOFT_TEST_PG_URL)";
    ASSERT_THAT(broker_.Start(), IsOk());
    ASSERT_THAT(WriteFileAtomic(dir_ / "release.pub", pkgs_.keys[0].public_key().ToPem()), IsOk());
    ServerConfig c;
    c.data_dir = dir_ / "data";
    c.database = database_;
    c.trust = {dir_ / "release.pub"};
    c.threads = 4;
    c.rollout_tick_ms = 0;  // the test ticks
    c.mqtt_url = broker_.url();
    c.mqtt_broker_passwd = broker_.passwd_file();
    c.mqtt_broker_acl = broker_.acl_file();
    c.mqtt_broker_pid = broker_.pid_file();
    ASSERT_THAT(srv_.Start(c, clock_, std::cerr), IsOk());
    admin_ = srv_.admin();
    for (int i = 0; i < 200 && !srv_.app().PushConnected(); ++i) std::this_thread::sleep_for(50ms);
    ASSERT_TRUE(srv_.app().PushConnected()) << "the bridge did not connect to " << broker_.url();
    srv_.CallJson("POST", "/api/v1/device-types", admin_, {{"name", "board-a"}}, 201);
    package_ = pkgs_.Pack({{"main", testing::RandomBytes(30000, 1)}}, pkg::Compression::kNone, {0},
                          "2.0.0");
    ASSERT_THAT(WriteFileAtomic(dir_ / "fw.aloft", AsChars(package_)), IsOk());
    auto up = srv_.Upload("/api/v1/releases", dir_ / "fw.aloft", admin_);
    ASSERT_EQ(up.status, 201) << up.body;
    release_ = json::parse(up.body)["name"].get<std::string>() + "@2.0.0";
  }

  // Registers a device (behind `gateway` when given); its token.
  std::string AddDevice(const std::string& name, const std::string& group = "g1",
                        const std::string& gateway = "") {
    json body = {{"name", name}, {"device_type", "board-a"}, {"group", group}};
    if (!gateway.empty()) body["gateway"] = gateway;
    json j = srv_.CallJson("POST", "/api/v1/devices", admin_, body, 201);
    tokens_[name] = j.value("token", "");
    return tokens_[name];
  }

  // The device's MQTT connection (user: its name, password: its token), subscribed to its down
  // topics in a persistent session. aloftd rewrites the broker's password file after a device is
  // added, so the first attempts may be refused until the broker has reloaded it.
  std::unique_ptr<MqttProbe> Connect(const std::string& name) {
    for (int attempt = 0; attempt < 100; ++attempt) {
      auto p =
          std::make_unique<MqttProbe>(broker_.url(), name, tokens_[name],
                                      std::vector<std::string>{mqtt::DownTopic(name, "#")}, false);
      Status s = p->Connect();
      if (s.ok()) return p;
      std::this_thread::sleep_for(100ms);
    }
    ADD_FAILURE() << name << " could not log in to the broker";
    return nullptr;
  }

  static json Payload(const std::optional<mqtt::Message>& m) {
    return m ? json::parse(m->payload, nullptr, false) : json();
  }

  json Action(int64_t id) {
    return srv_.CallJson("GET", "/api/v1/actions/" + std::to_string(id), admin_, nullptr, 200);
  }

  void Tick() { ASSERT_THAT(srv_.app().TickRollouts(), IsOkAndHolds(true)); }

  testing::TempDir dir_;
  testing::TestBroker broker_{dir_ / "broker"};
  testing::PackageFixture pkgs_;
  ManualClock clock_{kMidnight};
  std::string database_, admin_, release_;
  Bytes package_;
  std::map<std::string, std::string> tokens_;
  testing::TestServer srv_;
};

// Must show 1 (server side): property report, otaCheck -> otaUpgrade, a pushed rollout reaching
// an idle device, download, reports through to success.
TEST_P(PushTest, PropertyCheckPushDownloadReport) {
  AddDevice("d1");
  AddDevice("d2");
  auto d1 = Connect("d1");
  auto d2 = Connect("d2");
  ASSERT_TRUE(d1 && d2);

  // A property report: one version (the device type's first module) and attributes.
  ASSERT_THAT(d1->Publish(mqtt::UpTopic("d1", "property"),
                          R"({"version": "1.0.0", "attributes": {"hw": "rev-b"}})"),
              IsOk());
  // Wait for both: on PostgreSQL a device read is several statements at READ COMMITTED, so one
  // read can see the versions of a check-in committed between its statements but not its
  // attributes.
  json dev;
  for (int i = 0; i < 100; ++i) {
    dev = srv_.CallJson("GET", "/api/v1/devices/d1", admin_, nullptr, 200);
    if (dev["versions"].contains("main") && dev["attributes"].contains("hw")) break;
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(dev["versions"]["main"], "1.0.0");
  EXPECT_EQ(dev["attributes"]["hw"], "rev-b");

  // otaCheck with nothing to do: upgrade false, answering the request id.
  ASSERT_THAT(d1->Publish(mqtt::UpTopic("d1", "event"),
                          R"({"method": "otaCheck", "id": "q1", "params": {}})"),
              IsOk());
  json cmd = Payload(d1->NextOn(mqtt::DownTopic("d1", "command"), 5s));
  EXPECT_EQ(cmd["method"], "otaUpgrade");
  EXPECT_EQ(cmd["params"]["upgrade"], false);
  EXPECT_EQ(cmd["reply_to"], "q1");

  // A push rollout: its wave's commands reach both devices; d2 never asked.
  srv_.CallJson("POST", "/api/v1/rollouts", admin_,
                {{"name", "r1"},
                 {"release", release_},
                 {"filter", {{"groups", {"g1"}}}},
                 {"mode", "soft"},
                 {"push", true}},
                201);
  Tick();
  json c1 = Payload(d1->NextOn(mqtt::DownTopic("d1", "command"), 5s));
  json c2 = Payload(d2->NextOn(mqtt::DownTopic("d2", "command"), 5s));
  ASSERT_EQ(c2["method"], "otaUpgrade") << c2.dump();
  ASSERT_EQ(c1["method"], "otaUpgrade") << c1.dump();
  const json& p = c1["params"];
  EXPECT_EQ(p["upgrade"], true);
  EXPECT_EQ(p["module"], "main");
  EXPECT_EQ(p["version"], "2.0.0");
  EXPECT_EQ(p["mode"], "soft");
  EXPECT_EQ(p["size"], package_.size());
  EXPECT_EQ(p["sha256"], Sha256Hex(package_));
  Hasher md5(HashAlgorithm::kMd5);
  md5.Update(package_);
  EXPECT_EQ(p["md5"], HexEncode(md5.Finish()));
  EXPECT_TRUE(p["manifest"].is_object());
  const int64_t id = p["id"].get<int64_t>();
  EXPECT_NE(c2["params"]["id"], id);
  // Pushed once: the next tick pushes nothing again.
  Tick();
  EXPECT_FALSE(d2->NextOn(mqtt::DownTopic("d2", "command"), 500ms));

  // The download, over HTTP with the device token, is the package.
  client::HttpRequest get;
  get.method = "GET";
  get.url = p["url"].get<std::string>();
  get.headers = {"Authorization: Bearer " + tokens_["d1"]};
  auto res = client::Send(get);
  ASSERT_THAT(res, IsOk());
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, std::string(AsChars(package_)));

  // Reports through to success; the device now runs 2.0.0.
  for (const char* status : {"downloading", "downloaded", "installing", "success"}) {
    ASSERT_THAT(d1->Publish(mqtt::UpTopic("d1", "report"),
                            json({{"id", id}, {"status", status}, {"progress", 100}}).dump()),
                IsOk());
  }
  json a;
  for (int i = 0; i < 100; ++i) {
    a = Action(id);
    if (a["state"] == "succeeded") break;
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(a["state"], "succeeded");
  dev = srv_.CallJson("GET", "/api/v1/devices/d1", admin_, nullptr, 200);
  EXPECT_EQ(dev["versions"]["main"], "2.0.0");
  // A late report is refused with an error report, not silence.
  ASSERT_THAT(d1->Publish(mqtt::UpTopic("d1", "report"),
                          json({{"id", id}, {"status", "installing"}}).dump()),
              IsOk());
  json err = Payload(d1->NextOn(mqtt::DownTopic("d1", "error"), 5s));
  EXPECT_EQ(err["topic"], "aloft/v1/d/d1/up/report") << err.dump();
}

// Must show 4: malformed messages get an error report naming the problem; the bridge goes on.
TEST_P(PushTest, MalformedMessagesGetErrorReports_BridgeGoesOn) {
  AddDevice("d1");
  AddDevice("d2");
  AddDevice("gw");
  auto d1 = Connect("d1");
  ASSERT_TRUE(d1);
  struct Case {
    std::string kind, payload, message;
  } cases[] = {
      {"event", "not json {", "not JSON"},
      {"event", "[1, 2]", "JSON object, not array"},
      {"event", "{}", "'method' string"},
      {"event", R"({"method": 5})", "'method' string"},
      {"event", R"({"method": "otaFly"})", "unknown method 'otaFly'"},
      {"event", R"({"method": "otaCheck", "params": 3})", "'params' must be an object"},
      {"event", R"({"method": "otaCheck", "params": {"version": 7}})",
       "'version' must be a string"},
      {"property", R"({"versions": "1.0"})", "'versions' must be an object"},
      {"property", R"({"version": "not a version!"})", "version"},
      {"report", R"({"status": "success"})", "action's 'id'"},
      {"report", R"({"id": "12", "status": "success"})", "action's 'id'"},
      {"report", R"({"id": 999999, "status": "success"})", "999999"},
      {"report", R"({"id": 1, "status": 5})", "status"},
      {"whatever", R"({})", "unknown topic 'whatever'"},
      {"event", R"({"device": 5, "event": {}})", "'device' must be a string"},
      {"event", R"({"device": "d2"})", "'event' object"},
      {"event", R"({"device": "nobody", "event": {"method": "otaCheck"}})",
       "unknown device 'nobody'"},
      {"event", R"({"device": "d2", "event": {"method": "otaCheck"}})",
       "'d2' is not behind gateway 'd1'"},
      {"event", std::string(100 * 1024, ' ') + "{}", "at most 65536"},
  };
  for (const auto& c : cases) {
    ASSERT_THAT(d1->Publish(mqtt::UpTopic("d1", c.kind), c.payload), IsOk());
    json err = Payload(d1->NextOn(mqtt::DownTopic("d1", "error"), 5s));
    ASSERT_TRUE(err.is_object()) << "no error report for " << c.payload.substr(0, 60);
    EXPECT_THAT(err.value("message", ""), HasSubstr(c.message)) << c.payload.substr(0, 60);
    EXPECT_EQ(err["topic"], mqtt::UpTopic("d1", c.kind));
    EXPECT_TRUE(err["error"].is_string());
  }
  // Nothing changed, and the bridge still answers at once.
  EXPECT_TRUE(srv_.CallJson("GET", "/api/v1/devices/d1", admin_, nullptr, 200)["versions"].empty());
  ASSERT_THAT(d1->Publish(mqtt::UpTopic("d1", "event"), R"({"method": "otaCheck"})"), IsOk());
  EXPECT_EQ(Payload(d1->NextOn(mqtt::DownTopic("d1", "command"), 5s))["method"], "otaUpgrade");
  // 500 garbage messages in a burst, then a good one: answered.
  for (int i = 0; i < 500; ++i) {
    ASSERT_THAT(d1->client().Publish(mqtt::UpTopic("d1", "event"), "\x01\x02garbage", 1), IsOk());
  }
  ASSERT_THAT(d1->Publish(mqtt::UpTopic("d1", "event"), R"({"method": "otaCheck", "id": 42})"),
              IsOk());
  auto answered = d1->NextOn(mqtt::DownTopic("d1", "command"), 20s);
  ASSERT_TRUE(answered);
  EXPECT_EQ(Payload(answered)["reply_to"], 42);
}

// A gateway speaks for its sub-devices: their own versions, their own actions, commands wrapped
// with the sub-device's name on the gateway's topics.
TEST_P(PushTest, GatewayReportsAndReceivesForItsSubDevices) {
  AddDevice("gw", "gateways");
  AddDevice("s1", "subs", "gw");
  AddDevice("s2", "subs", "gw");
  EXPECT_EQ(srv_.CallJson("GET", "/api/v1/devices/s1", admin_, nullptr, 200)["gateway"], "gw");
  auto gw = Connect("gw");
  ASSERT_TRUE(gw);
  ASSERT_THAT(gw->Publish(mqtt::UpTopic("gw", "property"),
                          R"({"device": "s1", "event": {"version": "1.0.0"}})"),
              IsOk());
  ASSERT_THAT(gw->Publish(mqtt::UpTopic("gw", "property"),
                          R"({"device": "s2", "event": {"version": "1.5.0"}})"),
              IsOk());
  ASSERT_THAT(gw->Publish(mqtt::UpTopic("gw", "event"),
                          R"({"device": "s2", "event": {"method": "otaCheck"}})"),
              IsOk());
  json none = Payload(gw->NextOn(mqtt::DownTopic("gw", "command"), 5s));
  EXPECT_EQ(none["device"], "s2");
  EXPECT_EQ(none["command"]["params"]["upgrade"], false);
  EXPECT_EQ(srv_.CallJson("GET", "/api/v1/devices/s1", admin_, nullptr, 200)["versions"]["main"],
            "1.0.0");
  EXPECT_EQ(srv_.CallJson("GET", "/api/v1/devices/s2", admin_, nullptr, 200)["versions"]["main"],
            "1.5.0");
  // A push task for both: each command names its sub-device.
  json d = srv_.CallJson("POST", "/api/v1/deployments", admin_,
                         {{"release", release_}, {"devices", {"s1", "s2"}}, {"push", true}}, 201);
  ASSERT_EQ(d["actions"].size(), 2u);
  Tick();
  std::map<std::string, int64_t> got;
  for (int i = 0; i < 2; ++i) {
    json c = Payload(gw->NextOn(mqtt::DownTopic("gw", "command"), 5s));
    ASSERT_EQ(c["command"]["method"], "otaUpgrade") << c.dump();
    got[c["device"].get<std::string>()] = c["command"]["params"]["id"].get<int64_t>();
  }
  ASSERT_EQ(got.size(), 2u);
  // The gateway downloads s1's image with its own token, and reports for s1.
  client::HttpRequest get;
  get.method = "GET";
  get.url = srv_.base() + "/device/v1/s1/actions/" + std::to_string(got["s1"]) + "/artifact";
  get.headers = {"Authorization: Bearer " + tokens_["gw"]};
  auto res = client::Send(get);
  ASSERT_THAT(res, IsOk());
  EXPECT_EQ(res->status, 200) << res->body;
  EXPECT_EQ(res->body.size(), package_.size());
  // ... but another device's token may not.
  AddDevice("d9");
  get.headers = {"Authorization: Bearer " + tokens_["d9"]};
  res = client::Send(get);
  ASSERT_THAT(res, IsOk());
  EXPECT_EQ(res->status, 403);
  for (const char* status : {"downloading", "downloaded", "installing", "success"}) {
    ASSERT_THAT(
        gw->Publish(
            mqtt::UpTopic("gw", "report"),
            json({{"device", "s1"}, {"event", {{"id", got["s1"]}, {"status", status}}}}).dump()),
        IsOk());
  }
  ASSERT_THAT(
      gw->Publish(
          mqtt::UpTopic("gw", "report"),
          json({{"device", "s2"}, {"event", {{"id", got["s2"]}, {"status", "failure"}}}}).dump()),
      IsOk());
  json a1, a2;
  for (int i = 0; i < 100; ++i) {
    a1 = Action(got["s1"]);
    a2 = Action(got["s2"]);
    if (a1["state"] == "succeeded" && a2["state"] == "failed") break;
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(a1["state"], "succeeded");
  EXPECT_EQ(a2["state"], "failed");
  // A gateway cannot report for its sub-device's action as if it were its own.
  ASSERT_THAT(gw->Publish(mqtt::UpTopic("gw", "report"),
                          json({{"id", got["s2"]}, {"status", "success"}}).dump()),
              IsOk());
  json err = Payload(gw->NextOn(mqtt::DownTopic("gw", "error"), 5s));
  EXPECT_TRUE(err.is_object());
}

// Must show 3: the broker restarts in the middle of a push rollout. Commands published while it
// is down go out once it is back; every device gets exactly one command per action, and every
// action is pushed exactly once.
TEST_P(PushTest, BrokerRestartMidRollout_NothingLostNothingDuplicated) {
  constexpr int kDevices = 20;
  std::vector<std::unique_ptr<MqttProbe>> devices;
  for (int i = 0; i < kDevices; ++i) AddDevice(std::string("p").append(std::to_string(i)), "fleet");
  for (int i = 0; i < kDevices; ++i) {
    devices.push_back(Connect(std::string("p").append(std::to_string(i))));
    ASSERT_TRUE(devices.back());
  }
  srv_.CallJson("POST", "/api/v1/rollouts", admin_,
                {{"name", "r2"},
                 {"release", release_},
                 {"filter", {{"groups", {"fleet"}}}},
                 {"push", true},
                 {"waves", {{{"count", 10}}, {{"count", 10}}}}},
                201);
  Tick();  // wave 1: 10 commands
  broker_.Pause();
  for (int i = 0; i < 100 && srv_.app().PushConnected(); ++i) std::this_thread::sleep_for(50ms);
  ASSERT_FALSE(srv_.app().PushConnected());
  // Wave 1 succeeds over HTTP meanwhile, so wave 2 starts while the broker is down.
  json actions = srv_.CallJson("GET", "/api/v1/actions?limit=100", admin_, nullptr, 200);
  int done = 0;
  for (const auto& a : actions) {
    const std::string dev = a["device"];
    for (const char* status : {"downloading", "downloaded", "installing", "success"}) {
      srv_.CallJson(
          "POST",
          "/device/v1/" + dev + "/actions/" + std::to_string(a["id"].get<int64_t>()) + "/feedback",
          tokens_[dev], {{"status", status}}, 200);
    }
    ++done;
  }
  EXPECT_EQ(done, 10);
  Tick();  // wave 2: 10 commands published while the broker is down
  ASSERT_THAT(broker_.Resume(), IsOk());
  for (int i = 0; i < 200 && !srv_.app().PushConnected(); ++i) std::this_thread::sleep_for(50ms);
  ASSERT_TRUE(srv_.app().PushConnected());
  Tick();  // clears what was acknowledged; pushes nothing twice
  Tick();
  // Each device got the command for its own action, and no other action: 20 distinct actions.
  // QoS 1 is "at least once": a message in flight when the broker stopped may come again, with
  // the same action id, which the device recognises (docs/mqtt.md).
  std::set<int64_t> ids;
  int redelivered = 0;
  for (int i = 0; i < kDevices; ++i) {
    const std::string name = "p" + std::to_string(i);
    auto m = devices[i]->NextOn(mqtt::DownTopic(name, "command"), 10s);
    ASSERT_TRUE(m) << name << " got no command";
    json c = Payload(m);
    EXPECT_EQ(c["method"], "otaUpgrade");
    const int64_t id = c["params"]["id"].get<int64_t>();
    ids.insert(id);
    while (auto extra = devices[i]->Next(300ms)) {
      EXPECT_EQ(Payload(extra)["params"]["id"], id) << name << " got another action";
      ++redelivered;
    }
  }
  EXPECT_EQ(ids.size(), static_cast<size_t>(kDevices));
  std::cerr << "broker restart: " << redelivered << " command(s) redelivered by the broker\n";
  // The server made one action per device, all of this rollout.
  json all = srv_.CallJson("GET", "/api/v1/actions?limit=100", admin_, nullptr, 200);
  EXPECT_EQ(all.size(), static_cast<size_t>(kDevices));
  std::set<std::string> owners;
  for (const auto& a : all) owners.insert(a["device"].get<std::string>());
  EXPECT_EQ(owners.size(), static_cast<size_t>(kDevices));
}

// A client id is bound to its user name (use_username_as_clientid in the broker configuration,
// one broker user per aloftd): a device that connects with another device's client id, or with
// the bridge's, takes over neither connection nor persistent session.
TEST_P(PushTest, ClientIdTakeover_OfADeviceOrTheBridge_TakesNothing) {
  AddDevice("d1");
  const std::string d2_token = AddDevice("d2");
  auto victim = Connect("d1");
  ASSERT_TRUE(victim);
  Connect("d2")->Stop();  // d2 can log in: the broker has reloaded its password file
  auto acl = ReadFile(broker_.acl_file());
  ASSERT_THAT(acl, IsOk());
  const auto at = acl->find("\nuser ");
  ASSERT_NE(at, std::string::npos) << *acl;
  const std::string bridge = acl->substr(at + 6, acl->find('\n', at + 6) - at - 6);
  EXPECT_EQ(bridge.rfind("aloftd-", 0), 0u) << bridge;
  auto bridge_connects = [&] {
    auto res = srv_.Call("GET", "/metrics", "");
    const std::string name = "\naloft_mqtt_connects_total ";
    auto pos = res.body.find(name);
    return pos == std::string::npos ? -1 : std::stoi(res.body.substr(pos + name.size()));
  };
  ASSERT_EQ(bridge_connects(), 1);

  // d2 connects as "d1" (a clean session, which would also wipe d1's persistent one), then as
  // the bridge.
  for (const std::string& id : {std::string("d1"), bridge}) {
    MqttProbe attacker(broker_.url(), "d2", d2_token, {}, true, id);
    ASSERT_THAT(attacker.Connect(), IsOk());
    std::this_thread::sleep_for(1s);
    EXPECT_EQ(victim->connects(), 1) << "d1 was disconnected by a client with id " << id;
    EXPECT_EQ(bridge_connects(), 1) << "the bridge was disconnected by a client with id " << id;
  }
  // d1's session and the bridge still carry a push.
  json r = srv_.CallJson("POST", "/api/v1/deployments", admin_,
                         {{"release", release_}, {"devices", {"d1"}}, {"push", true}}, 201);
  ASSERT_EQ(r["actions"].size(), 1u);
  Tick();
  json cmd = Payload(victim->NextOn(mqtt::DownTopic("d1", "command"), 10s));
  EXPECT_EQ(cmd["method"], "otaUpgrade") << cmd.dump();
}

INSTANTIATE_TEST_SUITE_P(Backends, PushTest,
                         ::testing::Values(Backend::kSqlite, Backend::kPostgres),
                         [](const auto& p) { return testing::BackendName(p.param); });

}  // namespace
}  // namespace aloft::server
