// What aloftd does for its dashboard, over real HTTP on loopback with SQLite and PostgreSQL:
// users and sign-in (passwords and API tokens), the session cookie and its CSRF defence, roles
// through a session, the audit naming the person, the live feed (server-sent events), and the
// dashboard's files with their security headers. The browser tests (web/test) drive the pages.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "server/server_fixture.h"

namespace aloft::server {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kPassword[] = "a long enough password";

class DashboardTest : public ServerTest {
 protected:
  // Signs `user` in with `password`; the cookie's "aloft_session=..." and the CSRF token.
  std::pair<std::string, std::string> SignIn(const std::string& user,
                                             const std::string& password = kPassword) {
    auto r =
        Call("POST", "/api/v1/session", "", json({{"user", user}, {"password", password}}).dump(),
             {"Content-Type: application/json"});
    EXPECT_EQ(r.status, 201) << r.body;
    const std::string cookie = r.headers["set-cookie"];
    EXPECT_THAT(cookie, HasSubstr("HttpOnly"));
    EXPECT_THAT(cookie, HasSubstr("SameSite=Strict"));
    EXPECT_THAT(cookie, HasSubstr("Path=/"));
    json j = json::parse(r.body, nullptr, false);
    return {cookie.substr(0, cookie.find(';')), j.value("csrf", "")};
  }

  client::HttpResponse WithCookie(const std::string& method, const std::string& path,
                                  const std::string& cookie, const std::string& body = "",
                                  std::vector<std::string> headers = {}) {
    headers.push_back("Cookie: theme=dark; " + cookie);
    if (!body.empty()) headers.push_back("Content-Type: application/json");
    return Call(method, path, "", body, std::move(headers));
  }

