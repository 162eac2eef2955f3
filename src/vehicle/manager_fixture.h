// The fixture of the manager's tests: a simulated car (ECUs on a classic bus, a CAN FD bus and
// behind the DoIP edge node) on simulated time, the gateway's network and manager, bundles made
// on the fly; what each ECU runs is read from the simulator.
#pragma once

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "core/file.h"
#include "ecusim/vehicle.h"
#include "net/stream.h"
#include "pkg/delta_package.h"
#include "support/matchers.h"
#include "support/package_fixture.h"
#include "vehicle/manager.h"
#include "vehicle/test_agent_ecu.h"

namespace aloft::vehicle {

constexpr char kCar[] = R"(
[vehicle]
name = "test-car"
vin = "WALOFTTEST0000001"
[[bus]]
name = "pt"
bitrate = 500000
[[bus]]
name = "fd"
bitrate = 500000
data_bitrate = 2000000
[doip]
logical_address = 0x1000
[[ecu]]
name = "ecm"
bus = "pt"
request_id = 0x7E0
response_id = 0x7E8
layout = "ab"
serial = "SN-ECM-0001"
software = "1.0.0"
hardware_version = "E1"
app_size = 262144
[[ecu]]
name = "tcm"
bus = "pt"
request_id = 0x7E1
response_id = 0x7E9
serial = "SN-TCM-0001"
software = "1.0.0"
hardware_version = "T1"
app_size = 262144
[[ecu]]
name = "adas"
bus = "fd"
request_id = 0x7E2
response_id = 0x7EA
software = "1.0.0"
hardware_version = "A1"
app_size = 262144
[[ecu]]
name = "hu"
bus = "doip"
doip_address = 0x1010
layout = "ab"
software = "1.0.0"
hardware_version = "H1"
app_size = 262144
[signals]
bus = "pt"
)";

