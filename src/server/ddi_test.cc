// aloftd's hawkBit DDI API, driven by a client written from the hawkBit DDI documentation (the
// resources, bodies and links of eclipse.dev/hawkbit/rest-api/ddi): poll, deployment, download
// with resume, feedback through to success, cancel, config data, maintenance window and modes,
// and refused credentials. SQLite and PostgreSQL. The parsing and state mapping are tested first,
// without a server.
#include "server/ddi.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "client/http_client.h"
#include "core/clock.h"
#include "core/encoding.h"
#include "core/file.h"
#include "core/hash.h"
#include "server/config.h"
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
using S = ActionState;

// ---- without a server ----

TEST(DdiFeedback, BothBodyGenerationsParse_UnknownMembersIgnored) {
  // The older body: "id" and "time" (hawkBit's own example: "20140511T121314").
  auto old = ddi::ParseFeedback(json::parse(R"({"id": "7", "time": "20140511T121314",
      "status": {"execution": "proceeding", "result": {"finished": "none",
      "progress": {"cnt": 2, "of": 5}}, "details": ["Downloading", "50%"]}, "vendor": 1})"));
  ASSERT_THAT(old, IsOk());
  EXPECT_EQ(old->execution, "proceeding");
  EXPECT_EQ(old->finished, "none");
  EXPECT_EQ(old->progress, 40);
  EXPECT_EQ(old->details, "Downloading\n50%");
  // The current body: "timestamp", a code.
  auto now = ddi::ParseFeedback(json::parse(R"({"timestamp": 1795305600000,
      "status": {"execution": "closed", "result": {"finished": "success"}, "code": 200}})"));
  ASSERT_THAT(now, IsOk());
  EXPECT_EQ(now->execution, "closed");
  EXPECT_EQ(now->code, 200);
}

TEST(DdiFeedback, BadBodiesNameTheMember) {
  struct Case {
    const char* body;
    const char* message;
  } cases[] = {
      {R"({})", "'status' object"},
      {R"({"status": {"result": {"finished": "none"}}})", "missing status.execution"},
      {R"({"status": {"execution": "done", "result": {"finished": "none"}}})",
       "status.execution 'done'"},
      {R"({"status": {"execution": "closed"}})", "status.result"},
      {R"({"status": {"execution": "closed", "result": {"finished": "ok"}}})",
       "status.result.finished 'ok'"},
      {R"({"status": {"execution": 3, "result": {"finished": "none"}}})",
       "status.execution must be a string"},
      {R"({"status": {"execution": "closed", "result": {"finished": "none"}, "details": "x"}})",
       "status.details"},
      {R"({"status": {"execution": "closed", "result": {"finished": "none"}, "code": "x"}})",
       "status.code must be an integer"},
  };
  for (const auto& c : cases) {
    auto f = ddi::ParseFeedback(json::parse(c.body));
    EXPECT_THAT(f, IsError(Code::kInvalidArgument, HasSubstr(c.message))) << c.body;
  }
}

ddi::Feedback Fb(const char* execution, const char* finished = "none") {
  return {execution, finished, std::nullopt, std::nullopt, ""};
}

