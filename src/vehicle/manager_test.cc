// The manager against a simulated car (ECUs on a classic bus, a CAN FD bus and behind the DoIP
// edge node), on simulated time: a bundle verified, backed up, installed; bad bundles refused
// before any ECU is touched; a failing ECU sending all back; a gateway restart converging. What
// each ECU runs is read from the simulator.
#include "vehicle/manager.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/file.h"
#include "ecusim/vehicle.h"
#include "net/stream.h"
#include "pkg/delta_package.h"
#include "support/matchers.h"
#include "support/package_fixture.h"
#include "vehicle/test_agent_ecu.h"

namespace aloft::vehicle {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

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
software = "1.0.0"
hardware_version = "E1"
app_size = 262144
[[ecu]]
name = "tcm"
bus = "pt"
request_id = 0x7E1
response_id = 0x7E9
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
                      .agent_ecus = agent_ecus_.get()});
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

  uint64_t FlashOperations() {
    uint64_t n = 0;
    for (const Target& t : kTargets) n += car_->ecu(t.name)->flash().operations();
    return n;
  }

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

TEST_F(ManagerTest, InstallsABundle_BackingUpSingleBankEcusFirst) {
  EXPECT_EQ(network_->route("adas"), "fd 0x7E2/0x7EA");
  EXPECT_EQ(network_->route("hu"), "DoIP 0x1010");
  // ecm follows tcm, although its image is larger (larger ones go first otherwise).
  const InstallReport r = Install(
      Bundle("2.0.0", [](pkg::PackOptions& o) { o.components[0].install["after"] = {"tcm"}; }));
  EXPECT_EQ(r.result, InstallResult::kAllNew) << r.Summary();
  EXPECT_EQ(Versions(), "ecm=2.0.0 tcm=2.0.0 adas=2.0.0 hu=2.0.0 ");
  auto at = [&](const std::string& line) {
    return std::find(r.campaign.log.begin(), r.campaign.log.end(), line) - r.campaign.log.begin();
  };
  EXPECT_LT(at("tcm: transferred 2.0.0"), at("ecm: transferred 2.0.0"));
  EXPECT_LT(at("tcm: runs 2.0.0"), at("ecm: runs 2.0.0"));
  EXPECT_LT(at("ecm: runs 2.0.0"), static_cast<ptrdiff_t>(r.campaign.log.size()));
  EXPECT_LT(at("hu: transferred 2.0.0"), at("ecm: transferred 2.0.0")) << "the largest first";
  EXPECT_EQ(r.before.at("tcm").software, "1.0.0");
  EXPECT_EQ(r.after.at("tcm").software, "2.0.0");
  EXPECT_EQ(r.after.at("hu").hardware, "H1");
  // The single-bank ECUs were read back before their erase; the A/B ones need no backup.
  EXPECT_TRUE(stages_.count("tcm backup") && stages_.count("adas backup"));
  EXPECT_FALSE(stages_.count("ecm backup") || stages_.count("hu backup"));
  EXPECT_TRUE(stages_.count("hu transfer"));
  EXPECT_TRUE(std::filesystem::exists(dir.path() + "/gateway/backup/tcm.bin"));
  EXPECT_THAT(r.Summary(), HasSubstr("tcm: 1.0.0 -> 2.0.0"));

  // The next one uses the kept images as backups: no read-back.
  stages_.clear();
  const InstallReport again = Install(Bundle("2.1.0"));
  EXPECT_EQ(again.result, InstallResult::kAllNew) << again.Summary();
  EXPECT_FALSE(stages_.count("tcm backup"));
  EXPECT_EQ(Versions(), "ecm=2.1.0 tcm=2.1.0 adas=2.1.0 hu=2.1.0 ");
}