  void AddUser(const std::string& name, const std::string& role) {
    CallJson("POST", "/api/v1/users", admin_,
             {{"name", name}, {"role", role}, {"password", kPassword}}, 201);
  }
};

TEST_P(DashboardTest, UsersSignInWithAPasswordAndActInTheirOwnName) {
  SetUpFleet();
  AddDevice("dev-1");
  // Passwords are checked; the hash is never shown.
  auto weak = CallJson("POST", "/api/v1/users", admin_,
                       {{"name", "alice"}, {"role", "release"}, {"password", "short"}}, 400);
  EXPECT_THAT(weak["message"].get<std::string>(), HasSubstr("password"));
  AddUser("alice", "release");
  CallJson("POST", "/api/v1/users", admin_,
           {{"name", "alice"}, {"role", "viewer"}, {"password", kPassword}}, 409);
  json users = CallJson("GET", "/api/v1/users", admin_, nullptr, 200);
  ASSERT_EQ(users.size(), 1u);
  EXPECT_EQ(users[0]["role"], "release");
  EXPECT_THAT(users.dump(), Not(HasSubstr("scrypt")));

  // A wrong password and an unknown user get the same answer.
  auto wrong = Call("POST", "/api/v1/session", "",
                    json({{"user", "alice"}, {"password", "not the password"}}).dump());
  auto nobody = Call("POST", "/api/v1/session", "",
                     json({{"user", "mallory"}, {"password", "not the password"}}).dump());
  EXPECT_EQ(wrong.status, 401);
  EXPECT_EQ(nobody.status, 401);
  EXPECT_EQ(json::parse(wrong.body)["message"], json::parse(nobody.body)["message"]);

  auto [cookie, csrf] = SignIn("alice");
  ASSERT_FALSE(csrf.empty());
  auto me = WithCookie("GET", "/api/v1/session", cookie);
  ASSERT_EQ(me.status, 200) << me.body;
  EXPECT_EQ(json::parse(me.body)["actor"], "user:alice");
  EXPECT_EQ(json::parse(me.body)["role"], "release");
  EXPECT_EQ(json::parse(me.body)["csrf"], csrf);

  // The session's role decides: a release user deploys, but manages no users.
  EXPECT_EQ(WithCookie("GET", "/api/v1/users", cookie).status, 403);
  const std::string deploy = json({{"release", "fw@1.2.0"}, {"devices", {"dev-1"}}}).dump();
  auto done = WithCookie("POST", "/api/v1/deployments", cookie, deploy, {"X-CSRF-Token: " + csrf});
  EXPECT_EQ(done.status, 201) << done.body;
  json audit = CallJson("GET", "/api/v1/audit", admin_, nullptr, 200);
  bool named = false;
  for (const auto& e : audit)
    named |= e["actor"] == "user:alice" && e["action"] == "deployment.create";
  EXPECT_TRUE(named) << audit.dump(1);
}

TEST_P(DashboardTest, ASessionsChangesNeedItsCsrfTokenAndItsOwnOrigin) {
  AddUser("bob", "admin");
  auto [cookie, csrf] = SignIn("bob");
  const std::string body = json({{"name", "t1"}, {"description", "x"}}).dump();
  auto none = WithCookie("POST", "/api/v1/device-types", cookie, body);
  EXPECT_EQ(none.status, 403) << none.body;
  EXPECT_THAT(none.body, HasSubstr("X-CSRF-Token"));
  auto wrong = WithCookie("POST", "/api/v1/device-types", cookie, body,
                          {"X-CSRF-Token: " + std::string(csrf.size(), 'x')});
  EXPECT_EQ(wrong.status, 403) << wrong.body;
  auto other_site = WithCookie("POST", "/api/v1/device-types", cookie, body,
                               {"X-CSRF-Token: " + csrf, "Origin: https://evil.example"});
  EXPECT_EQ(other_site.status, 403) << other_site.body;
  EXPECT_THAT(other_site.body, HasSubstr("origin"));
  json types = CallJson("GET", "/api/v1/device-types", admin_, nullptr, 200);
  EXPECT_TRUE(types.empty()) << types.dump();  // nothing of the refused requests happened
  const std::string host = base_.substr(base_.find("://") + 3);
  auto ok = WithCookie("POST", "/api/v1/device-types", cookie, body,
                       {"X-CSRF-Token: " + csrf, "Origin: http://" + host});
  EXPECT_EQ(ok.status, 201) << ok.body;
  // Reading needs no CSRF token; a Bearer token never does (browsers do not send it by themselves).
  EXPECT_EQ(WithCookie("GET", "/api/v1/device-types", cookie).status, 200);
  CallJson("POST", "/api/v1/device-types", admin_, {{"name", "t2"}}, 201);
}

TEST_P(DashboardTest, SigningOutChangingOrDeletingAUserEndsItsSessions) {
  AddUser("carol", "viewer");
  auto [cookie, csrf] = SignIn("carol");
  EXPECT_EQ(WithCookie("GET", "/api/v1/stats", cookie).status, 200);
  auto out = WithCookie("DELETE", "/api/v1/session", cookie, "", {"X-CSRF-Token: " + csrf});
  EXPECT_EQ(out.status, 204) << out.body;
  EXPECT_THAT(out.headers["set-cookie"], HasSubstr("Max-Age=0"));
  EXPECT_EQ(WithCookie("GET", "/api/v1/stats", cookie).status, 401);

  auto second = SignIn("carol");
  CallJson("PATCH", "/api/v1/users/carol", admin_, {{"role", "approver"}}, 200);
  EXPECT_EQ(WithCookie("GET", "/api/v1/stats", second.first).status, 401);
  auto third = SignIn("carol");
  EXPECT_EQ(json::parse(WithCookie("GET", "/api/v1/session", third.first).body)["role"],
            "approver");
  CallJson("DELETE", "/api/v1/users/carol", admin_, nullptr, 204);
  EXPECT_EQ(WithCookie("GET", "/api/v1/stats", third.first).status, 401);
  CallJson("DELETE", "/api/v1/users/carol", admin_, nullptr, 404);
}

TEST_P(DashboardTest, ATokenSignsInToo_AndRevokingItEndsTheSession) {
  json t = CallJson("POST", "/api/v1/tokens", admin_, {{"name", "ops"}, {"role", "viewer"}}, 201);
  auto r = Call("POST", "/api/v1/session", "", json({{"token", t["token"]}}).dump());
  ASSERT_EQ(r.status, 201) << r.body;
  const std::string cookie = r.headers["set-cookie"].substr(0, r.headers["set-cookie"].find(';'));
  EXPECT_EQ(json::parse(WithCookie("GET", "/api/v1/session", cookie).body)["actor"], "token:ops");
  EXPECT_EQ(Call("POST", "/api/v1/session", "", R"({"token":"aloft_a_nope"})").status, 401);
  EXPECT_EQ(Call("POST", "/api/v1/session", "", R"({"token":"x","user":"y"})").status, 400);
  EXPECT_EQ(Call("POST", "/api/v1/session", "", R"({"user":"y"})").status, 400);
  EXPECT_EQ(Call("POST", "/api/v1/session", "", R"({"user":"y","password":"z","x":1})").status,
            400);
  CallJson("DELETE", "/api/v1/tokens/" + std::to_string(t["id"].get<int64_t>()), admin_, nullptr,
           204);
  EXPECT_EQ(WithCookie("GET", "/api/v1/session", cookie).status, 401);
}

TEST_P(DashboardTest, RepeatedWrongPasswordsMakeTheAccountWait) {
  AddUser("dave", "viewer");
  const std::string wrong = json({{"user", "dave"}, {"password", "wrong password!"}}).dump();
  for (int i = 0; i < 6; ++i) EXPECT_EQ(Call("POST", "/api/v1/session", "", wrong).status, 401);
  auto r =
      Call("POST", "/api/v1/session", "", json({{"user", "dave"}, {"password", kPassword}}).dump());
  EXPECT_EQ(r.status, 429) << r.body;
  EXPECT_FALSE(r.headers["retry-after"].empty());
  // Another account is not held up.
  AddUser("erin", "viewer");
  SignIn("erin");
}

TEST_P(DashboardTest, TheDeviceListFiltersAsTheDashboardAsks) {
  SetUpFleet();
  std::map<std::string, std::string> tokens;
  for (const std::string name : {"dev-a1", "dev-a2", "dev-b1", "car-1", "quiet"}) {
    tokens[name] = AddDevice(name);
  }
  auto check_in = [&](const std::string& name, const json& body) {
    auto r = Call("POST", "/device/v1/" + name + "/check-in", tokens[name], body.dump(),
                  {"Content-Type: application/json"});
    ASSERT_EQ(r.status, 200) << r.body;
  };
  check_in("dev-a1", {{"versions", {{"main", "1.0.0"}, {"bms", "2.0.0"}}}});
  check_in("dev-a2", {{"versions", {{"main", "1.1.0"}}}});
  check_in("dev-b1", {{"versions", {{"main", "1.0.0"}}}});
  check_in("car-1", {{"versions", {{"main", "2026.1.0"}}}, {"attributes", {{"vin", "W0L000"}}}});
  auto names = [&](const std::string& query) {
    json j = CallJson("GET", "/api/v1/devices?" + query, admin_, nullptr, 200);
    std::vector<std::string> out;
    for (const auto& d : j["items"]) out.push_back(d["name"]);
    EXPECT_EQ(j["total"].get<size_t>(), out.size()) << query;
    return out;
  };
  using ::testing::ElementsAre;
  EXPECT_THAT(names("q=dev-a"), ElementsAre("dev-a1", "dev-a2"));
  EXPECT_THAT(names("q=nothing"), ElementsAre());
  EXPECT_THAT(names("version=1.0.0"), ElementsAre("dev-a1", "dev-b1"));
  EXPECT_THAT(names("version=2.0.0&module=bms"), ElementsAre("dev-a1"));
  EXPECT_THAT(names("version=2.0.0&module=main"), ElementsAre());
  EXPECT_THAT(names("attribute=vin"), ElementsAre("car-1"));
  EXPECT_THAT(names("state=never-seen"), ElementsAre("quiet"));
  EXPECT_THAT(names("seen_within_s=3600&q=dev-"), ElementsAre("dev-a1", "dev-a2", "dev-b1"));
  // Failing: the latest action failed; an older failure followed by a success is not.
  CallJson("POST", "/api/v1/deployments", admin_,
           {{"release", "fw@1.2.0"}, {"devices", {"dev-a1", "dev-a2"}}}, 201);
  EXPECT_THAT(names("state=updating"), ElementsAre("dev-a1", "dev-a2"));
  json a1 = CallJson("GET", "/api/v1/devices/dev-a1/actions", admin_, nullptr, 200);
  auto feedback = [&](const std::string& name, int64_t id, const json& body) {
    auto r = Call("POST", "/device/v1/" + name + "/actions/" + std::to_string(id) + "/feedback",
                  tokens[name], body.dump(), {"Content-Type: application/json"});
    ASSERT_EQ(r.status, 200) << r.body;
  };
  feedback("dev-a1", a1[0]["id"], {{"status", "failure"}, {"details", "rolled back"}});
  EXPECT_THAT(names("state=failing"), ElementsAre("dev-a1"));
  json stats = CallJson("GET", "/api/v1/stats", admin_, nullptr, 200);
  EXPECT_EQ(stats["failing"], 1);
  EXPECT_EQ(stats["seen_last_hour"], 4);
  // The history with the device's feedback.
  json history = CallJson("GET", "/api/v1/devices/dev-a1/actions?events=1", admin_, nullptr, 200);
  ASSERT_EQ(history.size(), 1u);
  EXPECT_THAT(history[0]["events"].dump(), HasSubstr("rolled back"));
  // Wrong filters are the client's mistake.
  for (const std::string bad :
       {"state=broken", "module=main", "seen_within_s=-1", "attribute=a%20b", "events=2"}) {
    auto path =
        bad == "events=2" ? "/api/v1/devices/dev-a1/actions?" + bad : "/api/v1/devices?" + bad;
    EXPECT_EQ(Call("GET", path, admin_).status, 400) << bad;
  }
}

// The live feed, read from a raw socket as a browser's EventSource would.
class EventReader {
 public:
  EventReader(const std::string& base, const std::string& token) {
    const auto colon = base.rfind(':');
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(std::stoi(base.substr(colon + 1))));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    const std::string req = "GET /api/v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                            token + "\r\nAccept: text/event-stream\r\n\r\n";
    EXPECT_EQ(::send(fd_, req.data(), req.size(), 0), static_cast<ssize_t>(req.size()));
  }
  ~EventReader() { ::close(fd_); }
  // Reads until `text` arrived (true) or `timeout` passed.
  bool WaitFor(const std::string& text, std::chrono::milliseconds timeout) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (got_.find(text, from_) == std::string::npos) {
      const auto left = end - std::chrono::steady_clock::now();
      if (left <= std::chrono::milliseconds(0)) return false;
      timeval tv{
          0, static_cast<suseconds_t>(
                 std::chrono::duration_cast<std::chrono::microseconds>(left).count() % 1000000)};
      tv.tv_sec = std::chrono::duration_cast<std::chrono::seconds>(left).count();
      ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      char buf[4096];
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return got_.find(text, from_) != std::string::npos;
      got_.append(buf, static_cast<size_t>(n));
    }
    from_ = got_.find(text, from_) + text.size();
    return true;
  }
  const std::string& got() const { return got_; }

 private:
  int fd_ = -1;
  std::string got_;
  size_t from_ = 0;
};