TEST(DdiFeedback, MapsOntoActionStates) {
  EXPECT_EQ(ddi::DeploymentTransition(Fb("closed", "success"), S::kPending, true), S::kSucceeded);
  EXPECT_EQ(ddi::DeploymentTransition(Fb("closed", "none"), S::kInstalling, true), S::kSucceeded);
  EXPECT_EQ(ddi::DeploymentTransition(Fb("closed", "failure"), S::kDownloading, true), S::kFailed);
  EXPECT_EQ(ddi::DeploymentTransition(Fb("download"), S::kPending, true), S::kDownloading);
  EXPECT_EQ(ddi::DeploymentTransition(Fb("downloaded"), S::kDownloading, true), S::kDownloaded);
  EXPECT_EQ(ddi::DeploymentTransition(Fb("proceeding"), S::kPending, true), S::kDownloading);
  EXPECT_EQ(ddi::DeploymentTransition(Fb("proceeding"), S::kDownloaded, true), S::kInstalling);
  // Outside the maintenance window "proceeding" is not an install.
  EXPECT_EQ(ddi::DeploymentTransition(Fb("proceeding"), S::kDownloaded, false), std::nullopt);
  EXPECT_EQ(ddi::DeploymentTransition(Fb("rejected"), S::kPending, true), std::nullopt);
  EXPECT_EQ(ddi::DeploymentTransition(Fb("downloaded"), S::kInstalling, true), std::nullopt);
  // While canceling only a final word counts.
  EXPECT_EQ(ddi::DeploymentTransition(Fb("proceeding"), S::kCanceling, true), std::nullopt);
  EXPECT_EQ(ddi::DeploymentTransition(Fb("closed", "success"), S::kCanceling, true), S::kSucceeded);
  EXPECT_EQ(ddi::CancelTransition(Fb("closed", "success"), S::kDownloaded), S::kCanceled);
  EXPECT_EQ(ddi::CancelTransition(Fb("canceled"), S::kDownloaded), S::kCanceled);
  EXPECT_EQ(ddi::CancelTransition(Fb("rejected"), S::kDownloaded), S::kDownloaded);
  EXPECT_EQ(ddi::CancelTransition(Fb("proceeding"), S::kDownloaded), std::nullopt);
}

TEST(DdiHandling, ModesAndTheWindow) {
  auto h = [](const char* mode, bool open) {
    auto x = ddi::HandlingFor(mode, open);
    return x.download + "/" + x.update;
  };
  EXPECT_EQ(h("forced", true), "forced/forced");
  EXPECT_EQ(h("soft", true), "attempt/attempt");
  EXPECT_EQ(h("download-only", true), "forced/skip");
  EXPECT_EQ(h("forced", false), "forced/skip");
  EXPECT_EQ(h("soft", false), "attempt/skip");
}

// ---- a DDI client, from the documentation ----

std::string DigestHex(HashAlgorithm algorithm, const std::string& data) {
  Hasher h(algorithm);
  h.Update(AsBytes(data));
  return h.FinishHex();
}

// 2026-11-22T00:00:00Z
const auto kMidnight = std::chrono::system_clock::time_point(std::chrono::seconds(1795305600));

class DdiTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    database_ = testing::FreshDatabase(GetParam(), dir_.path());
    if (database_.empty()) GTEST_SKIP() << "no PostgreSQL (set ALOFT_TEST_PG_URL)";
    ServerConfig c;
    c.data_dir = dir_ / "data";
    c.database = database_;
    c.threads = 4;
    c.rollout_tick_ms = 0;
    c.poll_interval_s = 3600;
    c.poll_interval_active_s = 90;
    c.ddi_gateway_token = "gw-secret-0123456789";
    ASSERT_THAT(srv_.Start(c, clock_, log_), IsOk());
    srv_.CallJson("POST", "/api/v1/device-types", srv_.admin(), {{"name", "gateway-x"}}, 201);
    // A plain artifact, as an SWUpdate device takes it.
    image_ = AsChars(testing::RandomBytes(300000, 7));
    ASSERT_THAT(WriteFileAtomic(dir_ / "update.swu", image_), IsOk());
    auto res = srv_.Upload(
        "/api/v1/releases?name=fw&version=2.0.0&device_type=gateway-x&filename=update.swu",
        dir_ / "update.swu", srv_.admin());
    ASSERT_EQ(res.status, 201) << res.body;
    for (const char* name : {"ctl-1", "ctl-2"}) {
      json d = srv_.CallJson("POST", "/api/v1/devices", srv_.admin(),
                             {{"name", name}, {"device_type", "gateway-x"}}, 201);
      tokens_[name] = d["token"];
    }
  }

  std::string Root(const std::string& controller) { return "/default/controller/v1/" + controller; }

  // A DDI request, authenticated as hawkBit clients are.
  client::HttpResponse Ddi(const std::string& method, const std::string& url,
                           const std::string& auth, const json& body = nullptr,
                           std::vector<std::string> headers = {}) {
    std::string path = url.starts_with("http") ? url.substr(srv_.base().size()) : url;
    headers.push_back("Authorization: " + auth);
    headers.push_back("Accept: application/hal+json");
    if (!body.is_null()) headers.push_back("Content-Type: application/json;charset=UTF-8");
    return srv_.Call(method, path, "", body.is_null() ? "" : body.dump(), headers);
  }
  json DdiJson(const std::string& method, const std::string& url, const std::string& auth,
               int expect, const json& body = nullptr) {
    auto res = Ddi(method, url, auth, body);
    EXPECT_EQ(res.status, expect) << method << " " << url << ": " << res.body;
    return json::parse(res.body, nullptr, false);
  }
  std::string Target(const std::string& name) { return "TargetToken " + tokens_[name]; }

  json Poll(const std::string& name) { return DdiJson("GET", Root(name), Target(name), 200); }

  int64_t Deploy(const std::string& name, const std::string& mode = "forced") {
    json r = srv_.CallJson("POST", "/api/v1/deployments", srv_.admin(),
                           {{"release", "fw@2.0.0"}, {"devices", {name}}, {"mode", mode}}, 201);
    return r["actions"][0]["id"];
  }

  json Action(int64_t id) {
    return srv_.CallJson("GET", "/api/v1/actions/" + std::to_string(id), srv_.admin(), nullptr,
                         200);
  }

  int Feedback(const std::string& name, const std::string& href, const std::string& execution,
               const std::string& finished = "none") {
    json body = {{"timestamp", 1795305600000},
                 {"status", {{"execution", execution}, {"result", {{"finished", finished}}}}}};
    return Ddi("POST", href + "/feedback", Target(name), body).status;
  }

  testing::TempDir dir_;
  ManualClock clock_{kMidnight};
  std::string database_;
  std::string image_;
  std::ostringstream log_;
  std::map<std::string, std::string> tokens_;
  testing::TestServer srv_;  // last: stops before what it uses goes
};

