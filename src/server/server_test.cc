// aloftd over real HTTP on loopback, against SQLite and against a real PostgreSQL server: the
// operator's and the devices' whole story, and every route fed bad input.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "client/http_client.h"
#include "core/file.h"
#include "core/hash.h"
#include "server/app.h"
#include "server/config.h"
#include "server/download.h"
#include "server/server_fixture.h"
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

TEST_P(ServerTest, EndToEnd_UploadProvisionDeployCheckInResumeDownloadFeedback) {
  std::string package_path;
  json rel = SetUpFleet(&package_path);
  EXPECT_EQ(rel["id"], "fw@1.2.0");
  EXPECT_EQ(rel["kind"], "package");
  EXPECT_EQ(rel["modules"], json({"bms", "main"}));
  std::string pkg_bytes = ReadFile(package_path, 64 << 20).value();
  EXPECT_EQ(rel["sha256"], Sha256Hex(AsBytes(pkg_bytes)));
  EXPECT_EQ(rel["size"], pkg_bytes.size());

  std::map<std::string, std::string> tokens;
  for (const char* name : {"dev-1", "dev-2", "dev-3"}) {
    tokens[name] = AddDevice(name, {{"group", "lab"}});
    ASSERT_FALSE(tokens[name].empty());
  }
  AddDevice("dev-other", {{"group", "field"}});
  json dep = CallJson("POST", "/api/v1/deployments", admin_,
                      {{"release", "fw@1.2.0"}, {"group", "lab"}}, 201);
  ASSERT_EQ(dep["actions"].size(), 3u);
  EXPECT_TRUE(dep["skipped"].empty());

  for (const auto& [name, token] : tokens) {
    json in = CallJson("POST", "/device/v1/" + name + "/check-in", token,
                       {{"versions", {{"main", "1.0.0"}, {"bms", "0.9.0"}}}}, 200);
    ASSERT_TRUE(in["action"].is_object()) << in.dump();
    const json& action = in["action"];
    EXPECT_EQ(action["release"], "fw");
    EXPECT_EQ(action["version"], "1.2.0");
    EXPECT_EQ(action["download"]["sha256"], rel["sha256"]);
    EXPECT_EQ(action["download"]["md5"], rel["md5"]);
    EXPECT_EQ(action["manifest"]["signed"]["name"], "fw");
    EXPECT_GT(in["poll_interval_s"].get<int>(), 0);
    std::string url = action["download"]["url"];
    std::string path = url.substr(base_.size());
    int64_t id = action["id"];

    // Download half, "lose the connection", resume from where it stopped.
    size_t half = pkg_bytes.size() / 2;
    auto first = Call("GET", path, token, "", {"Range: bytes=0-" + std::to_string(half - 1)});
    ASSERT_EQ(first.status, 206);
    std::string etag = first.headers["etag"];
    EXPECT_EQ(etag, "\"" + rel["sha256"].get<std::string>() + "\"");
    EXPECT_EQ(first.headers["content-range"],
              "bytes 0-" + std::to_string(half - 1) + "/" + std::to_string(pkg_bytes.size()));
    CallJson("POST", path.substr(0, path.rfind('/')) + "/feedback", token,
             {{"status", "downloading"}, {"progress", 50}}, 200);
    auto rest = Call("GET", path, token, "",
                     {"Range: bytes=" + std::to_string(half) + "-", "If-Range: " + etag});
    ASSERT_EQ(rest.status, 206);
    EXPECT_EQ(first.body + rest.body, pkg_bytes) << "resumed download differs from the artifact";

    std::string fb = "/device/v1/" + name + "/actions/" + std::to_string(id) + "/feedback";
    for (const char* st : {"downloaded", "installing", "installed"}) {
      CallJson("POST", fb, token, {{"status", st}}, 200);
    }
    CallJson("POST", fb, token, {{"status", "success"}, {"details", {"rebooted", "healthy"}}}, 200);
    json done = CallJson("GET", "/api/v1/actions/" + std::to_string(id), admin_, nullptr, 200);
    EXPECT_EQ(done["state"], "succeeded");
    std::vector<std::string> statuses;
    for (const auto& e : done["events"]) statuses.push_back(e["status"]);
    EXPECT_THAT(statuses, ::testing::ElementsAre("created", "downloading", "downloaded",
                                                 "installing", "installed", "success"));
    // No more action, and a finished action's artifact is no longer offered.
    json again = CallJson("POST", "/device/v1/" + name + "/check-in", token, json::object(), 200);
    EXPECT_TRUE(again["action"].is_null());
    EXPECT_EQ(Call("GET", path, token).status, 403);
  }

  json stats = CallJson("GET", "/api/v1/stats", admin_, nullptr, 200);
  EXPECT_EQ(stats["devices"], 4);
  EXPECT_EQ(stats["actions_by_state"]["succeeded"], 3);
  EXPECT_EQ(stats["devices_by_version"]["board-a"]["main"]["1.2.0"], 3);
  EXPECT_EQ(stats["devices_by_version"]["board-a"]["bms"]["1.2.0"], 3);
  json dev = CallJson("GET", "/api/v1/devices/dev-2", admin_, nullptr, 200);
  EXPECT_EQ(dev["versions"]["main"], "1.2.0");
  json audit = CallJson("GET", "/api/v1/audit", admin_, nullptr, 200);
  std::vector<std::string> actions;
  for (const auto& e : audit) actions.push_back(e["action"]);
  EXPECT_THAT(actions, ::testing::IsSupersetOf({"device-type.create", "release.create",
                                                "device.create", "deployment.create"}));
  auto metrics = Call("GET", "/metrics", "");
  EXPECT_THAT(metrics.body, HasSubstr("aloft_http_requests_total{route=\"/device/v1/{device}/"
                                      "check-in\",method=\"POST\",status=\"200\"} 6"));
  EXPECT_THAT(metrics.body, HasSubstr("aloft_devices_seen 3"));
}

