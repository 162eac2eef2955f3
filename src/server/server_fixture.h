// The fixture of aloftd's HTTP tests (server_test, hardening_test): an App over real HTTP on
// loopback with a fresh SQLite or PostgreSQL database, trust keys, and helpers for the operator's
// and the devices' calls.
#pragma once

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "client/http_client.h"
#include "core/clock.h"
#include "core/file.h"
#include "server/config.h"
#include "support/matchers.h"
#include "support/package_fixture.h"
#include "support/temp_dir.h"
#include "support/test_db.h"
#include "support/test_server.h"

namespace aloft::server {

using ::aloft::testing::Backend;
using json = nlohmann::json;

class ServerTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    database_ = testing::FreshDatabase(GetParam(), dir_.path());
    if (database_.empty()) GTEST_SKIP() << "no PostgreSQL (set ALOFT_TEST_PG_URL)";
    ASSERT_THAT(WriteFileAtomic(dir_ / "release.pub", pkgs_.keys[0].public_key().ToPem()), IsOk());
    Start();
  }

  // Starts the server with the fixture's configuration, changed by `change` first, on `clock`
  // (the system clock unless given).
  void Start(const std::function<void(ServerConfig&)>& change = {}, const Clock* clock = nullptr) {
    ServerConfig c;
    c.data_dir = dir_ / "data";
    c.database = database_;
    c.trust = {dir_ / "release.pub"};
    c.threads = 2;
    c.db_pool = 4;
    c.max_json_bytes = 64 * 1024;
    c.max_upload_bytes = 64 << 20;
    if (change) change(c);
    ASSERT_THAT(srv_.Start(c, clock ? *clock : SystemClock::Instance(), log_), IsOk());
    base_ = srv_.base();
    admin_ = srv_.admin();
  }

  void Stop() { srv_.Stop(); }

  void TearDown() override { Stop(); }

  client::HttpResponse Call(const std::string& method, const std::string& path,
                            const std::string& token, const std::string& body = "",
                            std::vector<std::string> headers = {}) {
    return srv_.Call(method, path, token, body, std::move(headers));
  }

  json CallJson(const std::string& method, const std::string& path, const std::string& token,
                const json& body, int expect) {
    return srv_.CallJson(method, path, token, body, expect);
  }

  client::HttpResponse Upload(const std::string& query, const std::string& file,
                              const std::string& token) {
    return srv_.Upload("/api/v1/releases" + query, file, token);
  }

  std::string WritePackage(const std::string& name, const Bytes& bytes) {
    std::string path = dir_ / name;
    EXPECT_THAT(WriteFileAtomic(path, AsChars(bytes)), IsOk());
    return path;
  }

  // board-a with modules main and bms, and the signed package fw@1.2.0 uploaded.
  json SetUpFleet(std::string* package_path = nullptr) {
    CallJson("POST", "/api/v1/device-types", admin_, {{"name", "board-a"}, {"modules", {"bms"}}},
             201);
    Bytes pkg = pkgs_.Pack(
        {{"main", testing::RandomBytes(300000, 1)}, {"bms", testing::RandomBytes(5000, 2)}},
        pkg::Compression::kNone);
    std::string path = WritePackage("fw.aloft", pkg);
    if (package_path) *package_path = path;
    auto res = Upload("?filename=fw-1.2.0.aloft", path, admin_);
    EXPECT_EQ(res.status, 201) << res.body;
    return json::parse(res.body, nullptr, false);
  }

  std::string AddDevice(const std::string& name, const json& extra = json::object()) {
    json body = {{"name", name}, {"device_type", "board-a"}};
    body.update(extra);
    json j = CallJson("POST", "/api/v1/devices", admin_, body, 201);
    return j.value("token", "");
  }

  testing::TempDir dir_;
  testing::PackageFixture pkgs_;
  std::string database_, base_, admin_;
  std::ostringstream log_;
  testing::TestServer srv_;  // last: stops before what it uses goes
};

}  // namespace aloft::server