TEST_P(DashboardTest, TheLiveFeedNamesWhatChangedWithinTwoSeconds) {
  SetUpFleet();
  AddDevice("dev-1");
  const std::string device = AddDevice("dev-2");
  EventReader feed(base_, admin_);
  ASSERT_TRUE(feed.WaitFor("event: hello", std::chrono::seconds(2))) << feed.got();
  EXPECT_THAT(feed.got(), HasSubstr("Content-Type: text/event-stream"));
  // Let the feed take its marks: what came before is not sent.
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  CallJson("POST", "/api/v1/rollouts", admin_,
           {{"name", "live-1"}, {"release", "fw@1.2.0"}, {"approval", true}}, 201);
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(feed.WaitFor("event: rollout", std::chrono::seconds(2))) << feed.got();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
  EXPECT_TRUE(feed.WaitFor("\"name\":\"live-1\"", std::chrono::milliseconds(10)));
  EXPECT_TRUE(feed.WaitFor("event: audit", std::chrono::seconds(2))) << feed.got();
  CallJson("POST", "/api/v1/deployments", admin_, {{"release", "fw@1.2.0"}, {"devices", {"dev-1"}}},
           201);
  ASSERT_TRUE(feed.WaitFor("event: actions", std::chrono::seconds(2))) << feed.got();
  EXPECT_TRUE(feed.WaitFor("\"devices\":[\"dev-1\"]", std::chrono::milliseconds(10))) << feed.got();
  // Sent once, not again at the next looks (the overlap of times is deduplicated).
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_FALSE(feed.WaitFor("event: actions", std::chrono::milliseconds(100))) << feed.got();
}