TEST_P(ServerTest, Download_MultiRangeUnsatisfiableIfRangeMismatchAndNotModified) {
  SetUpFleet();
  std::string token = AddDevice("dev-1");
  CallJson("POST", "/api/v1/deployments", admin_, {{"release", "fw@1.2.0"}, {"devices", {"dev-1"}}},
           201);
  json in = CallJson("POST", "/device/v1/dev-1/check-in", token, json::object(), 200);
  std::string path = in["action"]["download"]["url"].get<std::string>().substr(base_.size());
  uint64_t size = in["action"]["download"]["size"];
  std::string all = Call("GET", path, token).body;
  ASSERT_EQ(all.size(), size);

  auto multi = Call("GET", path, token, "", {"Range: bytes=0-9, 100-109"});
  EXPECT_EQ(multi.status, 206);
  EXPECT_THAT(multi.headers["content-type"], HasSubstr("multipart/byteranges; boundary="));
  EXPECT_THAT(multi.body, HasSubstr("Content-Range: bytes 0-9/" + std::to_string(size)));
  EXPECT_THAT(multi.body, HasSubstr(all.substr(100, 10)));

  auto bad = Call("GET", path, token, "", {"Range: bytes=" + std::to_string(size) + "-"});
  EXPECT_EQ(bad.status, 416);
  EXPECT_EQ(bad.headers["content-range"], "bytes */" + std::to_string(size));

  auto changed = Call("GET", path, token, "", {"Range: bytes=10-", "If-Range: \"other\""});
  EXPECT_EQ(changed.status, 200);
  EXPECT_EQ(changed.body.size(), size);

  auto suffix = Call("GET", path, token, "", {"Range: bytes=-5"});
  EXPECT_EQ(suffix.status, 206);
  EXPECT_EQ(suffix.body, all.substr(size - 5));

  auto same = Call("GET", path, token, "", {"If-None-Match: " + changed.headers["etag"]});
  EXPECT_EQ(same.status, 304);
  EXPECT_TRUE(same.body.empty());

  // Another device's token may not fetch this device's artifact.
  std::string other = AddDevice("dev-2");
  EXPECT_EQ(Call("GET", path, other).status, 403);
  EXPECT_EQ(Call("GET", path, "").status, 401);
}

TEST_P(ServerTest, RegistrationToken_RegistersADeviceOnFirstContactOnce) {
  SetUpFleet();
  json reg =
      CallJson("POST", "/api/v1/device-types/board-a/registration-tokens", admin_, nullptr, 201);
  std::string rt = reg["token"];
  json first =
      CallJson("POST", "/device/v1/new-1/check-in", rt,
               {{"versions", {{"main", "1.0.0"}}}, {"attributes", {{"serial", "A1"}}}}, 200);
  ASSERT_TRUE(first.contains("token"));
  std::string own = first["token"];
  json dev = CallJson("GET", "/api/v1/devices/new-1", admin_, nullptr, 200);
  EXPECT_EQ(dev["device_type"], "board-a");
  EXPECT_EQ(dev["versions"]["main"], "1.0.0");
  EXPECT_EQ(dev["attributes"]["serial"], "A1");
  auto dup = Call("POST", "/device/v1/new-1/check-in", rt, "{}");
  EXPECT_EQ(dup.status, 409);
  EXPECT_THAT(client::ErrorMessage(dup), HasSubstr("already registered"));
  CallJson("POST", "/device/v1/new-1/check-in", own, json::object(), 200);
}