// A delta bundle: each ECU's image is rebuilt from the gateway's copy of what it runs while it is
// flashed; the ECU's check routine gets the signed SHA-256. A delta whose base an ECU no longer
// runs, or whose base the gateway has no copy of, is refused before any ECU is touched.
TEST_F(ManagerTest, DeltaBundle_ImagesRebuiltAsTheyGoOut_FromTheGatewaysCopies) {
  // The bundles' own versions are not the ECUs'.
  auto release = [this](const std::string& ecus, const std::string& bundle) {
    return Bundle(ecus, [bundle](pkg::PackOptions& o) { o.version = bundle; });
  };
  const std::string full = release("2.0.0", "2026.1.0");
  ASSERT_EQ(Install(full).result, InstallResult::kAllNew);
  pkg::DeltaPackageOptions d;
  d.from = full;
  d.to = release("2.1.0", "2026.2.0");
  d.keys = {&keys[0]};
  d.output = dir.path() + "/car-2.1.0-delta.aloft";
  ManualClock clock;
  auto made = pkg::MakeDeltaPackage(d, clock);
  ASSERT_THAT(made, IsOk());
  uint64_t images = 0, patches = 0;
  for (const auto& c : *made) images += c.image_size, patches += c.patch_size;
  std::printf("delta bundle: %llu bytes of patches for %llu bytes of images\n",
              static_cast<unsigned long long>(patches), static_cast<unsigned long long>(images));
  EXPECT_LT(patches * 10, images);

  const InstallReport r = Install(d.output);
  EXPECT_EQ(r.result, InstallResult::kAllNew) << r.Summary();
  EXPECT_EQ(Versions(), "ecm=2.1.0 tcm=2.1.0 adas=2.1.0 hu=2.1.0 ");

  // Again: every ECU runs 2.1.0 now, not the delta's base.
  const uint64_t ops = FlashOperations();
  const InstallReport again = Install(d.output);
  EXPECT_EQ(again.result, InstallResult::kRefused);
  EXPECT_THAT(again.problems,
              Contains("ecm: the delta applies to 2.0.0; the ECU runs 2.1.0 (it needs a full "
                       "image)"));
  EXPECT_EQ(FlashOperations(), ops);

  // A delta from 2.1.0 while the gateway lost its copy of hu's image (an A/B ECU: nothing to
  // read back from).
  pkg::DeltaPackageOptions e = d;
  e.from = d.to;
  e.to = release("2.2.0", "2026.3.0");
  e.output = dir.path() + "/car-2.2.0-delta.aloft";
  ASSERT_THAT(pkg::MakeDeltaPackage(e, clock), IsOk());
  std::filesystem::remove(dir.path() + "/gateway/backup/hu.bin");
  const InstallReport lost = Install(e.output);
  EXPECT_EQ(lost.result, InstallResult::kRefused);
  EXPECT_THAT(lost.problems, ElementsAre("hu: the gateway holds no copy of its 2.1.0 image for "
                                         "the delta to apply to (it needs a full image)"));
  EXPECT_EQ(FlashOperations(), ops);
}

// An ECU that runs aloft-agent itself: offered its package through the gateway's in-car device
// API, it downloads and verifies it with the other ECUs' transfers, and installs it last, once
// every other ECU runs its new version (it commits by itself: nothing may fail after it).
TEST_F(ManagerTest, AgentEcu_InstallsItsOwnPackageLast_AllNew) {
  testing::AgentEcuDevice tcu2(dir.path() + "/tcu2", agent_ecus_->port(), "tcu2", "tcu2-token",
                               Trust({0}, 1));
  ASSERT_THAT(tcu2.Step(), IsOk());  // it checks in: the gateway knows what it runs
  const InstallReport r = InstallWithAgent(tcu2, WithAgentEcu("2.0.0"));
  EXPECT_EQ(r.result, InstallResult::kAllNew) << r.Summary();
  EXPECT_EQ(r.before.at("tcu2").software, "1.0.0");
  EXPECT_EQ(Versions(), "ecm=2.0.0 tcm=2.0.0 adas=2.0.0 hu=2.0.0 ");
  EXPECT_EQ(agent_ecus_->state("tcu2").status, "success");
  ASSERT_THAT(tcu2.Step(), IsOk());
  EXPECT_EQ(agent_ecus_->state("tcu2").versions.at("main"), "2.0.0");
  auto at = [&](const std::string& line) {
    return std::find(r.campaign.log.begin(), r.campaign.log.end(), line) - r.campaign.log.begin();
  };
  EXPECT_LT(at("tcu2: transferred 2.0.0"), at("ecm: runs 2.0.0"));
  for (const char* other : {"ecm", "tcm", "adas", "hu"}) {
    EXPECT_LT(at(std::string(other) + ": runs 2.0.0"), at("tcu2: its agent may install 2.0.0"))
        << other;
  }
  EXPECT_LT(at("tcu2: its agent may install 2.0.0"), at("tcu2: runs 2.0.0"));
}

