// Independent peers against the simulated car of examples/demo-car.toml, run in real time in this
// process with its bus hub and DoIP sockets on loopback: scapy (Debian python3-scapy 2.5, run by
// /usr/bin/python3) through the hub with its ISO-TP soft socket, UDS packets and UDS_Scanner, and
// over DoIP with UDS_DoIPSocket (DIDs and security access); and the aloft-ecu-sim scanner's own
// path, the SocketcandBus tester, reading every ECU on the three classic buses.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "can/socketcand_server.h"
#include "core/file.h"
#include "doip/socket_server.h"
#include "ecusim/vehicle.h"
#include "support/matchers.h"
#include "support/temp_dir.h"
#include "uds/test_pki.h"

namespace aloft::ecusim {
namespace {

using ::testing::HasSubstr;

std::string RunPython(const std::string& args) {
  const std::string cmd = "/usr/bin/python3 " + args + " 2>/dev/null";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return "popen failed";
  std::string out;
  char buf[512];
  while (std::fgets(buf, sizeof buf, p)) out += buf;
  const int rc = ::pclose(p);
  if (rc != 0) out += "\n(exit " + std::to_string(rc) + ")";
  return out;
}

bool HaveScapy() {
  if (std::system("/usr/bin/python3 -c 'import scapy, can' 2>/dev/null") == 0) return true;
  return false;
}

class Peers : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!HaveScapy()) {
      if (std::getenv("ALOFT_REQUIRE_PEERS"))
        FAIL() << "python3-scapy and python3-can are required";
      GTEST_SKIP() << "Debian's python3-scapy / python3-can are not installed (scripts/setup.sh)";
    }
    auto spec = LoadVehicleSpec(ALOFT_SOURCE_DIR "/examples/demo-car.toml");
    ASSERT_THAT(spec, IsOk());
    spec->doip->answer_gap = std::chrono::milliseconds(20);  // as aloft-ecu-sim runs it
    ASSERT_THAT(MakeVehicle(*spec, dir_.path()), IsOk());
    hub_ = std::make_unique<can::SocketcandServer>(
        loop_,
        [this](const std::string& name,
               const std::string& peer) -> Result<std::unique_ptr<can::CanBus>> {
          can::SimBus* b = vehicle_->bus(name);
          if (!b) return Error(Code::kNotFound, "no bus '" + name + "'");
          return std::unique_ptr<can::CanBus>(b->Attach("hub:" + peer));
        });
    auto h = hub_->Start({"127.0.0.1", 0});
    ASSERT_THAT(h, IsOk());
    hub_at_ = *h;
    doip_ = std::make_unique<doip::SocketServer>(loop_, *vehicle_->entity());
    auto d = doip_->Start({"127.0.0.1", 0});
    ASSERT_THAT(d, IsOk());
    doip_at_ = *d;
  }
  // The car of `spec` (its flash in `dir`) in place of the one there.
  Status MakeVehicle(const VehicleSpec& spec, const std::string& dir) {
    Status made = OkStatus();
    loop_.Run([&] {
      vehicle_.reset();
      auto v = Vehicle::Create(loop_, spec, dir);
      if (v.ok()) {
        vehicle_ = std::move(*v);
      } else {
        made = std::move(v).error();
      }
    });
    return made;
  }
  void TearDown() override {
    doip_.reset();
    hub_.reset();
    loop_.Run([&] { vehicle_.reset(); });
  }

  testing::TempDir dir_;
  RealLoop loop_;
  std::unique_ptr<Vehicle> vehicle_;
  std::unique_ptr<can::SocketcandServer> hub_;
  std::unique_ptr<doip::SocketServer> doip_;
  net::Endpoint hub_at_, doip_at_;
};