TEST_P(ServerTest, Releases_DuplicateUntrustedTamperedAndArtifacts) {
  std::string path;
  SetUpFleet(&path);
  // The same version again.
  auto dup = Upload("", path, admin_);
  EXPECT_EQ(dup.status, 409);
  EXPECT_THAT(client::ErrorMessage(dup), HasSubstr("fw@1.2.0 already exists"));
  // Signed by a key the server does not trust.
  Bytes untrusted =
      pkgs_.Pack({{"main", testing::RandomBytes(1000, 3)}}, pkg::Compression::kNone, {1});
  auto u = Upload("", WritePackage("u.aloft", untrusted), admin_);
  EXPECT_EQ(u.status, 422);
  EXPECT_THAT(client::ErrorMessage(u), HasSubstr("not trusted"));
  // One payload byte flipped.
  Bytes good = pkgs_.Pack({{"main", testing::RandomBytes(100000, 4)}}, pkg::Compression::kNone);
  Bytes bad = good;
  bad[bad.size() - 2000] ^= 0x01;
  auto t = Upload("", WritePackage("t.aloft", bad), admin_);
  EXPECT_EQ(t.status, 422);
  EXPECT_THAT(client::ErrorMessage(t), HasSubstr("sha256 mismatch"));
  // Not a package at all, and no name given.
  auto junk = Upload("", WritePackage("junk.bin", testing::RandomBytes(5000, 5)), admin_);
  EXPECT_GE(junk.status, 400);
  EXPECT_LT(junk.status, 500);
  // A plain artifact of any format; the server computes its digests.
  Bytes swu = testing::RandomBytes(70000, 6);
  auto a = Upload("?name=app&version=1.0.1&device_type=board-a&module=bms&filename=app.swu",
                  WritePackage("app.swu", swu), admin_);
  ASSERT_EQ(a.status, 201) << a.body;
  json aj = json::parse(a.body);
  EXPECT_EQ(aj["sha256"], Sha256Hex(swu));
  Hasher md5(HashAlgorithm::kMd5), sha1(HashAlgorithm::kSha1);
  md5.Update(swu);
  sha1.Update(swu);
  EXPECT_EQ(aj["md5"], md5.FinishHex());
  EXPECT_EQ(aj["sha1"], sha1.FinishHex());
  // Unknown module for the device type.
  auto m = Upload("?name=app&version=1.0.2&device_type=board-a&module=modem",
                  WritePackage("m.swu", swu), admin_);
  EXPECT_EQ(m.status, 400);
  EXPECT_THAT(client::ErrorMessage(m), HasSubstr("'modem' is not a module of device type"));
  // Only the failed uploads' releases are missing; nothing half-visible.
  json list = CallJson("GET", "/api/v1/releases", admin_, nullptr, 200);
  EXPECT_EQ(list.size(), 2u);
  // Disable, restrict, delete.
  CallJson("PATCH", "/api/v1/releases/app/1.0.1", admin_, {{"enabled", false}}, 200);
  auto dep = Call("POST", "/api/v1/deployments", admin_,
                  json({{"release", "app@1.0.1"}, {"group", "x"}}).dump());
  EXPECT_EQ(dep.status, 400);
  EXPECT_THAT(client::ErrorMessage(dep), HasSubstr("disabled"));
  EXPECT_EQ(Call("DELETE", "/api/v1/releases/app/1.0.1", admin_).status, 204);
  EXPECT_EQ(Call("GET", "/api/v1/releases/app/1.0.1", admin_).status, 404);
}

TEST_P(ServerTest, Restart_RemovesInterruptedUploadsAndKeepsEverythingElse) {
  SetUpFleet();
  AddDevice("dev-1");
  Stop();
  // A dead process's partial upload goes; a live process's (another server's) stays.
  const std::string dead = dir_ / ("data/artifacts/.incoming/upload-" + HostName() + "-999999-1-1");
  const std::string live = dir_ / ("data/artifacts/.incoming/upload-" + HostName() + "-1-1-1");
  ASSERT_THAT(WriteFileAtomic(dead, "half an upload"), IsOk());
  ASSERT_THAT(WriteFileAtomic(live, "init's upload"), IsOk());
  Start();
  EXPECT_FALSE(File::OpenRead(dead).ok());
  EXPECT_TRUE(File::OpenRead(live).ok());
  EXPECT_EQ(CallJson("GET", "/api/v1/releases", admin_, nullptr, 200).size(), 1u);
  EXPECT_EQ(CallJson("GET", "/api/v1/devices", admin_, nullptr, 200)["total"], 1);
}