TEST_P(DashboardTest, AViewersFeedHearsNoAuditEntries) {
  json t = CallJson("POST", "/api/v1/tokens", admin_, {{"name", "v"}, {"role", "viewer"}}, 201);
  EventReader feed(base_, t["token"]);
  ASSERT_TRUE(feed.WaitFor("event: hello", std::chrono::seconds(2))) << feed.got();
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  CallJson("POST", "/api/v1/device-types", admin_, {{"name", "t9"}}, 201);
  EXPECT_FALSE(feed.WaitFor("event: audit", std::chrono::milliseconds(1500))) << feed.got();
}

TEST_P(DashboardTest, ServesTheDashboardsFilesWithSecurityHeaders) {
  Stop();
  const std::string web = dir_ / "web";
  std::filesystem::create_directories(web + "/assets");
  ASSERT_THAT(WriteFileAtomic(web + "/index.html", "<!doctype html><title>Aloft</title>"), IsOk());
  ASSERT_THAT(WriteFileAtomic(web + "/assets/app-ABC123.js", "console.log(1)"), IsOk());
  Start([&](ServerConfig& c) { c.web_dir = web; });
  for (const std::string path : {"/", "/devices/dev-1", "/rollouts", "/releases/fw/1.2.0"}) {
    auto r = Call("GET", path, "");
    EXPECT_EQ(r.status, 200) << path;
    EXPECT_EQ(r.body, "<!doctype html><title>Aloft</title>") << path;
    EXPECT_THAT(r.headers["content-security-policy"], HasSubstr("script-src 'self'"));
    EXPECT_THAT(r.headers["content-security-policy"], HasSubstr("frame-ancestors 'none'"));
    EXPECT_EQ(r.headers["x-content-type-options"], "nosniff");
    EXPECT_EQ(r.headers["cache-control"], "no-cache");
  }
  auto js = Call("GET", "/assets/app-ABC123.js", "");
  EXPECT_EQ(js.status, 200);
  EXPECT_THAT(js.headers["content-type"], HasSubstr("text/javascript"));
  EXPECT_THAT(js.headers["cache-control"], HasSubstr("immutable"));
  EXPECT_EQ(
      Call("GET", "/assets/app-ABC123.js", "", "", {"If-None-Match: " + js.headers["etag"]}).status,
      304);
  EXPECT_EQ(Call("GET", "/assets/missing.js", "").status, 404);
  // Only the files read at start are served: no path reaches the file system.
  EXPECT_EQ(Call("GET", "/etc/passwd", "").body, "<!doctype html><title>Aloft</title>");
  EXPECT_EQ(Call("GET", "/assets/%2e%2e/%2e%2e/etc/passwd", "").status, 404);
  // The APIs keep their own answers.
  EXPECT_EQ(Call("GET", "/api/v1/nothing", "").status, 404);
  EXPECT_EQ(Call("GET", "/api/v1/stats", "").status, 401);
  EXPECT_EQ(Call("POST", "/", "", "x").status, 404);

  // A web_dir that holds no dashboard is an error at start, not a server without one.
  Stop();
  ServerConfig c;
  c.data_dir = dir_ / "data";
  c.database = database_;
  c.web_dir = dir_ / "nowhere";
  auto app = App::Create(c, SystemClock::Instance(), log_);
  ASSERT_FALSE(app.ok());
  EXPECT_THAT(app.error().ToString(), HasSubstr("web_dir"));
}

INSTANTIATE_TEST_SUITE_P(Backends, DashboardTest,
                         ::testing::Values(Backend::kSqlite, Backend::kPostgres),
                         [](const auto& p) { return testing::BackendName(p.param); });

}  // namespace
}  // namespace aloft::server