TEST_P(DdiTest, PollDeploymentDownloadWithResume_FeedbackToSuccess_ConfigData) {
  // First contact: nothing to do, asked for config data; sleep is HH:MM:SS.
  json base = Poll("ctl-1");
  EXPECT_EQ(base["config"]["polling"]["sleep"], "01:00:00");
  EXPECT_FALSE(base["_links"].contains("deploymentBase"));
  ASSERT_TRUE(base["_links"].contains("configData"));
  const std::string config_href = base["_links"]["configData"]["href"];
  EXPECT_EQ(config_href, srv_.base() + Root("ctl-1") + "/configData");

  // Config data: merge, replace, remove; stored as the device's attributes.
  auto attrs = [&] {
    return srv_.CallJson("GET", "/api/v1/devices/ctl-1", srv_.admin(), nullptr, 200)["attributes"];
  };
  EXPECT_EQ(Ddi("PUT", config_href, Target("ctl-1"),
                {{"mode", "merge"}, {"data", {{"VIN", "JH4TB2H26CC000000"}, {"hwRevision", "2"}}}})
                .status,
            200);
  EXPECT_EQ(attrs(), json({{"VIN", "JH4TB2H26CC000000"}, {"hwRevision", "2"}}));
  // The older body: no mode (merge), and id/time/status members, ignored.
  EXPECT_EQ(Ddi("PUT", config_href, Target("ctl-1"),
                {{"id", ""},
                 {"time", "20140511T121314"},
                 {"status", {{"execution", "closed"}, {"result", {{"finished", "success"}}}}},
                 {"data", {{"mac", "00:11:22:33:44:55"}}}})
                .status,
            200);
  EXPECT_EQ(attrs().size(), 3u);
  EXPECT_EQ(Ddi("PUT", config_href, Target("ctl-1"), {{"mode", "remove"}, {"data", {{"VIN", ""}}}})
                .status,
            200);
  EXPECT_EQ(attrs(), json({{"hwRevision", "2"}, {"mac", "00:11:22:33:44:55"}}));
  EXPECT_EQ(Ddi("PUT", config_href, Target("ctl-1"), {{"mode", "replace"}, {"data", {{"a", "1"}}}})
                .status,
            200);
  EXPECT_EQ(attrs(), json({{"a", "1"}}));
  EXPECT_FALSE(Poll("ctl-1")["_links"].contains("configData")) << "asked only while it has none";

  // An assignment: the poll links its deployment; the active sleep applies.
  const int64_t id = Deploy("ctl-1");
  base = Poll("ctl-1");
  EXPECT_EQ(base["config"]["polling"]["sleep"], "00:01:30");
  ASSERT_TRUE(base["_links"].contains("deploymentBase")) << base.dump();
  const std::string href = base["_links"]["deploymentBase"]["href"];
  EXPECT_THAT(href, HasSubstr(Root("ctl-1") + "/deploymentBase/" + std::to_string(id) + "?c="));
  EXPECT_FALSE(Poll("ctl-2")["_links"].contains("deploymentBase")) << "ctl-2 was not assigned";

  json dep = DdiJson("GET", href, Target("ctl-1"), 200);
  EXPECT_EQ(dep["id"], std::to_string(id));
  EXPECT_EQ(dep["deployment"]["download"], "forced");
  EXPECT_EQ(dep["deployment"]["update"], "forced");
  EXPECT_FALSE(dep["deployment"].contains("maintenanceWindow")) << "no window, no member";
  ASSERT_EQ(dep["deployment"]["chunks"].size(), 1u);
  const json& chunk = dep["deployment"]["chunks"][0];
  EXPECT_EQ(chunk["part"], "main");
  EXPECT_EQ(chunk["version"], "2.0.0");
  EXPECT_EQ(chunk["name"], "fw");
  ASSERT_EQ(chunk["artifacts"].size(), 1u);
  const json& art = chunk["artifacts"][0];
  EXPECT_EQ(art["filename"], "update.swu");
  EXPECT_EQ(art["size"], image_.size());
  EXPECT_EQ(art["hashes"]["sha256"], DigestHex(HashAlgorithm::kSha256, image_));
  EXPECT_EQ(art["hashes"]["sha1"], DigestHex(HashAlgorithm::kSha1, image_));
  EXPECT_EQ(art["hashes"]["md5"], DigestHex(HashAlgorithm::kMd5, image_));
  const std::string download = art["_links"]["download-http"]["href"];
  EXPECT_EQ(art["_links"]["download"]["href"], download);
  EXPECT_THAT(download, HasSubstr("/softwaremodules/"));

  // Feedback, the older body: the device works on it.
  json old_body = {{"id", std::to_string(id)},
                   {"time", "20140511T121314"},
                   {"status",
                    {{"execution", "proceeding"},
                     {"result", {{"finished", "none"}, {"progress", {{"cnt", 0}, {"of", 2}}}}},
                     {"details", {"Starting download"}}}},
                   {"unknown", {{"member", true}}}};
  EXPECT_EQ(Ddi("POST", Root("ctl-1") + "/deploymentBase/" + std::to_string(id) + "/feedback",
                Target("ctl-1"), old_body)
                .status,
            200);
  EXPECT_EQ(Action(id)["state"], "downloading");

  // Download with resume: the connection drops after 100,000 bytes; a Range request goes on.
  auto first = Ddi("GET", download, Target("ctl-1"), nullptr, {"Range: bytes=0-99999"});
  ASSERT_EQ(first.status, 206);
  ASSERT_EQ(first.body.size(), 100000u);
  auto rest = Ddi("GET", download, Target("ctl-1"), nullptr, {"Range: bytes=100000-"});
  ASSERT_EQ(rest.status, 206);
  EXPECT_EQ(first.body + rest.body, image_);
  auto whole = Ddi("GET", download, Target("ctl-1"));
  EXPECT_EQ(whole.status, 200);
  EXPECT_EQ(Sha256Hex(AsBytes(whole.body)), art["hashes"]["sha256"]);
  auto md5 = Ddi("GET", art["_links"]["md5sum-http"]["href"], Target("ctl-1"));
  EXPECT_EQ(md5.status, 200);
  EXPECT_EQ(md5.body, DigestHex(HashAlgorithm::kMd5, image_) + "  update.swu\n");
  auto listed = DdiJson("GET", download.substr(0, download.rfind('/')), Target("ctl-1"), 200);
  EXPECT_EQ(listed, chunk["artifacts"]);

  // Feedback, the current body: downloaded, then closed with success.
  EXPECT_EQ(Feedback("ctl-1", href.substr(0, href.find('?')), "downloaded"), 200);
  EXPECT_EQ(Action(id)["state"], "downloaded");
  json history = DdiJson("GET", href + "&actionHistory=2", Target("ctl-1"), 200);
  EXPECT_EQ(history["actionHistory"]["status"], "downloaded");
  EXPECT_EQ(history["actionHistory"]["messages"].size(), 2u);
  EXPECT_EQ(Feedback("ctl-1", href.substr(0, href.find('?')), "closed", "success"), 200);
  json done = Action(id);
  EXPECT_EQ(done["state"], "succeeded");
  json dev = srv_.CallJson("GET", "/api/v1/devices/ctl-1", srv_.admin(), nullptr, 200);
  EXPECT_EQ(dev["versions"]["main"], "2.0.0");

  // Afterwards: the installed base is linked; the action takes no more feedback (410).
  base = Poll("ctl-1");
  EXPECT_FALSE(base["_links"].contains("deploymentBase"));
  ASSERT_TRUE(base["_links"].contains("installedBase"));
  json installed = DdiJson("GET", base["_links"]["installedBase"]["href"], Target("ctl-1"), 200);
  EXPECT_EQ(installed["id"], std::to_string(id));
  EXPECT_EQ(Feedback("ctl-1", href.substr(0, href.find('?')), "closed", "success"), 410);
  EXPECT_EQ(Ddi("GET", href, Target("ctl-1")).status, 404);
  // The installed base's links work (they answered 404 once the action had succeeded).
  const json& installed_art = installed["deployment"]["chunks"][0]["artifacts"][0];
  auto again = Ddi("GET", installed_art["_links"]["download-http"]["href"], Target("ctl-1"));
  EXPECT_EQ(again.status, 200);
  EXPECT_EQ(again.body, image_);
  EXPECT_EQ(Ddi("GET", installed_art["_links"]["md5sum-http"]["href"], Target("ctl-1")).status,
            200);
  std::string other = download;
  other.replace(other.find("/ctl-1/"), 7, "/ctl-2/");
  EXPECT_EQ(Ddi("GET", other, Target("ctl-2")).status, 404) << "a module ctl-2 never had";
}