// Every route, fed what clients get wrong: always a 4xx with a JSON error naming the problem.
TEST_P(ServerTest, BadInput_EveryRouteAnswers4xxWithAJsonError) {
  SetUpFleet();
  std::string dev = AddDevice("dev-1", {{"group", "lab"}});
  json viewer =
      CallJson("POST", "/api/v1/tokens", admin_, {{"name", "ro"}, {"role", "viewer"}}, 201);
  std::string ro = viewer["token"];
  CallJson("POST", "/api/v1/deployments", admin_, {{"release", "fw@1.2.0"}, {"group", "lab"}}, 201);

  struct Case {
    std::string method, path, token, body;
    int status;
    std::string message;  // a part of the error message
  };
  const std::string big(70 * 1024, 'x');
  const std::vector<Case> cases = {
      // Credentials.
      {"GET", "/api/v1/devices", "", "", 401, "missing credentials"},
      {"GET", "/api/v1/devices", "aloft_a_wrong", "", 401, "unknown or revoked token"},
      {"POST", "/api/v1/device-types", ro, R"({"name":"x"})", 403, "needs 'admin'"},
      {"POST", "/api/v1/devices", ro, R"({"name":"x","device_type":"board-a"})", 403,
       "role 'viewer'"},
      {"POST", "/api/v1/deployments", ro, R"({"release":"fw@1.2.0","group":"lab"})", 403,
       "needs 'release'"},
      {"POST", "/api/v1/releases?name=a&version=1&device_type=board-a", ro, "abc", 403,
       "needs 'release'"},
      {"POST", "/api/v1/tokens", ro, R"({"name":"y","role":"admin"})", 403, "needs 'admin'"},
      {"GET", "/api/v1/audit", ro, "", 403, "needs 'admin'"},
      {"POST", "/device/v1/dev-1/check-in", admin_, "{}", 403, "device's own token"},
      {"POST", "/device/v1/dev-2/check-in", dev, "{}", 403, "belongs to device 'dev-1'"},
      {"POST", "/device/v1/dev-1/check-in", "", "{}", 401, "missing credentials"},
      // Malformed JSON, wrong types, missing fields, unknown fields.
      {"POST", "/api/v1/device-types", admin_, "{", 400, "not valid JSON"},
      {"POST", "/api/v1/device-types", admin_, "[1]", 400, "must be a JSON object"},
      {"POST", "/api/v1/device-types", admin_, R"({"name":5})", 400,
       "field 'name' must be a string"},
      {"POST", "/api/v1/device-types", admin_, "{}", 400, "missing field 'name'"},
      {"POST", "/api/v1/device-types", admin_, R"({"name":"../etc"})", 400, "not a valid name"},
      {"POST", "/api/v1/device-types", admin_, R"({"name":"board-a"})", 409, "already exists"},
      {"POST", "/api/v1/device-types", admin_, R"({"name":"b","modules":"bms"})", 400,
       "array of strings"},
      {"POST", "/api/v1/device-types/board-a/modules", admin_, R"({"name":"bms"})", 409,
       "already has module"},
      {"POST", "/api/v1/device-types/nope/modules", admin_, R"({"name":"x"})", 404,
       "device type 'nope' not found"},
      {"DELETE", "/api/v1/device-types/board-a/modules/main", admin_, "", 409, "used by"},
      {"DELETE", "/api/v1/device-types/board-a", admin_, "", 409, "in use"},
      {"POST", "/api/v1/devices", admin_, R"({"name":"d"})", 400, "missing field 'device_type'"},
      {"POST", "/api/v1/devices", admin_, R"({"name":"d","device_type":"nope"})", 404,
       "device type 'nope' not found"},
      {"POST", "/api/v1/devices", admin_, R"({"name":"dev-1","device_type":"board-a"})", 409,
       "already exists"},
      {"POST", "/api/v1/devices", admin_, R"({"name":"d","device_type":"board-a","tags":[1]})", 400,
       "only strings"},
      {"POST", "/api/v1/devices", admin_,
       R"({"name":"d","device_type":"board-a","attributes":{"a":[1]}})", 400, "attribute 'a'"},
      {"PATCH", "/api/v1/devices/dev-1", admin_, R"({"name":"z"})", 400, "cannot be changed"},
      {"PATCH", "/api/v1/devices/nope", admin_, R"({"group":"g"})", 404, "device 'nope' not found"},
      {"GET", "/api/v1/devices/nope", admin_, "", 404, "device 'nope' not found"},
      {"DELETE", "/api/v1/devices/nope", admin_, "", 404, "not found"},
      {"GET", "/api/v1/devices?limit=abc", admin_, "", 400,
       "'limit' must be a non-negative integer"},
      {"GET", "/api/v1/devices/nope/actions", admin_, "", 404, "not found"},
      {"GET", "/api/v1/devices/nope/logs", admin_, "", 404, "not found"},
      {"GET", "/api/v1/releases/fw/9.9.9", admin_, "", 404, "release 'fw@9.9.9' not found"},
      {"PATCH", "/api/v1/releases/fw/1.2.0", admin_, R"({"enabled":"yes"})", 400,
       "must be a boolean"},
      {"PATCH", "/api/v1/releases/fw/1.2.0", admin_, R"({"version":"2"})", 400,
       "cannot be changed"},
      {"DELETE", "/api/v1/releases/fw/1.2.0", admin_, "", 409, "referred to by 1 action"},
      {"GET", "/api/v1/releases/fw/9.9.9/artifact", admin_, "", 404, "not found"},
      {"POST", "/api/v1/releases?name=a&device_type=board-a", admin_, "abc", 400,
       "missing query parameter 'version'"},
      {"POST", "/api/v1/releases?name=a&version=1&device_type=nope", admin_, "abc", 404,
       "device type 'nope' not found"},
      {"POST", "/api/v1/releases?name=a&version=1&device_type=board-a", admin_, "", 400,
       "upload is empty"},
      {"POST", "/api/v1/releases?name=a&version=1%2F&device_type=board-a", admin_, "abc", 400,
       "version '1/'"},
      {"POST", "/api/v1/deployments", admin_, R"({"release":"fw"})", 400, "NAME@VERSION"},
      {"POST", "/api/v1/deployments", admin_, R"({"release":"fw@1.2.0"})", 400,
       "exactly one target"},
      {"POST", "/api/v1/deployments", admin_, R"({"release":"fw@1.2.0","devices":["nope"]})", 404,
       "device 'nope' not found"},
      {"POST", "/api/v1/deployments", admin_, R"({"release":"fw@9","group":"lab"})", 404,
       "not found"},
      {"POST", "/api/v1/deployments", admin_, R"({"release":"fw@1.2.0","group":"none"})", 404,
       "no devices in group"},
      {"POST", "/api/v1/deployments", admin_,
       R"({"release":"fw@1.2.0","group":"lab","mode":"now"})", 400, "mode 'now'"},
      {"GET", "/api/v1/actions/abc", admin_, "", 400, "is not an id"},
      {"GET", "/api/v1/actions/999", admin_, "", 404, "action '999' not found"},
      {"GET", "/api/v1/actions?state=weird", admin_, "", 400, "unknown action state"},
      {"POST", "/api/v1/actions/999/cancel", admin_, "", 404, "not found"},
      {"POST", "/api/v1/tokens", admin_, R"({"name":"t","role":"root"})", 400, "unknown role"},
      {"DELETE", "/api/v1/tokens/999", admin_, "", 404, "not found"},
      {"POST", "/device/v1/dev-1/check-in", dev, R"({"versions":{"main":5}})", 400,
       "must be a string"},
      {"POST", "/device/v1/dev-1/check-in", dev, R"({"versions":[]})", 400, "must be an object"},
      {"POST", "/device/v1/dev-1/check-in", dev, "nonsense", 400, "not valid JSON"},
      {"POST", "/device/v1/dev-1/actions/1/feedback", dev, R"({"status":"done"})", 400,
       "status 'done'"},
      {"POST", "/device/v1/dev-1/actions/1/feedback", dev, R"({"progress":5})", 400,
       "missing field 'status'"},
      {"POST", "/device/v1/dev-1/actions/1/feedback", dev,
       R"({"status":"downloading","progress":101})", 400, "0 to 100"},
      {"POST", "/device/v1/dev-1/actions/999/feedback", dev, R"({"status":"downloading"})", 404,
       "not found"},
      {"POST", "/device/v1/dev-1/actions/x/feedback", dev, R"({"status":"downloading"})", 400,
       "is not an id"},
      {"GET", "/device/v1/dev-1/actions/999/artifact", dev, "", 404, "not found"},
      {"POST", "/device/v1/dev-1/logs?action=abc", dev, "log", 400, "must be an id"},
      {"POST", "/device/v1/dev-1/logs", dev, "", 400, "the log is empty"},
      // Sizes and routing.
      {"POST", "/api/v1/device-types", admin_, "{\"name\":\"" + big + "\"}", 413,
       "exceeds the limit"},
      {"GET", "/api/v1/nothing", admin_, "", 404, "no route"},
      {"PUT", "/api/v1/devices", admin_, "{}", 405, "allowed: GET, POST"},
      {"GET", "/api/v1/stats", admin_, "body", 400, "takes no request body"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.method + " " + c.path + " " + c.body.substr(0, 60));
    auto res = Call(c.method, c.path, c.token, c.body);
    EXPECT_EQ(res.status, c.status) << res.body;
    json j = json::parse(res.body, nullptr, false);
    ASSERT_TRUE(j.is_object()) << res.body;
    EXPECT_TRUE(j["error"].is_string());
    EXPECT_THAT(j.value("message", ""), HasSubstr(c.message));
  }
  // After all that, the server still serves and nothing changed that should not have.
  EXPECT_EQ(CallJson("GET", "/api/v1/devices", admin_, nullptr, 200)["total"], 1);
  EXPECT_EQ(CallJson("GET", "/api/v1/releases", admin_, nullptr, 200).size(), 1u);
  EXPECT_THAT(log_.str(), ::testing::Not(HasSubstr("-> 5")));
}