// Must show 2: scapy's ISO-TP soft socket, UDS packets and UDS_Scanner, through the bus hub.
TEST_F(Peers, Scapy_IsoTpSoftSocket_UdsAndScanner_ThroughTheHub) {
  const std::string out =
      RunPython(std::string(ALOFT_SOURCE_DIR) + "/src/ecusim/peers/scapy_isotp.py " + hub_at_.host +
                " " + std::to_string(hub_at_.port) + " powertrain");
  EXPECT_THAT(out, HasSubstr("DID F190: WALOFTDEMO0000001\n")) << out;
  EXPECT_THAT(out, HasSubstr("DID F189: 4.2.0\n")) << out;
  EXPECT_THAT(out, HasSubstr("10 03: 5003003201f4\n")) << out;
  EXPECT_THAT(out, HasSubstr("services: 10 11 14 19 22 27 28 2E 31 34 35 36 37 3E 85\n")) << out;
  EXPECT_THAT(out, HasSubstr("states: 2\n")) << "default and extended sessions: " << out;
}

// Must show 3: scapy's UDS_DoIPSocket reads DIDs and passes security access over our DoIP.
TEST_F(Peers, Scapy_UdsDoIpSocket_DidsAndSecurityAccess) {
  const std::string secret = [] {
    std::string s;
    for (int i = 0; i < 32; ++i) s += "5a";
    return s;
  }();
  const std::string real =
      RunPython(std::string(ALOFT_SOURCE_DIR) + "/src/ecusim/peers/scapy_doip.py " + doip_at_.host +
                " " + std::to_string(doip_at_.port) + " 0x1001 " + secret);
  EXPECT_THAT(real, HasSubstr("VIN: WALOFTDEMO0000001\n")) << real;
  EXPECT_THAT(real, HasSubstr("software: 4.2.0\n")) << real;
  EXPECT_THAT(real, HasSubstr("31 01 0203: 7101020300\n")) << real;
  EXPECT_THAT(real, HasSubstr("10 02: 5002\n")) << real;
  EXPECT_THAT(real, HasSubstr("seed bytes: 16\n")) << real;
  EXPECT_THAT(real, HasSubstr("wrong key: 7f2735\n")) << real;
  EXPECT_THAT(real, HasSubstr("27 02: 6702\n")) << real;
  // Through the edge node, the CAN FD ECU behind it and the Ethernet ECU answer the same way.
  for (const char* target : {"0x1006", "0x1010"}) {
    const std::string other = RunPython(
        std::string(ALOFT_SOURCE_DIR) + "/src/ecusim/peers/scapy_doip.py " + doip_at_.host + " " +
        std::to_string(doip_at_.port) + " " + target + " " + secret);
    EXPECT_THAT(other, HasSubstr("27 02: 6702\n")) << target << ": " << other;
  }
}

// DoIP over TLS: with require_tls, the plain port answers routing activation with 0x07 and the
// TLS port (our certificate, Python's ssl module as the client) activates and carries UDS.
TEST_F(Peers, DoIpOverTls_PythonSsl_PlainAnswered0x07) {
  const std::string crt = dir_ / "entity.crt", key = dir_ / "entity.key";
  const std::string make_cert =
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "
      "/CN=localhost -addext subjectAltName=DNS:localhost -keyout " +
      key + " -out " + crt + " >/dev/null 2>&1";
  ASSERT_EQ(std::system(make_cert.c_str()), 0) << make_cert;
  doip_.reset();
  auto spec = LoadVehicleSpec(ALOFT_SOURCE_DIR "/examples/demo-car.toml");
  ASSERT_THAT(spec, IsOk());
  spec->doip->require_tls = true;
  std::filesystem::create_directories(dir_ / "tls");
  ASSERT_THAT(MakeVehicle(*spec, dir_ / "tls"), IsOk());
  doip_ = std::make_unique<doip::SocketServer>(loop_, *vehicle_->entity());
  auto tls_at = doip_->ListenTls({"127.0.0.1", 0}, crt, key);
  ASSERT_THAT(tls_at, IsOk());
  auto plain_at = doip_->Start({"127.0.0.1", 0});
  ASSERT_THAT(plain_at, IsOk());
  const std::string out = RunPython(
      std::string(ALOFT_SOURCE_DIR) + "/src/ecusim/peers/doip_tls.py 127.0.0.1 " +
      std::to_string(plain_at->port) + " " + std::to_string(tls_at->port) + " " + crt + " 0x1001");
  EXPECT_THAT(out, HasSubstr("plain activation: 0x07\n")) << out;
  EXPECT_THAT(out, HasSubstr("tls activation: 0x10\n")) << out;
  EXPECT_THAT(out, HasSubstr("VIN: WALOFTDEMO0000001\n")) << out;
  EXPECT_THAT(out, HasSubstr("tls version: TLSv1.3\n")) << out;
}

