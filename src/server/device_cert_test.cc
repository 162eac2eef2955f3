// Devices that authenticate with a certificate (docs/identity.md), over HTTPS on loopback with
// libcurl as the client: a valid certificate needs no token on the device API and on DDI; a
// revoked, expired, foreign-CA or unregistered one is refused with 401 saying why; a revocation
// takes effect when the CRL file changes; behind a proxy, the certificate header counts from the
// configured addresses only.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "agent/uplink.h"
#include "client/http_client.h"
#include "core/file.h"
#include "crypto/ca_directory.h"
#include "server/app.h"
#include "support/matchers.h"
#include "support/temp_dir.h"

namespace aloft::server {
namespace {

using ::testing::HasSubstr;
using json = nlohmann::json;

// nginx's $ssl_client_escaped_cert: the PEM, URL-encoded.
std::string Escaped(const std::string& pem) {
  std::string out;
  for (unsigned char c : pem) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

class DeviceCerts : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string cmd =
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 "
        "-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout " +
        Path("server.key") + " -out " + Path("server.crt") + " 2>/dev/null";
    ASSERT_EQ(std::system(cmd.c_str()), 0);
    auto ca = crypto::CaDirectory::Init(Path("ca"), "Fleet devices CA", 365, clock_);
    ASSERT_THAT(ca, IsOk());
  }
  void TearDown() override { StopServer(); }
  std::string Path(const std::string& name) const { return dir_.path() + "/" + name; }

  void StartServer(ServerConfig c) {
    c.data_dir = Path("data");
    c.listen = "127.0.0.1:0";
    c.auth_cache_s = 10;
    auto app = App::Create(c, SystemClock::Instance(), log_);
    ASSERT_THAT(app, IsOk());
    app_ = std::move(app).value();
    ASSERT_THAT(app_->Bind(), IsOk());
    base_ = std::string(c.tls_cert.empty() ? "http" : "https") +
            "://127.0.0.1:" + std::to_string(app_->port());
    thread_ = std::thread([this] { app_->Run(); });
    admin_ = ReadFile(Path("data/admin.token")).value();
    admin_.pop_back();
  }
  void StopServer() {
    if (!app_) return;
    app_->Stop();
    thread_.join();
    app_.reset();
  }
  ServerConfig Tls() const {
    ServerConfig c;
    c.tls_cert = Path("server.crt");
    c.tls_key = Path("server.key");
    c.device_ca_file = Path("ca/ca.crt");
    c.device_crl_file = Path("ca/crl.pem");
    return c;
  }
  // A key and a certificate for `name` from the CA in `ca_dir` as of `clock`: PREFIX.key/.crt.
  std::string Issue(const std::string& ca_dir, const std::string& name, const Clock& clock) {
    auto ca = crypto::CaDirectory::Open(Path(ca_dir), clock);
    EXPECT_THAT(ca, IsOk());
    auto key = crypto::PrivateKey::Generate(crypto::KeyType::kEcdsaP256).value();
    auto cert = ca->Issue({.common_name = name, .days = 1, .tls_client = true}, key.public_key());
    EXPECT_THAT(cert, IsOk());
    const std::string prefix = Path(ca_dir + "-" + name + "-" + std::to_string(++issued_));
    EXPECT_THAT(WriteFileAtomic(prefix + ".key", key.ToPem(), 0600), IsOk());
    EXPECT_THAT(WriteFileAtomic(prefix + ".crt", cert->Pem()), IsOk());
    return prefix;
  }
  client::HttpResponse Call(const std::string& method, const std::string& path,
                            const std::string& cert = "", std::vector<std::string> headers = {},
                            const std::string& body = "") {
    client::HttpRequest r;
    r.method = method;
    r.url = base_ + path;
    r.ca_file = Path("server.crt");
    if (!cert.empty()) {
      r.cert_file = cert + ".crt";
      r.key_file = cert + ".key";
    }
    r.headers = std::move(headers);
    r.body = body;
    r.timeout_s = 10;
    auto res = client::Send(r);
    EXPECT_THAT(res, IsOk());
    return res.ok() ? *res : client::HttpResponse{};
  }
  void Register(const std::vector<std::string>& names) {
    auto auth = std::vector<std::string>{"Authorization: Bearer " + admin_,
                                         "Content-Type: application/json"};
    EXPECT_EQ(Call("POST", "/api/v1/device-types", "", auth, R"({"name":"board-a"})").status, 201);
    for (const auto& n : names) {
      json body = {{"name", n}, {"device_type", "board-a"}};
      EXPECT_EQ(Call("POST", "/api/v1/devices", "", auth, body.dump()).status, 201);
    }
  }
  client::HttpResponse CheckIn(const std::string& device, const std::string& cert,
                               std::vector<std::string> headers = {}) {
    headers.push_back("Content-Type: application/json");
    return Call("POST", "/device/v1/" + device + "/check-in", cert, headers, "{}");
  }