TEST_P(ServerTest, FeedbackAfterTheEnd_AndCancel_AreRefusedWithReasons) {
  SetUpFleet();
  std::string dev = AddDevice("dev-1");
  json dep = CallJson("POST", "/api/v1/deployments", admin_,
                      {{"release", "fw@1.2.0"}, {"devices", {"dev-1"}}}, 201);
  int64_t id = dep["actions"][0]["id"];
  // A second deployment to a device with an open action is skipped with the reason.
  json again = CallJson("POST", "/api/v1/deployments", admin_,
                        {{"release", "fw@1.2.0"}, {"devices", {"dev-1"}}}, 201);
  EXPECT_TRUE(again["actions"].empty());
  EXPECT_THAT(again["skipped"][0]["reason"].get<std::string>(), HasSubstr("open action"));
  CallJson("POST", "/api/v1/actions/" + std::to_string(id) + "/cancel", admin_, nullptr, 200);
  auto late = Call("POST", "/device/v1/dev-1/actions/" + std::to_string(id) + "/feedback", dev,
                   R"({"status":"success"})");
  EXPECT_EQ(late.status, 409);
  EXPECT_THAT(client::ErrorMessage(late), HasSubstr("already canceled"));
  json in = CallJson("POST", "/device/v1/dev-1/check-in", dev, json::object(), 200);
  EXPECT_TRUE(in["action"].is_null());
  // Begun, then canceled: the device is told, even when the release was disabled meanwhile, and
  // its "canceled" closes the action; nothing else is accepted until then.
  id = CallJson("POST", "/api/v1/deployments", admin_,
                {{"release", "fw@1.2.0"}, {"devices", {"dev-1"}}}, 201)["actions"][0]["id"];
  const std::string feedback = "/device/v1/dev-1/actions/" + std::to_string(id) + "/feedback";
  EXPECT_EQ(Call("POST", feedback, dev, R"({"status":"canceled"})").status, 409)
      << "not canceled yet";
  EXPECT_EQ(Call("POST", feedback, dev, R"({"status":"downloaded"})").status, 200);
  CallJson("PATCH", "/api/v1/releases/fw/1.2.0", admin_, {{"enabled", false}}, 200);
  json a =
      CallJson("POST", "/api/v1/actions/" + std::to_string(id) + "/cancel", admin_, nullptr, 200);
  EXPECT_EQ(a["state"], "canceling");
  CallJson("POST", "/api/v1/actions/" + std::to_string(id) + "/cancel", admin_, nullptr, 409);
  in = CallJson("POST", "/device/v1/dev-1/check-in", dev, json::object(), 200);
  ASSERT_TRUE(in["action"].is_object()) << in.dump();
  EXPECT_EQ(in["action"]["cancel"], true);
  EXPECT_EQ(Call("POST", feedback, dev, R"({"status":"installing"})").status, 409);
  EXPECT_EQ(Call("POST", feedback, dev, R"({"status":"canceled"})").status, 200);
  EXPECT_EQ(CallJson("GET", "/api/v1/actions/" + std::to_string(id), admin_, nullptr, 200)["state"],
            "canceled");
  EXPECT_TRUE(
      CallJson("POST", "/device/v1/dev-1/check-in", dev, json::object(), 200)["action"].is_null());
  // A log upload lands in the device's history.
  auto log =
      Call("POST", "/device/v1/dev-1/logs?action=" + std::to_string(id), dev, "line 1\nline 2\n");
  EXPECT_EQ(log.status, 201);
  json logs = CallJson("GET", "/api/v1/devices/dev-1/logs", admin_, nullptr, 200);
  ASSERT_EQ(logs.size(), 1u);
  EXPECT_EQ(logs[0]["content"], "line 1\nline 2\n");
}