TEST_P(DdiTest, CancelIsOfferedThenConfirmedOrRejected) {
  // Pending (the device never started): closed at once, the device sees nothing.
  int64_t id = Deploy("ctl-1");
  srv_.CallJson("POST", "/api/v1/actions/" + std::to_string(id) + "/cancel", srv_.admin(), nullptr,
                200);
  EXPECT_EQ(Action(id)["state"], "canceled");
  EXPECT_EQ(Poll("ctl-1")["_links"].count("deploymentBase"), 0u);
  EXPECT_EQ(Poll("ctl-1")["_links"].count("cancelAction"), 0u);

  // Started: the device is asked to cancel, and may reject.
  id = Deploy("ctl-1");
  const std::string dep = Root("ctl-1") + "/deploymentBase/" + std::to_string(id);
  EXPECT_EQ(Feedback("ctl-1", dep, "download"), 200);
  EXPECT_EQ(Feedback("ctl-1", dep, "downloaded"), 200);
  srv_.CallJson("POST", "/api/v1/actions/" + std::to_string(id) + "/cancel", srv_.admin(), nullptr,
                200);
  EXPECT_EQ(Action(id)["state"], "canceling");
  json base = Poll("ctl-1");
  EXPECT_FALSE(base["_links"].contains("deploymentBase"));
  ASSERT_TRUE(base["_links"].contains("cancelAction")) << base.dump();
  const std::string cancel = base["_links"]["cancelAction"]["href"];
  json c = DdiJson("GET", cancel, Target("ctl-1"), 200);
  EXPECT_EQ(c["id"], std::to_string(id));
  EXPECT_EQ(c["cancelAction"]["stopId"], std::to_string(id));
  EXPECT_EQ(Ddi("GET", dep, Target("ctl-1")).status, 404) << "no longer offered";
  EXPECT_EQ(Ddi("GET", cancel, Target("ctl-2")).status, 403) << "another device's token";

  EXPECT_EQ(Feedback("ctl-1", cancel, "rejected"), 200);
  EXPECT_EQ(Action(id)["state"], "downloaded") << "back to where it was";
  EXPECT_TRUE(Poll("ctl-1")["_links"].contains("deploymentBase"));
  EXPECT_EQ(Feedback("ctl-1", cancel, "canceled"), 409) << "not being canceled now";

  srv_.CallJson("POST", "/api/v1/actions/" + std::to_string(id) + "/cancel", srv_.admin(), nullptr,
                200);
  EXPECT_EQ(Feedback("ctl-1", cancel, "proceeding"), 200);
  EXPECT_EQ(Action(id)["state"], "canceling") << "only a final word closes it";
  EXPECT_EQ(Feedback("ctl-1", cancel, "closed", "success"), 200);
  EXPECT_EQ(Action(id)["state"], "canceled");
  EXPECT_EQ(Poll("ctl-1")["_links"].count("deploymentBase"), 0u);
  EXPECT_EQ(Poll("ctl-1")["_links"].count("cancelAction"), 0u);
  EXPECT_EQ(Feedback("ctl-1", cancel, "closed", "success"), 410);
}