// The gateway restarts while the agent ECU installs, the last wave (every other ECU runs its new
// version): the agent commits meanwhile, so the restarted gateway goes forward, not back.
TEST_F(ManagerTest, AgentEcu_GatewayRestartsWhileItInstalls_TheCampaignGoesForward) {
  testing::AgentEcuDevice tcu2(dir.path() + "/tcu2", agent_ecus_->port(), "tcu2", "tcu2-token",
                               Trust({0}, 1));
  ASSERT_THAT(tcu2.Step(), IsOk());
  manager_->Install(WithAgentEcu("2.0.0"), [](InstallReport) {});
  for (int i = 0; i < 4000 && agent_ecus_->state("tcu2").status != "installed"; ++i) {
    loop_.RunFor(std::chrono::milliseconds(500));
    ASSERT_THAT(tcu2.Step(), IsOk());
  }
  ASSERT_EQ(agent_ecus_->state("tcu2").status, "installed") << "installed, restarting";
  StartGateway();  // the gateway's power goes and comes back
  std::optional<InstallReport> recovered;
  manager_->Recover([&](InstallReport r) { recovered = std::move(r); });
  for (int i = 0; i < 200 && !recovered; ++i) {
    loop_.RunFor(std::chrono::milliseconds(500));
    (void)tcu2.Step();  // it confirms its new image and reports on the action offered again
  }
  ASSERT_TRUE(recovered.has_value());
  EXPECT_EQ(recovered->result, InstallResult::kAllNew) << recovered->Summary();
  EXPECT_THAT(recovered->campaign.log,
              Contains("recover: tcu2 goes on installing 2.0.0: its outcome decides"));
  loop_.RunFor(std::chrono::seconds(2));
  EXPECT_EQ(Versions(), "ecm=2.0.0 tcm=2.0.0 adas=2.0.0 hu=2.0.0 ");
  ASSERT_THAT(tcu2.Step(), IsOk());
  EXPECT_EQ(agent_ecus_->state("tcu2").versions.at("main"), "2.0.0");
}

// Its agent refuses the package (signed by a key it does not trust): nothing was activated yet,
// every ECU goes back; the agent's own slot was never touched.
TEST_F(ManagerTest, AgentEcu_RefusesItsPackage_EveryEcuStaysOld) {
  testing::AgentEcuDevice tcu2(dir.path() + "/tcu2", agent_ecus_->port(), "tcu2", "tcu2-token",
                               Trust({0}, 1));
  ASSERT_THAT(tcu2.Step(), IsOk());
  const InstallReport r = InstallWithAgent(tcu2, WithAgentEcu("2.0.0", {1}));
  EXPECT_EQ(r.result, InstallResult::kAllOld) << r.Summary();
  EXPECT_THAT(r.campaign.first_failure, HasSubstr("tcu2: its agent reports a failure"));
  loop_.RunFor(std::chrono::seconds(2));
  EXPECT_EQ(Versions(), "ecm=1.0.0 tcm=1.0.0 adas=1.0.0 hu=1.0.0 ");
  ASSERT_THAT(tcu2.Step(), IsOk());
  EXPECT_EQ(agent_ecus_->state("tcu2").versions.at("main"), "1.0.0");
  EXPECT_EQ(tcu2.boots(), 1) << "it never restarted";
}

// A UDS ECU fails: the agent ECU's held package is withdrawn, never installed.
TEST_F(ManagerTest, AgentEcu_AnotherEcuFails_ItsHeldPackageIsWithdrawn) {
  testing::AgentEcuDevice tcu2(dir.path() + "/tcu2", agent_ecus_->port(), "tcu2", "tcu2-token",
                               Trust({0}, 1));
  ASSERT_THAT(tcu2.Step(), IsOk());
  wrong_key_.insert("hu");
  const InstallReport r = InstallWithAgent(tcu2, WithAgentEcu("2.0.0"));
  EXPECT_EQ(r.result, InstallResult::kAllOld) << r.Summary();
  ASSERT_THAT(tcu2.Step(), IsOk());  // it hears of the withdrawal and drops the package
  EXPECT_EQ(agent_ecus_->state("tcu2").status, "canceled");
  EXPECT_EQ(tcu2.agent().journal().state, agent::State::kIdle);
  EXPECT_EQ(agent_ecus_->state("tcu2").versions.at("main"), "1.0.0");
  EXPECT_EQ(tcu2.boots(), 1);
}