// A check-in that found no action is remembered (SQLite), and forgotten as soon as this server
// creates or ends an action: the device is never told "nothing" while an action waits.
// Deployments and cancels through `ops`, check-ins through `devices`: the same server, or (on
// PostgreSQL) another one on the same database, whose "no open action" cache must hear of them.
void ExpectCheckInsSeeEveryNewAction(testing::TestServer& ops, testing::TestServer& devices,
                                     const std::string& dev, int rounds) {
  const std::string check_in = "/device/v1/dev-1/check-in";
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(devices.CallJson("POST", check_in, dev, json::object(), 200)["action"].is_null());
  }
  for (int round = 0; round < rounds; ++round) {
    json dep = ops.CallJson("POST", "/api/v1/deployments", ops.admin(),
                            {{"release", "fw@1.2.0"}, {"devices", {"dev-1"}}}, 201);
    ASSERT_EQ(dep["actions"].size(), 1u);
    json in = devices.CallJson("POST", check_in, dev, json::object(), 200);
    ASSERT_TRUE(in["action"].is_object()) << "round " << round << ": " << in.dump();
    EXPECT_EQ(in["action"]["id"], dep["actions"][0]["id"]);
    ops.CallJson("POST", "/api/v1/actions/" + in["action"]["id"].dump() + "/cancel", ops.admin(),
                 nullptr, 200);
    EXPECT_TRUE(devices.CallJson("POST", check_in, dev, json::object(), 200)["action"].is_null());
    EXPECT_TRUE(devices.CallJson("POST", check_in, dev, json::object(), 200)["action"].is_null());
  }
}

TEST_P(ServerTest, CheckIn_SeesEveryNewActionAtOnce) {
  SetUpFleet();
  std::string dev = AddDevice("dev-1");
  ExpectCheckInsSeeEveryNewAction(srv_, srv_, dev, 2);
}

// Two aloftd on one PostgreSQL: the device checks in with one, the operator deploys and cancels
// through the other; the first hears of each change (LISTEN/NOTIFY) before the device asks.
TEST_P(ServerTest, CheckIn_SeesEveryNewActionAtOnce_OnTwoServers) {
  if (GetParam() == Backend::kSqlite) GTEST_SKIP() << "one server per SQLite database";
  SetUpFleet();
  std::string dev = AddDevice("dev-1");
  ServerConfig c;
  c.data_dir = dir_ / "data";
  c.database = database_;
  c.threads = 2;
  c.db_pool = 4;
  std::ostringstream log;
  testing::TestServer second;
  ASSERT_THAT(second.Start(c, SystemClock::Instance(), log), IsOk());
  ExpectCheckInsSeeEveryNewAction(srv_, second, dev, 20);
  ExpectCheckInsSeeEveryNewAction(second, srv_, dev, 5);

  // The listening connections are cut (a PostgreSQL restart, a network fault): what is deployed
  // meanwhile is still seen, by a database read, and caching resumes once they are back.
  auto store = Store::Open(database_, 1);
  ASSERT_THAT(store, IsOk());
  const std::string check_in = "/device/v1/dev-1/check-in";
  for (int round = 0; round < 3; ++round) {
    EXPECT_TRUE(second.CallJson("POST", check_in, dev, json::object(), 200)["action"].is_null());
    ASSERT_THAT((*store)->Write([](Tx& tx) -> aloft::Status {
      ALOFT_RETURN_IF_ERROR(tx.connection().Query(
          "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE query LIKE 'LISTEN%' "
          "AND pid <> pg_backend_pid()"));
      return OkStatus();
    }),
                IsOk());
    json dep = CallJson("POST", "/api/v1/deployments", admin_,
                        {{"release", "fw@1.2.0"}, {"devices", {"dev-1"}}}, 201);
    json in = second.CallJson("POST", check_in, dev, json::object(), 200);
    ASSERT_TRUE(in["action"].is_object()) << "round " << round << ": " << in.dump();
    CallJson("POST", "/api/v1/actions/" + in["action"]["id"].dump() + "/cancel", admin_, nullptr,
             200);
  }
  for (int i = 0; i < 100 && !(*store)->listening(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ExpectCheckInsSeeEveryNewAction(srv_, second, dev, 3);
}

// One server per SQLite database; a second is refused with the reason, and the database is free
// again once the first has gone.
TEST_P(ServerTest, SqliteDatabase_ServesOneServerAtATime) {
  if (GetParam() != Backend::kSqlite) GTEST_SKIP() << "several servers share PostgreSQL";
  ServerConfig c;
  c.data_dir = dir_ / "data2";
  c.listen = "127.0.0.1:0";
  c.database = database_;
  std::ostringstream log;
  auto second = App::Create(c, SystemClock::Instance(), log);
  ASSERT_FALSE(second.ok());
  EXPECT_THAT(second.error().message(), HasSubstr("in use by another aloftd"));
  EXPECT_THAT(second.error().message(), HasSubstr("PostgreSQL"));
  Stop();
  auto after = App::Create(c, SystemClock::Instance(), log);
  EXPECT_THAT(after, IsOk());
}

INSTANTIATE_TEST_SUITE_P(Backends, ServerTest,
                         ::testing::Values(Backend::kSqlite, Backend::kPostgres),
                         [](const auto& p) { return testing::BackendName(p.param); });

}  // namespace
}  // namespace aloft::server