  testing::TempDir dir_;
  SystemClock clock_;
  std::ostringstream log_;
  std::unique_ptr<App> app_;
  std::thread thread_;
  std::string base_, admin_;
  int issued_ = 0;
};

TEST_F(DeviceCerts, ValidNeedsNoToken_RevokedExpiredForeignUnregisteredRefused) {
  StartServer(Tls());
  Register({"dev-1", "dev-2", "dev-3"});
  const std::string good = Issue("ca", "dev-1", clock_);
  const std::string to_revoke = Issue("ca", "dev-2", clock_);
  ManualClock last_month(std::chrono::system_clock::now() - std::chrono::hours(24 * 30));
  const std::string expired = Issue("ca", "dev-3", last_month);
  ASSERT_THAT(crypto::CaDirectory::Init(Path("other"), "Someone else's CA", 365, clock_), IsOk());
  const std::string foreign = Issue("other", "dev-1", clock_);
  const std::string unregistered = Issue("ca", "dev-9", clock_);

  auto ok = CheckIn("dev-1", good);
  EXPECT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(CheckIn("dev-2", to_revoke).status, 200);
  {
    auto ca = crypto::CaDirectory::Open(Path("ca"), clock_);
    ASSERT_THAT(ca, IsOk());
    const auto pem = ReadFile(to_revoke + ".crt").value();
    ASSERT_THAT(ca->Revoke(crypto::Certificate::FromPem(pem, "x").value()[0].SerialHex()), IsOk());
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // the CRL is looked at once a s
  struct Refusal {
    const char* what;
    std::string device, cert, says;
  };
  for (const Refusal& r :
       std::vector<Refusal>{{"revoked", "dev-2", to_revoke, "revoked"},
                            {"expired", "dev-3", expired, "certificate has expired"},
                            {"foreign CA", "dev-1", foreign, "not issued by the device CA"},
                            {"unregistered", "dev-9", unregistered, "not registered"}}) {
    auto res = CheckIn(r.device, r.cert);
    EXPECT_EQ(res.status, 401) << r.what << ": " << res.body;
    EXPECT_THAT(res.body, HasSubstr(r.says)) << r.what;
    // DDI, the same.
    auto ddi = Call("GET", "/default/controller/v1/" + r.device, r.cert);
    EXPECT_EQ(ddi.status, 401) << r.what << " (DDI): " << ddi.body;
  }
  auto ddi = Call("GET", "/default/controller/v1/dev-1", good);
  EXPECT_EQ(ddi.status, 200) << ddi.body;
  // A device's certificate speaks for that device only.
  EXPECT_EQ(CheckIn("dev-3", good).status, 403);
  // Without any credentials: as before.
  EXPECT_EQ(CheckIn("dev-1", "").status, 401);

  // dev-1 revoked now: refused from the CRL's next look, although its caller was cached.
  {
    auto ca = crypto::CaDirectory::Open(Path("ca"), clock_);
    const auto pem = ReadFile(good + ".crt").value();
    ASSERT_THAT(ca->Revoke(crypto::Certificate::FromPem(pem, "x").value()[0].SerialHex()), IsOk());
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  auto now_revoked = CheckIn("dev-1", good);
  EXPECT_EQ(now_revoked.status, 401);
  EXPECT_THAT(now_revoked.body, HasSubstr("revoked"));
}

// The agent's uplink and downloader with the device's certificate and key files instead of a
// token (docs/agent.md): a check-in, and feedback.
TEST_F(DeviceCerts, AgentUplink_CertificateInsteadOfToken) {
  StartServer(Tls());
  Register({"dev-1"});
  const std::string good = Issue("ca", "dev-1", clock_);
  auto uplink = agent::MakeHttpUplink(
      base_, "dev-1", "",
      {.ca_file = Path("server.crt"), .cert_file = good + ".crt", .key_file = good + ".key"});
  auto answer = uplink->CheckIn({{"versions", {{"main", "1.0.0"}}}});
  ASSERT_THAT(answer, IsOk());
  EXPECT_TRUE(answer->contains("poll_interval_s")) << answer->dump();
  // Without the certificate, and without a token: refused.
  auto bare = agent::MakeHttpUplink(base_, "dev-1", "", {.ca_file = Path("server.crt")});
  EXPECT_THAT(bare->CheckIn(json::object()), IsError(Code::kPermissionDenied, HasSubstr("401")));
}

// Behind nginx: the certificate in a header, from the configured proxy addresses only.
TEST_F(DeviceCerts, ProxyHeader_OnlyFromTrustedAddresses) {
  ServerConfig c;
  c.device_ca_file = Path("ca/ca.crt");
  c.device_crl_file = Path("ca/crl.pem");
  c.trusted_proxies = {"10.9.9.9"};
  StartServer(c);
  Register({"dev-1"});
  const std::string good = Issue("ca", "dev-1", clock_);
  const std::string header = "X-SSL-Client-Cert: " + Escaped(ReadFile(good + ".crt").value());
  auto untrusted = CheckIn("dev-1", "", {header});
  EXPECT_EQ(untrusted.status, 401) << "believed from 127.0.0.1: " << untrusted.body;
  EXPECT_THAT(untrusted.body, HasSubstr("missing credentials"));
  StopServer();
  c.trusted_proxies = {"127.0.0.1"};
  StartServer(c);
  auto trusted = CheckIn("dev-1", "", {header});
  EXPECT_EQ(trusted.status, 200) << trusted.body;
  auto garbage = CheckIn("dev-1", "", {"X-SSL-Client-Cert: %2D%2D%2Dnot a certificate"});
  EXPECT_EQ(garbage.status, 401);
  EXPECT_THAT(garbage.body, HasSubstr("client certificate refused"));
}

TEST_F(DeviceCerts, BadConfigurationStopsTheStart) {
  ServerConfig c = Tls();
  c.data_dir = Path("data");
  c.device_crl_file = Path("server.crt");  // not a CRL
  auto app = App::Create(c, SystemClock::Instance(), log_);
  ASSERT_FALSE(app.ok());
  EXPECT_THAT(app.error().message(), HasSubstr("device_crl_file"));
  c = Tls();
  c.data_dir = Path("data");
  c.device_ca_file = Path("nope.crt");
  app = App::Create(c, SystemClock::Instance(), log_);
  ASSERT_FALSE(app.ok());
  EXPECT_THAT(app.error().message(), HasSubstr("nope.crt"));
}

}  // namespace
}  // namespace aloft::server