struct Target {
  std::string name, hardware, install, where;
  size_t size;
};
const Target kTargets[] = {
    {"ecm", "E1", "uds-ab", "bus = \"pt\"\nrequest_id = 0x7E0\nresponse_id = 0x7E8", 60'000},
    {"tcm", "T1", "uds", "bus = \"pt\"\nrequest_id = 0x7E1\nresponse_id = 0x7E9", 40'000},
    {"adas", "A1", "uds", "bus = \"fd\"\nrequest_id = 0x7E2\nresponse_id = 0x7EA", 90'000},
    {"hu", "H1", "uds-ab", "bus = \"doip\"\ndoip_address = 0x1010", 100'000},
};

class ManagerTest : public ::testing::Test, public testing::PackageFixture {
 protected:
  void SetUp() override {
    auto spec = ecusim::ParseVehicleSpec(kCar, "car.toml");
    ASSERT_THAT(spec, IsOk());
    spec_ = *spec;
    std::filesystem::create_directories(dir.path() + "/ecus");
    auto v = ecusim::Vehicle::Create(loop_, spec_, dir.path() + "/ecus");
    ASSERT_THAT(v, IsOk());
    car_ = std::move(*v);
    StartGateway();
  }

  void StartGateway() {
    manager_.reset();
    // The in-car device API restarts with the gateway, on the same port, knowing nothing.
    agent_ecus_.reset();
    agent_ecus_ = std::make_unique<AgentEcuServer>(
        std::vector<AgentEcuServer::Ecu>{{.name = "tcu2", .token = "tcu2-token"}});
    ASSERT_THAT(agent_ecus_->Start("127.0.0.1:" + std::to_string(agent_port_)), IsOk());
    agent_port_ = agent_ecus_->port();
    network_.reset();
    doip_.reset();
    for (const char* bus : {"pt", "fd"}) ports_[bus] = car_->bus(bus)->Attach("gateway");
    auto [tester_end, entity_end] = net::SimStream::Pair(loop_);
    car_->entity()->Accept(std::move(entity_end));
    doip_ = std::make_unique<doip::Client>(std::move(tester_end));
    std::optional<Result<uint16_t>> activated;
    doip_->Activate([&](Result<uint16_t> r) { activated = std::move(r); });
    loop_.RunFor(std::chrono::milliseconds(10));
    ASSERT_TRUE(activated && activated->ok());
    auto n = Network::Create(spec_, {{"pt", ports_["pt"].get()}, {"fd", ports_["fd"].get()}},
                             doip_.get());
    ASSERT_THAT(n, IsOk());
    network_ = std::move(*n);
    manager_ = std::make_unique<Manager>(
        loop_, *network_,
        ManagerConfig{.state_dir = dir.path() + "/gateway",
                      .trust = Trust({0}, 1),
                      .key =
                          [this](const std::string& ecu, std::span<const uint8_t> seed) {
                            if (wrong_key_.count(ecu)) return Bytes(32, 0x00);  // every attempt
                            return ecusim::SecurityKey(car_->ecu(ecu)->config(), seed);
                          },
                      .agent_ecus = agent_ecus_.get(),
                      .content_key = content_key_for_,
                      .tester = tester_});
    manager_->on_progress = [this](const std::string& ecu, const std::string& stage, uint64_t,
                                   uint64_t) { stages_.insert(ecu + " " + stage); };
  }

  // A bundle of every target at `version`, with `edit` applied to the description text.
  std::string Bundle(const std::string& version,
                     std::function<void(pkg::PackOptions&)> edit = nullptr,
                     std::vector<int> signers = {0}) {
    std::string text = "[bundle]\nname = \"car\"\nversion = \"" + version +
                       "\"\nmodel = \"test-car\"\n[policy]\nmode = \"silent\"\n";
    for (const Target& t : kTargets) {
      const std::string file = t.name + "-" + version + ".bin";
      EXPECT_THAT(WriteFileAtomic(dir.path() + "/" + file,
                                  AsChars(ecusim::MakeAppImage(
                                      version, "P", testing::RandomBytes(t.size, t.size)))),
                  IsOk());
      text += "[[ecu]]\nname = \"" + t.name + "\"\nimage = \"" + file + "\"\nversion = \"" +
              version + "\"\nhardware = \"" + t.hardware + "\"\ninstall = \"" + t.install +
              "\"\naddress = 0x80000\n" + t.where + "\n";
    }
    const std::string description = dir.path() + "/bundle-" + version + ".toml";
    EXPECT_THAT(WriteFileAtomic(description, text), IsOk());
    auto o = LoadBundleDescription(description);
    EXPECT_THAT(o, IsOk());
    for (int s : signers) o->keys.push_back(&keys[static_cast<size_t>(s)]);
    if (edit) edit(*o);
    o->output = dir.path() + "/car-" + version + "-" + std::to_string(++bundles_) + ".aloft";
    o->progress = Progress::Mode::kNever;
    ManualClock clock;
    EXPECT_THAT(pkg::Pack(*o, clock), IsOk());
    return o->output;
  }

  InstallReport Install(const std::string& bundle) {
    std::optional<InstallReport> report;
    manager_->Install(bundle, [&](InstallReport r) { report = std::move(r); });
    loop_.RunUntil([&] { return report.has_value(); }, std::chrono::hours(1));
    EXPECT_TRUE(report.has_value());
    return report.value_or(InstallReport{});
  }

  // A bundle whose policy is `policy` (merged into the default one).
  std::string WithPolicy(const std::string& version, nlohmann::json policy) {
    return Bundle(version,
                  [policy](pkg::PackOptions& o) { o.extra["vehicle"]["policy"].update(policy); });
  }

  bool AnyProgramming() {
    for (const Target& t : kTargets) {
      if (car_->ecu(t.name)->server().session() == uds::session::kProgramming) return true;
    }
    return false;
  }

  // Each ECU's running version, from the simulator; "-" for one that runs nothing.
  std::string Versions() {
    std::string s;
    for (const Target& t : kTargets) {
      const auto st = car_->ecu(t.name)->status();
      s += t.name + "=" + (st.application ? st.version : "-") + " ";
    }
    return s;
  }

  // From the simulator: how long after `since` the car first stood at a safe point (no ECU in the
  // programming session, every ECU holding an image its bootloader starts); nullopt past a minute.
  std::optional<std::chrono::milliseconds> UntilSafePoint(EventLoop::TimePoint since) {
    auto safe = [&] {
      for (const Target& t : kTargets) {
        ecusim::Ecu& e = *car_->ecu(t.name);
        if (!e.Bootable()) return false;
        if (e.online() && e.server().session() == uds::session::kProgramming) return false;
      }
      return true;
    };
    while (!safe()) {
      if (loop_.Now() - since > std::chrono::minutes(1)) return std::nullopt;
      loop_.RunFor(std::chrono::milliseconds(1));
    }
    return std::chrono::duration_cast<std::chrono::milliseconds>(loop_.Now() - since);
  }

  // Installs 2.0.0 in `mode`, noting in screen_seen_ what the driver's screen showed as the
  // first ECU's backup or transfer moved.
  InstallReport InstallInMode(const char* mode) {
    screen_seen_ = "(nothing moved)";
    manager_->on_progress = [this](const std::string&, const std::string&, uint64_t, uint64_t) {
      if (screen_seen_ == "(nothing moved)") screen_seen_ = manager_->driver().Screen();
    };
    return Install(WithPolicy("2.0.0", {{"mode", mode}}));
  }

  // A bundle of every target at `version` and tcu2, an ECU with its own agent, whose package
  // (2.0.0 for board-a) is signed by keys `signers`.
  std::string WithAgentEcu(const std::string& version, std::vector<int> signers = {0}) {
    const std::string file = dir.path() + "/tcu2-" + version + ".aloft";
    EXPECT_THAT(WriteFileAtomic(file, AsChars(Pack({{"main", testing::RandomBytes(30000, 9)}},
                                                   pkg::Compression::kZstd, signers, version))),
                IsOk());
    return Bundle(version, [file, version](pkg::PackOptions& o) {
      o.components.push_back(
          {.name = "tcu2",
           .path = file,
           .install = {{"method", "agent"}, {"version", version}, {"hardware", "board-a"}}});
    });
  }

  // Installs `bundle` while tcu2's agent polls the gateway every half second of the campaign.
  InstallReport InstallWithAgent(testing::AgentEcuDevice& tcu2, const std::string& bundle) {
    std::optional<InstallReport> report;
    manager_->Install(bundle, [&](InstallReport r) { report = std::move(r); });
    for (int i = 0; i < 4000 && !report; ++i) {
      loop_.RunFor(std::chrono::milliseconds(500));
      (void)tcu2.Step();
    }
    EXPECT_TRUE(report.has_value());
    return report.value_or(InstallReport{});
  }

  // The car parks again: the campaign behind `report` goes on and ends all-new on 2.0.0.
  void ParkUntilAllNew(std::optional<InstallReport>& report) {
    car_->signals().speed_kph = 0;
    loop_.RunUntil([&] { return report.has_value(); }, std::chrono::hours(1));
    ASSERT_TRUE(report.has_value());
    EXPECT_EQ(report->result, InstallResult::kAllNew) << report->Summary();
    EXPECT_EQ(Versions(), "ecm=2.0.0 tcm=2.0.0 adas=2.0.0 hu=2.0.0 ");
  }

  uint64_t FlashOperations() {
    uint64_t n = 0;
    for (const Target& t : kTargets) n += car_->ecu(t.name)->flash().operations();
    return n;
  }

  // The car again, its description changed by `edit` (the ECUs keep their flash), and the
  // gateway restarted.
  void RebuildCar(std::function<void(ecusim::VehicleSpec&)> edit) {
    manager_.reset();
    network_.reset();
    doip_.reset();
    ports_.clear();
    car_.reset();
    edit(spec_);
    auto v = ecusim::Vehicle::Create(loop_, spec_, dir.path() + "/ecus");
    ASSERT_THAT(v, IsOk());
    car_ = std::move(*v);
    StartGateway();
  }

  // The gateway's way to an encrypted bundle's content key (none: such bundles are refused).
  ContentKeyFor content_key_for_;
  // The gateway's tester certificate for UDS 0x29 (none: ECUs that require it are refused).
  std::shared_ptr<const uds::TesterCredentials> tester_;
  SimLoop loop_;
  ecusim::VehicleSpec spec_;
  std::unique_ptr<ecusim::Vehicle> car_;
  std::map<std::string, std::unique_ptr<can::SimPort>> ports_;
  std::unique_ptr<doip::Client> doip_;
  std::unique_ptr<Network> network_;
  std::unique_ptr<Manager> manager_;
  std::set<std::string> stages_;
  int bundles_ = 0;
  std::set<std::string> wrong_key_;  // ECUs the gateway has a wrong security key for
  std::string screen_seen_;
  std::unique_ptr<AgentEcuServer> agent_ecus_;
  uint16_t agent_port_ = 0;
};

}  // namespace aloft::vehicle