namespace aloft::server {
namespace {

// Not parameterized: the transport does not depend on the database.
class TransportTest : public ::testing::Test {
 protected:
  void Start(ServerConfig c) {
    c.data_dir = dir_ / "data";
    c.listen = "127.0.0.1:0";
    auto app = App::Create(c, SystemClock::Instance(), log_);
    ASSERT_THAT(app, IsOk());
    app_ = std::move(app).value();
    ASSERT_THAT(app_->Bind(), IsOk());
    port_ = app_->port();
    thread_ = std::thread([this] { app_->Run(); });
    admin_ = ReadFile(dir_ / "data/admin.token").value();
    admin_.pop_back();
  }
  void TearDown() override {
    if (app_) {
      app_->Stop();
      thread_.join();
    }
  }
  testing::TempDir dir_;
  std::ostringstream log_;
  std::unique_ptr<App> app_;
  std::thread thread_;
  uint16_t port_ = 0;
  std::string admin_;
};

TEST_F(TransportTest, Tls_ServesApiAndRangesOverHttps) {
  std::string cmd =
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
      "-days 1 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout " +
      (dir_ / "key.pem") + " -out " + (dir_ / "cert.pem") + " 2>/dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << "openssl could not make a test certificate";
  ServerConfig c;
  c.tls_cert = dir_ / "cert.pem";
  c.tls_key = dir_ / "key.pem";
  Start(c);
  std::string base = "https://127.0.0.1:" + std::to_string(port_);
  client::HttpRequest req;
  req.url = base + "/api/v1/device-types";
  req.method = "POST";
  req.body = R"({"name":"board-a"})";
  req.ca_file = dir_ / "cert.pem";
  req.headers = {"Authorization: Bearer " + admin_};
  auto res = client::Send(req);
  ASSERT_THAT(res, IsOk());
  EXPECT_EQ(res->status, 201) << res->body;
  // An artifact over TLS, whole and as a range (the read-and-write path, not sendfile).
  Bytes blob = testing::RandomBytes(300000, 9);
  ASSERT_THAT(WriteFileAtomic(dir_ / "a.bin", AsChars(blob)), IsOk());
  client::HttpRequest up = req;
  up.url = base + "/api/v1/releases?name=a&version=1&device_type=board-a";
  up.body.clear();
  up.upload_file = dir_ / "a.bin";
  auto created = client::Send(up);
  ASSERT_THAT(created, IsOk());
  ASSERT_EQ(created->status, 201) << created->body;
  client::HttpRequest get = req;
  get.method = "GET";
  get.body.clear();
  get.url = base + "/api/v1/releases/a/1/artifact";
  auto whole = client::Send(get);
  ASSERT_THAT(whole, IsOk());
  EXPECT_EQ(whole->body, std::string(AsChars(blob)));
  get.headers.push_back("Range: bytes=100000-100099");
  auto part = client::Send(get);
  ASSERT_THAT(part, IsOk());
  EXPECT_EQ(part->status, 206);
  EXPECT_EQ(part->body, std::string(AsChars(blob)).substr(100000, 100));
  // Plain HTTP to the TLS port is told so (it was closed without a word).
  client::HttpRequest plain;
  plain.url = "http://127.0.0.1:" + std::to_string(port_) + "/healthz";
  plain.timeout_s = 5;
  auto refused = client::Send(plain);
  ASSERT_THAT(refused, IsOk());
  EXPECT_EQ(refused->status, 400);
  EXPECT_THAT(refused->body, HasSubstr("this port speaks HTTPS"));
  // TLS 1.2 offers forward-secret AEAD suites only: no CBC, no SHA-1 MAC.
  auto s_client = [&](const std::string& args) {
    std::string line = "openssl s_client -connect 127.0.0.1:" + std::to_string(port_) + " " + args +
                       " </dev/null >/dev/null 2>&1";
    return std::system(line.c_str());
  };
  EXPECT_EQ(s_client("-tls1_2 -cipher ECDHE-ECDSA-AES128-GCM-SHA256"), 0);
  EXPECT_NE(s_client("-tls1_2 -cipher ECDHE-ECDSA-AES128-SHA"), 0) << "CBC-SHA1 was accepted";
  EXPECT_NE(s_client("-tls1_2 -cipher ECDHE-ECDSA-AES256-SHA384"), 0) << "CBC was accepted";
  EXPECT_EQ(s_client("-tls1_3"), 0);
  // And HTTPS still works after those.
  auto after = client::Send(get);
  ASSERT_THAT(after, IsOk());
  EXPECT_EQ(after->status, 206);
}

TEST_F(TransportTest, SlowClients_DoNotPinTheOnlyThread) {
  ServerConfig c;
  c.threads = 1;
  Start(c);
  // 50 connections that send half a request header and then stall.
  std::vector<int> stalled;
  for (int i = 0; i < 50; ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port_);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    const char half[] = "GET /api/v1/devices HTTP/1.1\r\nHost: x\r\nAuthor";
    ASSERT_GT(::write(fd, half, sizeof half - 1), 0);
    stalled.push_back(fd);
  }
  client::HttpRequest req;
  req.url = "http://127.0.0.1:" + std::to_string(port_) + "/api/v1/devices";
  req.headers = {"Authorization: Bearer " + admin_};
  req.timeout_s = 5;
  auto res = client::Send(req);
  ASSERT_THAT(res, IsOk());
  EXPECT_EQ(res->status, 200);
  // An oversized header is refused, not buffered.
  req.headers.push_back("X-Big: " + std::string(20000, 'a'));
  auto big = client::Send(req);
  ASSERT_THAT(big, IsOk());
  EXPECT_EQ(big->status, 431);
  for (int fd : stalled) ::close(fd);
}

TEST(ConfigFile, UnknownKeysAndWrongTypesNameTheFileAndKey) {
  testing::TempDir dir;
  ServerConfig c;
  ASSERT_THAT(WriteFileAtomic(dir / "a.toml", "listen = 8080\n"), IsOk());
  EXPECT_THAT(LoadConfigFile(dir / "a.toml", c),
              IsError(Code::kInvalidArgument, HasSubstr("key 'listen' must be a string")));
  ASSERT_THAT(WriteFileAtomic(dir / "b.toml", "lisen = \"x\"\n"), IsOk());
  EXPECT_THAT(LoadConfigFile(dir / "b.toml", c),
              IsError(Code::kInvalidArgument, HasSubstr("unknown key 'lisen'")));
  ASSERT_THAT(WriteFileAtomic(dir / "c.toml", "listen = \n"), IsOk());
  EXPECT_THAT(LoadConfigFile(dir / "c.toml", c),
              IsError(Code::kInvalidArgument, HasSubstr("c.toml:1")));
  ASSERT_THAT(WriteFileAtomic(dir / "d.toml", "listen = \"127.0.0.1:9\"\ntrust = [\"k.pub\"]\n"),
              IsOk());
  ASSERT_THAT(LoadConfigFile(dir / "d.toml", c), IsOk());
  EXPECT_EQ(c.listen, "127.0.0.1:9");
  EXPECT_EQ(c.trust, std::vector<std::string>{"k.pub"});
}

TEST(ParseRange, FollowsRfc9110) {
  auto r = ParseRange("bytes=0-9, 20-, -5", 100);  // "-5" lies in "20-": one range
  ASSERT_TRUE(r.has_value());
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[1].first, 20u);
  EXPECT_EQ((*r)[1].last, 99u);
  r = ParseRange("bytes=50-59, 0-9, -10, 10-19", 100);  // sorted, adjacent ones joined
  ASSERT_TRUE(r.has_value());
  ASSERT_EQ(r->size(), 3u);
  EXPECT_EQ((*r)[0].first, 0u);
  EXPECT_EQ((*r)[0].last, 19u);
  EXPECT_EQ((*r)[1].first, 50u);
  EXPECT_EQ((*r)[2].first, 90u);
  EXPECT_FALSE(ParseRange("items=0-1", 100).has_value());  // other unit: ignored
  EXPECT_FALSE(ParseRange("bytes=9-1", 100).has_value());  // invalid: ignored
  EXPECT_FALSE(ParseRange("bytes=a-", 100).has_value());
  EXPECT_TRUE(ParseRange("bytes=100-", 100)->empty());  // unsatisfiable: 416
  EXPECT_EQ(ParseRange("bytes=50-1000", 100)->at(0).last, 99u);
}