// UDS Authentication (0x29) with scapy's UDS_AUTH packets and python3-cryptography's ECDSA over
// our DoIP: the engine ECU programs only after 29; a foreign chain is refused with 0x52; the
// genuine tester's proof of ownership completes it (0x12); the same proof replayed is refused.
TEST_F(Peers, Scapy_UdsAuth_CertificateAndProofOfOwnership) {
  testing::TestPki oem("OEM root"), stranger("stranger");
  const uds::TesterCredentials tester = oem.Tester({"programming"});
  const std::string chain = dir_ / "tester.der", key = dir_ / "tester.key";
  const std::string foreign = dir_ / "foreign.der";
  const Bytes chain_der = tester.ChainDer(), foreign_der = stranger.Tester().ChainDer();
  ASSERT_THAT(WriteFileAtomic(chain, std::string(chain_der.begin(), chain_der.end())), IsOk());
  ASSERT_THAT(WriteFileAtomic(key, tester.key.ToPem()), IsOk());
  ASSERT_THAT(WriteFileAtomic(foreign, std::string(foreign_der.begin(), foreign_der.end())),
              IsOk());
  doip_.reset();
  auto spec = LoadVehicleSpec(ALOFT_SOURCE_DIR "/examples/demo-car.toml");
  ASSERT_THAT(spec, IsOk());
  spec->doip->answer_gap = std::chrono::milliseconds(20);
  for (auto& e : spec->ecus) {
    if (e.config.name != "ecm") continue;
    e.config.access = ProgrammingAccess::kAuthentication;
    e.config.auth_anchors = {oem.root};
  }
  std::filesystem::create_directories(dir_ / "auth");
  ASSERT_THAT(MakeVehicle(*spec, dir_ / "auth"), IsOk());
  doip_ = std::make_unique<doip::SocketServer>(loop_, *vehicle_->entity());
  auto at = doip_->Start({"127.0.0.1", 0});
  ASSERT_THAT(at, IsOk());
  const std::string out =
      RunPython(std::string(ALOFT_SOURCE_DIR) + "/src/ecusim/peers/scapy_auth.py 127.0.0.1 " +
                std::to_string(at->port) + " 0x1001 " + chain + " " + key + " " + foreign);
  EXPECT_THAT(out, HasSubstr("10 02: 5002\n")) << out;
  EXPECT_THAT(out, HasSubstr("34 before 29: 7f3434\n")) << out;
  EXPECT_THAT(out, HasSubstr("29 01 foreign: 7f2952\n")) << out;
  EXPECT_THAT(out, HasSubstr("29 01 return: 0x11\n")) << out;
  EXPECT_THAT(out, HasSubstr("challenge bytes: 32\n")) << out;
  EXPECT_THAT(out, HasSubstr("29 03 return: 0x12\n")) << out;
  EXPECT_THAT(out, HasSubstr("34 after 29: ")) << out;
  EXPECT_THAT(out, ::testing::Not(HasSubstr("34 after 29: 7f3434"))) << out;
  EXPECT_THAT(out, HasSubstr("29 03 replayed: 7f2924\n")) << out;
}

}  // namespace
}  // namespace aloft::ecusim