TEST_P(DdiTest, ModesAndMaintenanceWindow) {
  int64_t id = Deploy("ctl-1", "soft");
  json dep =
      DdiJson("GET", Root("ctl-1") + "/deploymentBase/" + std::to_string(id), Target("ctl-1"), 200);
  EXPECT_EQ(dep["deployment"]["download"], "attempt");
  EXPECT_EQ(dep["deployment"]["update"], "attempt");
  id = Deploy("ctl-2", "download-only");
  dep =
      DdiJson("GET", Root("ctl-2") + "/deploymentBase/" + std::to_string(id), Target("ctl-2"), 200);
  EXPECT_EQ(dep["deployment"]["download"], "forced");
  EXPECT_EQ(dep["deployment"]["update"], "skip");

  // A rollout whose window opens at 02:00 UTC: DDI devices are told "skip" and "unavailable"
  // until then, and a "proceeding" after the download does not count as installing.
  srv_.CallJson("POST", "/api/v1/actions/" + std::to_string(id) + "/cancel", srv_.admin(), nullptr,
                200);
  json d3 = srv_.CallJson("POST", "/api/v1/devices", srv_.admin(),
                          {{"name", "ctl-3"}, {"device_type", "gateway-x"}}, 201);
  tokens_["ctl-3"] = d3["token"];
  srv_.CallJson("POST", "/api/v1/rollouts", srv_.admin(),
                {{"name", "night"},
                 {"release", "fw@2.0.0"},
                 {"filter", {{"devices", {"ctl-3"}}}},
                 {"maintenance_window",
                  {{"schedule", "0 2 * * *"}, {"duration", "01:00:00"}, {"time_zone", "UTC"}}}},
                201);
  ASSERT_THAT(srv_.app().TickRollouts(), IsOkAndHolds(true));
  json base = Poll("ctl-3");
  ASSERT_TRUE(base["_links"].contains("deploymentBase")) << base.dump();
  const std::string closed_href = base["_links"]["deploymentBase"]["href"];
  dep = DdiJson("GET", closed_href, Target("ctl-3"), 200);
  EXPECT_EQ(dep["deployment"]["update"], "skip");
  EXPECT_EQ(dep["deployment"]["maintenanceWindow"], "unavailable");
  const std::string href = closed_href.substr(0, closed_href.find('?'));
  EXPECT_EQ(Feedback("ctl-3", href, "downloaded"), 200);
  EXPECT_EQ(Feedback("ctl-3", href, "proceeding"), 200);
  const int64_t rid = std::stoll(dep["id"].get<std::string>());
  EXPECT_EQ(Action(rid)["state"], "downloaded");

  clock_.Advance(std::chrono::hours(2));
  base = Poll("ctl-3");
  EXPECT_NE(base["_links"]["deploymentBase"]["href"], closed_href) << "the link changes with it";
  dep = DdiJson("GET", base["_links"]["deploymentBase"]["href"], Target("ctl-3"), 200);
  EXPECT_EQ(dep["deployment"]["update"], "forced");
  EXPECT_EQ(dep["deployment"]["maintenanceWindow"], "available");
  EXPECT_EQ(Feedback("ctl-3", href, "proceeding"), 200);
  EXPECT_EQ(Action(rid)["state"], "installing");
}