TEST(OpenFiles, ConcurrentDownloadsShareOneDescriptor_ClosedWithTheLast) {
  testing::TempDir dir;
  ASSERT_THAT(WriteFileAtomic(dir / "a", "artifact"), IsOk());
  OpenFiles files;
  auto first = files.Open(dir / "a");
  auto second = files.Open(dir / "a");
  ASSERT_THAT(first, IsOk());
  ASSERT_THAT(second, IsOk());
  EXPECT_EQ((*first)->get(), (*second)->get());
  int fd = (*first)->get();
  first->reset();
  EXPECT_GE(::fcntl(fd, F_GETFD), 0) << "closed while a download still used it";
  second->reset();
  EXPECT_EQ(::fcntl(fd, F_GETFD), -1) << "not closed after the last download";
  EXPECT_THAT(files.Open(dir / "missing"), IsError(Code::kNotFound, HasSubstr("missing")));
}

TEST(SecureLink, MatchesTheNginxFormula) {
  // echo -n '2147483647/s/link 'secret | openssl md5 -binary | openssl base64 | tr +/ -_ | tr -d =
  EXPECT_EQ(SecureLinkMd5(2147483647, "/s/link", "secret"), "0Xgm37lo5nFEuHMDKl_vQg");
}

}  // namespace
}  // namespace aloft::server