// Not checked in with the gateway: refused like any ECU that does not answer. An image that is
// not a package for its agent: refused too. Nothing touched either way.
TEST_F(ManagerTest, AgentEcu_NeverCheckedInOrNotAPackage_TheBundleIsRefused) {
  const uint64_t ops = FlashOperations();
  const InstallReport r = Install(WithAgentEcu("2.0.0"));
  EXPECT_EQ(r.result, InstallResult::kRefused);
  EXPECT_THAT(r.problems, ElementsAre("tcu2: does not answer (its agent has not checked in with "
                                      "the gateway)"));
  const std::string raw = dir.path() + "/raw.bin";
  ASSERT_THAT(WriteFileAtomic(raw, std::string(5000, 'x')), IsOk());
  const InstallReport bad = Install(Bundle("2.0.0", [raw](pkg::PackOptions& o) {
    o.components.push_back(
        {.name = "tcu2",
         .path = raw,
         .install = {{"method", "agent"}, {"version", "2.0.0"}, {"hardware", "board-a"}}});
  }));
  EXPECT_EQ(bad.result, InstallResult::kRefused);
  ASSERT_EQ(bad.problems.size(), 1u);
  EXPECT_THAT(bad.problems[0], HasSubstr("tcu2: its image is not a package for its agent"));
  EXPECT_EQ(FlashOperations(), ops);
}

TEST_F(ManagerTest, BadBundles_AreRefusedBeforeAnyEcuIsTouched) {
  struct Case {
    std::string name, bundle, error;
  };
  // Made with pkg directly: `aloft bundle` refuses to write some of these.
  const std::vector<Case> cases = {
      {"bad signature", Bundle("2.0.0", nullptr, {1}), "signature"},
      {"unknown ECU", Bundle("2.0.0", [](pkg::PackOptions& o) { o.components[3].name = "radio"; }),
       "radio: unknown ECU"},
      {"wrong hardware",
       Bundle("2.0.0", [](pkg::PackOptions& o) { o.components[1].install["hardware"] = "T2"; }),
       "tcm: wrong hardware: the image is for 'T2', the ECU is 'T1'"},
      {"downgrade", Bundle("0.9.0"), "a downgrade (0.9.0 is older than the running 1.0.0)"},
      {"dependency cycle",
       Bundle("2.0.0",
              [](pkg::PackOptions& o) {
                o.components[0].install["after"] = {"hu"};
                o.components[3].install["after"] = {"ecm"};
              }),
       "a dependency cycle: ecm -> hu -> ecm"},
      {"other model",
       Bundle("2.0.0",
              [](pkg::PackOptions& o) {
                o.hardware = {"bus-x"};
                o.extra["vehicle"]["model"] = "bus-x";
              }),
       "the bundle is for vehicle model 'bus-x'; this vehicle is 'test-car'"},
  };
  const uint64_t before = FlashOperations();
  for (const Case& c : cases) {
    const InstallReport r = Install(c.bundle);
    EXPECT_EQ(r.result, InstallResult::kRefused) << c.name;
    ASSERT_FALSE(r.problems.empty()) << c.name;
    EXPECT_THAT(r.problems.front(), HasSubstr(c.error)) << c.name;
  }
  EXPECT_EQ(FlashOperations(), before);
  EXPECT_EQ(Versions(), "ecm=1.0.0 tcm=1.0.0 adas=1.0.0 hu=1.0.0 ");
  EXPECT_THAT(stages_, IsEmpty());
}

TEST_F(ManagerTest, AFailingEcu_SendsEveryEcuBack) {
  wrong_key_.insert("hu");  // it refuses every attempt
  const InstallReport r = Install(Bundle("2.0.0"));
  EXPECT_EQ(r.result, InstallResult::kAllOld) << r.Summary();
  EXPECT_THAT(r.campaign.first_failure, HasSubstr("hu"));
  EXPECT_EQ(Versions(), "ecm=1.0.0 tcm=1.0.0 adas=1.0.0 hu=1.0.0 ");
}