TEST_P(DdiTest, BadTokensAndBadRequestsAreRefused) {
  const std::string root = Root("ctl-1");
  auto none = srv_.Call("GET", root, "");
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(none.headers["www-authenticate"], "TargetToken");
  EXPECT_EQ(Ddi("GET", root, "Bearer " + tokens_["ctl-1"]).status, 401) << "DDI has its schemes";
  EXPECT_EQ(Ddi("GET", root, "TargetToken wrong").status, 401);
  EXPECT_EQ(Ddi("GET", root, "TargetToken " + srv_.admin()).status, 401) << "operator token";
  EXPECT_EQ(Ddi("GET", root, Target("ctl-2")).status, 403) << "another device's token";
  EXPECT_EQ(Ddi("GET", root, "GatewayToken wrong").status, 401);
  EXPECT_EQ(Ddi("GET", root, "GatewayToken gw-secret-0123456789").status, 200);
  auto unknown = Ddi("GET", Root("nobody"), "GatewayToken gw-secret-0123456789");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_THAT(unknown.body, HasSubstr("not a registered device"));
  EXPECT_EQ(Ddi("GET", "/other/controller/v1/ctl-1", Target("ctl-1")).status, 404) << "tenant";

  int64_t id = Deploy("ctl-1");
  const std::string dep = root + "/deploymentBase/" + std::to_string(id);
  auto bad = Ddi("POST", dep + "/feedback", Target("ctl-1"),
                 {{"status", {{"execution", "finished"}, {"result", {{"finished", "none"}}}}}});
  EXPECT_EQ(bad.status, 400);
  EXPECT_THAT(bad.body, HasSubstr("status.execution 'finished'"));
  EXPECT_EQ(Ddi("POST", dep + "/feedback", Target("ctl-1"), json::array()).status, 400);
  EXPECT_EQ(
      Ddi("PUT", root + "/configData", Target("ctl-1"), {{"mode", "bogus"}, {"data", {}}}).status,
      400);
  EXPECT_EQ(
      Ddi("PUT", root + "/configData", Target("ctl-1"), {{"data", {{"k", json::array()}}}}).status,
      400);
  EXPECT_EQ(
      Ddi("GET", Root("ctl-2") + "/deploymentBase/" + std::to_string(id), Target("ctl-2")).status,
      404)
      << "another device's action";
  EXPECT_EQ(Ddi("GET", root + "/deploymentBase/abc", Target("ctl-1")).status, 400);
  EXPECT_EQ(Ddi("GET", root + "/softwaremodules/999/artifacts/update.swu", Target("ctl-1")).status,
            404);
  EXPECT_EQ(Ddi("GET", root + "/cancelAction/" + std::to_string(id), Target("ctl-1")).status, 404);
  EXPECT_EQ(Action(id)["state"], "pending") << "nothing changed";
  EXPECT_THAT(log_.str(), ::testing::Not(HasSubstr("-> 5"))) << "no 5xx";
}

INSTANTIATE_TEST_SUITE_P(Backends, DdiTest, ::testing::Values(Backend::kSqlite, Backend::kPostgres),
                         [](const auto& p) { return testing::BackendName(p.param); });

}  // namespace
}  // namespace aloft::server