TEST_F(ManagerTest, AGatewayRestartMidCampaign_Converges) {
  const std::string bundle = Bundle("2.0.0");
  bool finished = false;
  manager_->Install(bundle, [&](InstallReport) { finished = true; });
  // Into the transfers (past the backups), then the gateway's power goes.
  loop_.RunUntil([&] { return stages_.count("adas transfer") > 0; }, std::chrono::minutes(10));
  loop_.RunFor(std::chrono::seconds(1));
  ASSERT_FALSE(finished);
  StartGateway();
  std::optional<InstallReport> recovered;
  manager_->Recover([&](InstallReport r) { recovered = std::move(r); });
  loop_.RunUntil([&] { return recovered.has_value(); }, std::chrono::hours(1));
  ASSERT_TRUE(recovered.has_value());
  EXPECT_EQ(recovered->result, InstallResult::kAllOld) << recovered->Summary();
  loop_.RunFor(std::chrono::seconds(2));
  EXPECT_EQ(Versions(), "ecm=1.0.0 tcm=1.0.0 adas=1.0.0 hu=1.0.0 ");
  // And the bundle installs afterwards.
  EXPECT_EQ(Install(bundle).result, InstallResult::kAllNew);
  EXPECT_EQ(Versions(), "ecm=2.0.0 tcm=2.0.0 adas=2.0.0 hu=2.0.0 ");
}

}  // namespace
}  // namespace aloft::vehicle

namespace aloft::vehicle {
namespace {

TEST_F(ManagerTest, OtaMode_EnteredAndLeftOnEveryBus_InEveryOutcome) {
  for (bool fail : {false, true}) {
    if (fail) wrong_key_.insert("tcm");
    const InstallReport r = Install(Bundle(fail ? "3.0.0" : "2.0.0"));
    EXPECT_EQ(r.result, fail ? InstallResult::kAllOld : InstallResult::kAllNew) << r.Summary();
    const std::vector<std::string> sent = manager_->ota_requests();
    for (const char* want :
         {"pt: 10 83", "pt: 85 82", "pt: 28 83 01", "fd: 10 83", "fd: 28 83 01", "hu: 10 03",
          "hu: 85 02", "hu: 28 03 01", "pt: 28 80 01", "pt: 85 81", "pt: 10 81", "pt: 14 FF FF FF",
          "fd: 14 FF FF FF", "hu: 28 00 01", "hu: 10 01", "hu: 14 FF FF FF"}) {
      EXPECT_NE(std::find(sent.begin(), sent.end(), want), sent.end()) << want << " fail=" << fail;
    }
    // Left: every ECU in the default session, transmitting, DTC setting on.
    loop_.RunFor(std::chrono::seconds(1));
    for (const Target& t : kTargets) {
      const uds::Server& s = car_->ecu(t.name)->server();
      EXPECT_EQ(s.session(), uds::session::kDefault) << t.name;
      EXPECT_TRUE(s.tx_enabled()) << t.name;
      EXPECT_TRUE(s.dtc_setting_on()) << t.name;
    }
  }
}

TEST_F(ManagerTest, Mode_Silent_InstallsWithoutAWord) {
  const InstallReport r = InstallInMode("silent");
  EXPECT_EQ(r.result, InstallResult::kAllNew) << r.Summary();
  EXPECT_EQ(screen_seen_, "");
  EXPECT_EQ(Versions(), "ecm=2.0.0 tcm=2.0.0 adas=2.0.0 hu=2.0.0 ");
}

TEST_F(ManagerTest, Mode_Notify_TellsTheDriver_DoesNotAsk) {
  const InstallReport r = InstallInMode("notify");
  EXPECT_EQ(r.result, InstallResult::kAllNew) << r.Summary();
  EXPECT_EQ(screen_seen_, "installing update car 2.0.0: the vehicle must stay parked");
  EXPECT_EQ(manager_->driver().Screen(), "update car 2.0.0 installed");
}

TEST_F(ManagerTest, Mode_Forced_TellsTheDriverItIsRequired_CannotBeDeferred) {
  const InstallReport r = InstallInMode("forced");
  EXPECT_EQ(r.result, InstallResult::kAllNew) << r.Summary();
  EXPECT_EQ(screen_seen_, "installing update car 2.0.0 (required): the vehicle must stay parked");
  EXPECT_THAT(manager_->driver().Defer(), IsError(Code::kUnavailable, HasSubstr("no update")));
  EXPECT_EQ(manager_->driver().Screen(), "update car 2.0.0 installed");
}

TEST_F(ManagerTest, Mode_Confirm_WaitsForTheDriver_DeferralsHaveALimit) {
  const uint64_t before = FlashOperations();
  std::optional<InstallReport> report;
  manager_->Install(WithPolicy("2.0.0", {{"mode", "confirm"}, {"max_deferrals", 2}}),
                    [&](InstallReport r) { report = std::move(r); });
  loop_.RunFor(std::chrono::seconds(10));
  DriverPrompt& d = manager_->driver();
  EXPECT_EQ(d.Screen(), "update car 2.0.0 ready: accept or defer (2 of 2 deferrals left)");
  EXPECT_EQ(manager_->Activity(), "waiting for the driver");
  ASSERT_THAT(d.Defer(), IsOk());
  EXPECT_EQ(d.Screen(), "");
  EXPECT_THAT(d.Defer(), IsError(Code::kUnavailable, HasSubstr("no update is waiting")));
  loop_.RunFor(std::chrono::minutes(61));  // asked again after the interval (an hour)
  EXPECT_EQ(d.Screen(), "update car 2.0.0 ready: accept or defer (1 of 2 deferrals left)");
  ASSERT_THAT(d.Defer(), IsOk());
  loop_.RunFor(std::chrono::minutes(61));
  EXPECT_EQ(d.Screen(), "update car 2.0.0 ready: accept (no deferrals left)");
  EXPECT_THAT(d.Defer(), IsError(Code::kOutOfRange, HasSubstr("cannot be deferred again")));
  EXPECT_EQ(FlashOperations(), before) << "nothing is touched before the driver accepts";
  EXPECT_FALSE(report.has_value());
  ASSERT_THAT(d.Accept(), IsOk());
  loop_.RunUntil([&] { return report.has_value(); }, std::chrono::hours(1));
  ASSERT_TRUE(report.has_value());
  EXPECT_EQ(report->result, InstallResult::kAllNew) << report->Summary();
  EXPECT_EQ(Versions(), "ecm=2.0.0 tcm=2.0.0 adas=2.0.0 hu=2.0.0 ");
}

TEST_F(ManagerTest, Preconditions_NotMet_TheCampaignWaits_ThenInstalls) {
  car_->signals().speed_kph = 30;
  car_->signals().gear = 127;
  const uint64_t before = FlashOperations();
  std::optional<InstallReport> report;
  manager_->Install(
      WithPolicy("2.0.0", {{"preconditions", {{"max_speed_kph", 0}, {"gears", {"P"}}}}}),
      [&](InstallReport r) { report = std::move(r); });
  loop_.RunFor(std::chrono::seconds(20));
  EXPECT_EQ(manager_->Activity(),
            "waiting for the preconditions: Vehicle.Speed is 30.00 km/h, above 0.00");
  EXPECT_EQ(FlashOperations(), before);
  car_->signals().speed_kph = 0;
  loop_.RunFor(std::chrono::seconds(1));
  EXPECT_EQ(manager_->Activity(),
            "waiting for the preconditions: Vehicle.Powertrain.Transmission.SelectedGear is D");
  car_->signals().gear = 126;
  loop_.RunUntil([&] { return report.has_value(); }, std::chrono::hours(1));
  ASSERT_TRUE(report.has_value());
  EXPECT_EQ(report->result, InstallResult::kAllNew) << report->Summary();

  // Never met within the deadline: refused, nothing touched.
  car_->signals().low_voltage = 11.0;
  loop_.RunFor(std::chrono::milliseconds(200));  // the next state frame says so
  const uint64_t now = FlashOperations();
  const InstallReport r = Install(WithPolicy(
      "2.1.0", {{"max_duration_s", 60}, {"preconditions", {{"min_low_voltage", 11.8}}}}));
  EXPECT_EQ(r.result, InstallResult::kRefused);
  EXPECT_THAT(r.problems,
              ::testing::ElementsAre("precondition not met: "
                                     "Vehicle.LowVoltageBattery.CurrentVoltage is 11.00 V, "
                                     "below 11.80"));
  EXPECT_EQ(FlashOperations(), now);
}

TEST_F(ManagerTest, SpeedMidCampaign_StopsAtASafePoint_ThenTheCampaignFinishes) {
  std::optional<InstallReport> report;
  manager_->Install(WithPolicy("2.0.0", {{"preconditions", {{"max_speed_kph", 0}}}}),
                    [&](InstallReport r) { report = std::move(r); });
  // A third of the way through ecm's transfer on the classic bus (A/B); hu's, over DoIP, is done
  // and waits to be activated; so is adas's (single bank, on the CAN FD bus), which is activated
  // at once: reset into its new, checked image. The A/B ones are reset onto their old banks.
  uint64_t ecm_sent = 0;
  manager_->on_progress = [&](const std::string& ecu, const std::string& stage, uint64_t sent,
                              uint64_t) {
    if (ecu == "ecm" && stage == "transfer") ecm_sent = sent;
  };
  loop_.RunUntil([&] { return ecm_sent > 20'000; }, std::chrono::minutes(10));
  ASSERT_GT(ecm_sent, 20'000u);
  car_->signals().speed_kph = 8;
  loop_.RunUntil([&] { return manager_->signals()->state().speed_kph > 0; },
                 std::chrono::seconds(1));
  const auto frame = loop_.Now();  // the first frame with the speed above 0
  const std::optional<std::chrono::milliseconds> safe = UntilSafePoint(frame);
  loop_.RunUntil([&] { return !manager_->pauses().empty(); }, std::chrono::minutes(1));
  ASSERT_EQ(manager_->pauses().size(), 1u);
  ASSERT_TRUE(safe.has_value());
  std::printf(
      "speed above 0: the car at a safe point (the simulator: no ECU programming, every one "
      "bootable) %lld ms after the frame; the manager paused after %lld ms\n",
      static_cast<long long>(safe->count()), static_cast<long long>(manager_->pauses()[0].count()));
  EXPECT_LE(*safe, std::chrono::milliseconds(100));
  EXPECT_LE(manager_->pauses()[0], std::chrono::milliseconds(100));
  EXPECT_THAT(manager_->Activity(), HasSubstr("paused: Vehicle.Speed is 8.00 km/h"));
  // Driving a minute: nobody programming, every ECU running something, and OTA mode left (the
  // default session, normal communication on) so the car runs as usual.
  loop_.RunFor(std::chrono::minutes(1));
  EXPECT_FALSE(AnyProgramming());
  EXPECT_THAT(Versions(), Not(HasSubstr("-")));
  for (const Target& t : kTargets) {
    const uds::Server& s = car_->ecu(t.name)->server();
    EXPECT_EQ(s.session(), uds::session::kDefault) << t.name;
    EXPECT_TRUE(s.tx_enabled() && s.rx_enabled()) << t.name;
  }
  EXPECT_FALSE(report.has_value());
  car_->signals().speed_kph = 0;
  loop_.RunUntil([&] { return report.has_value(); }, std::chrono::hours(1));
  ASSERT_TRUE(report.has_value());
  EXPECT_EQ(report->result, InstallResult::kAllNew) << report->Summary();
  EXPECT_EQ(Versions(), "ecm=2.0.0 tcm=2.0.0 adas=2.0.0 hu=2.0.0 ");
  EXPECT_THAT(report->campaign.log, Contains("resumed"));
  // OTA mode entered, left at the safe point, entered again to go on, left at the end.
  const auto sent = manager_->ota_requests();
  EXPECT_EQ(std::count(sent.begin(), sent.end(), "pt: 28 83 01"), 2);
  EXPECT_EQ(std::count(sent.begin(), sent.end(), "pt: 28 80 01"), 2);
}

// The one case a safe point takes longer: a single-bank ECU whose flash was erased has no bootable
// image until its transfer ends, so it is finished and activated; the A/B ECUs still leave the
// programming session at once.
TEST_F(ManagerTest, SpeedWhileASingleBankEcuIsErased_ItIsFinished_TheOthersStopAtOnce) {
  std::optional<InstallReport> report;
  manager_->Install(WithPolicy("2.0.0", {{"preconditions", {{"max_speed_kph", 0}}}}),
                    [&](InstallReport r) { report = std::move(r); });
  // The car starts moving a quarter of the way through tcm's transfer.
  uint64_t tcm_sent = 0;
  bool erased = false;
  manager_->on_progress = [&](const std::string& ecu, const std::string& stage, uint64_t sent,
                              uint64_t) {
    if (ecu != "tcm" || stage != "transfer" || sent < 10'000 || tcm_sent) return;
    tcm_sent = sent;
    erased = !car_->ecu("tcm")->Bootable();
    car_->signals().speed_kph = 30;
  };
  loop_.RunUntil([&] { return tcm_sent > 0; }, std::chrono::minutes(10));
  ASSERT_GT(tcm_sent, 0u);
  EXPECT_TRUE(erased) << "tcm's only image is erased";
  loop_.RunUntil([&] { return manager_->signals()->state().speed_kph > 0; },
                 std::chrono::seconds(1));
  const auto frame = loop_.Now();
  std::optional<std::chrono::milliseconds> ab_out;
  while (!ab_out && loop_.Now() - frame < std::chrono::seconds(1)) {
    loop_.RunFor(std::chrono::milliseconds(1));
    bool out = true;
    for (const char* name : {"ecm", "hu"}) {
      ecusim::Ecu& e = *car_->ecu(name);
      out = out && (!e.online() || e.server().session() != uds::session::kProgramming);
    }
    if (out) ab_out = std::chrono::duration_cast<std::chrono::milliseconds>(loop_.Now() - frame);
  }
  const std::optional<std::chrono::milliseconds> safe = UntilSafePoint(frame);
  ASSERT_TRUE(ab_out.has_value());
  ASSERT_TRUE(safe.has_value());
  loop_.RunUntil([&] { return !manager_->pauses().empty(); }, std::chrono::minutes(1));
  std::printf(
      "speed above 0 with tcm (single bank) erased, %llu bytes sent: A/B ECUs out of the "
      "programming session after %lld ms; tcm finished and started, the car at a safe point "
      "after %lld ms\n",
      static_cast<unsigned long long>(tcm_sent), static_cast<long long>(ab_out->count()),
      static_cast<long long>(safe->count()));
  EXPECT_LE(*ab_out, std::chrono::milliseconds(100));
  EXPECT_EQ(car_->ecu("tcm")->status().version, "2.0.0");
  EXPECT_THAT(Versions(), Not(HasSubstr("-")));
  loop_.RunFor(std::chrono::seconds(30));
  EXPECT_FALSE(AnyProgramming());
  EXPECT_FALSE(report.has_value());
  car_->signals().speed_kph = 0;
  loop_.RunUntil([&] { return report.has_value(); }, std::chrono::hours(1));
  ASSERT_TRUE(report.has_value());
  EXPECT_EQ(report->result, InstallResult::kAllNew) << report->Summary();
  EXPECT_EQ(Versions(), "ecm=2.0.0 tcm=2.0.0 adas=2.0.0 hu=2.0.0 ");
}

TEST_F(ManagerTest, PreconditionLostPastTheDeadline_EveryEcuGoesBack) {
  std::optional<InstallReport> report;
  manager_->Install(
      WithPolicy("2.0.0", {{"max_duration_s", 120}, {"preconditions", {{"max_speed_kph", 0}}}}),
      [&](InstallReport r) { report = std::move(r); });
  loop_.RunUntil([&] { return stages_.count("hu transfer") > 0; }, std::chrono::minutes(10));
  loop_.RunFor(std::chrono::milliseconds(300));
  car_->signals().speed_kph = 50;
  // Past the deadline, still driving: nothing is reset or flashed (going back would do both).
  loop_.RunFor(std::chrono::seconds(5));
  const uint64_t parked = FlashOperations();
  loop_.RunFor(std::chrono::minutes(3));
  EXPECT_THAT(manager_->Activity(), HasSubstr("the deadline passed: going back once the "
                                              "preconditions hold (Vehicle.Speed is 50.00"));
  EXPECT_EQ(FlashOperations(), parked);
  EXPECT_FALSE(AnyProgramming());
  EXPECT_THAT(Versions(), Not(HasSubstr("-")));
  EXPECT_FALSE(report.has_value());
  car_->signals().speed_kph = 0;  // parked: now the ECUs go back
  loop_.RunUntil([&] { return report.has_value(); }, std::chrono::hours(1));
  ASSERT_TRUE(report.has_value());
  EXPECT_EQ(report->result, InstallResult::kAllOld) << report->Summary();
  EXPECT_THAT(report->campaign.first_failure, HasSubstr("deadline (120 s)"));
  loop_.RunFor(std::chrono::seconds(2));
  EXPECT_EQ(Versions(), "ecm=1.0.0 tcm=1.0.0 adas=1.0.0 hu=1.0.0 ");
}

}  // namespace
}  // namespace aloft::vehicle
