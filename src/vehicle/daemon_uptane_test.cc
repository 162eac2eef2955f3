// Uptane in the vehicle daemon (aloft-vehicle --config with [uptane]): the gateway verifies the
// whole car's bundle through the Director and the Image repository before a byte of it is
// downloaded, then checks that the bundle updates exactly the ECUs the Director names, before any
// ECU is touched. The server is played by a FaultServer serving real TUF metadata made with the
// project's writers; the car is the simulated one of the manager's tests, its event loop on a
// thread of its own as on a gateway. Each attack ends with the offer refused, the reason on its
// action, nothing downloaded or flashed where the test says so, and every ECU on its old version.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <deque>
#include <future>
#include <mutex>
#include <sstream>
#include <thread>

#include "core/encoding.h"
#include "core/hash.h"
#include "crypto/key_wrap.h"
#include "support/fault_server.h"
#include "support/tuf_fixture.h"
#include "tuf/repository.h"
#include "vehicle/daemon.h"
#include "vehicle/manager_fixture.h"

namespace aloft::vehicle {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using testing::Repo;

// The car's simulated time on a thread of its own, at most about ten times the wall clock's pace
// (the daemon blocks its own thread while the manager works, as on a gateway). Run(fn) runs `fn`
// there and waits for it.
class LoopThread {
 public:
  explicit LoopThread(SimLoop& loop) : loop_(loop), thread_([this] { Main(); }) {}
  ~LoopThread() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    thread_.join();
  }
  void Run(const std::function<void()>& fn) {
    std::promise<void> done;
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.push_back([&] {
        fn();
        done.set_value();
      });
    }
    done.get_future().wait();
  }

 private:
  void Main() {
    for (;;) {
      std::deque<std::function<void()>> q;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (stop_) return;
        q.swap(queue_);
      }
      for (auto& f : q) f();
      loop_.RunFor(std::chrono::milliseconds(10));
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }

  SimLoop& loop_;
  std::mutex mu_;
  std::deque<std::function<void()>> queue_;
  bool stop_ = false;
  std::thread thread_;
};

class VehicleUptaneTest : public ManagerTest {
 protected:
  void SetUp() override {
    ManagerTest::SetUp();
    bundle_ = ReadFile(Bundle("2.0.0"), 64 << 20).value();
    Offer(bundle_);
    const std::string roots = dir.path() + "/roots";
    std::filesystem::create_directories(roots);
    ASSERT_THAT(WriteFileAtomic(roots + "/director.json", tuf::FileBytes(director_.Root(1, Now()))),
                IsOk());
    ASSERT_THAT(WriteFileAtomic(roots + "/image.json", tuf::FileBytes(image_.Root(1, Now()))),
                IsOk());
    config_.server = server_.base();
    config_.device = "dev";
    config_.token = "t";
    config_.state_dir = dir.path() + "/gateway";
    config_.trust = Trust({0}, 1);
    config_.uptane = agent::UptaneSettings{roots + "/director.json", roots + "/image.json",
                                           config_.state_dir + "/uptane.key"};
    uplink_ = agent::MakeHttpUplink(config_.server, config_.device, config_.token, {});
  }

  static int64_t Now() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  void Offer(const std::string& bytes, const json& encryption = nullptr) {
    server_.SetArtifact(Bytes(bytes.begin(), bytes.end()));
    json a = {{"id", 1},
              {"release", "car"},
              {"version", "2.0.0"},
              {"mode", "forced"},
              {"download",
               {{"url", server_.artifact_url()},
                {"size", bytes.size()},
                {"sha256", Sha256Hex(AsBytes(bytes))}}}};
    if (!encryption.is_null()) a["encryption"] = encryption;
    server_.SetAction(a);
  }
  // Each ECU's identifier at the Director: its serial where it is its own (ecm and tcm have
  // theirs in the test car), else its name (adas and hu both report the simulator's default).
  static std::string Serial(const std::string& ecu) {
    if (ecu == "ecm") return "SN-ECM-0001";
    if (ecu == "tcm") return "SN-TCM-0001";
    return ecu;
  }
  // The ECUs as the Director names them for the bundle: each one's identifier and hardware.
  static json Ecus() {
    json ecus = json::object();
    for (const Target& t : kTargets) ecus[Serial(t.name)] = {{"hardware_id", t.hardware}};
    return ecus;
  }
  json Entry(const std::string& bytes, json ecus) const {
    return tuf::TargetEntry(static_cast<int64_t>(bytes.size()), Sha256Hex(AsBytes(bytes)),
                            {{"action", 1}, {"ecus", std::move(ecus)}});
  }
  void ServeImage(const json& targets) {
    Repo::Files f = image_.Publish(1, targets, Now());
    server_.SetFile("/tuf/image/1.root.json", tuf::FileBytes(image_.Root(1, Now())));
    server_.SetFile("/tuf/image/timestamp.json", f.timestamp);
    server_.SetFile("/tuf/image/1.snapshot.json", f.snapshot);
    server_.SetFile("/tuf/image/1.targets.json", f.targets);
  }
  void ServeDirector(const json& targets) {
    Repo::Files f = director_.Publish(1, targets, Now());
    server_.SetCheckInExtra({{"director",
                              {{"roots", json::array()},
                               {"timestamp", f.timestamp},
                               {"snapshot", f.snapshot},
                               {"targets", f.targets}}}});
  }
  void ServeHonest() {
    ServeImage({{"car/2.0.0.aloft", Entry(bundle_, json::object())}});
    ServeDirector({{"car/2.0.0.aloft", Entry(bundle_, Ecus())}});
  }

  // One daemon cycle, the car's loop on its own thread meanwhile.
  Result<std::chrono::seconds> RunOnce() {
    LoopThread thread(loop_);
    on_loop_ = &thread;
    if (!agent_) {
      agent_.emplace(
          config_, *uplink_, *manager_,
          [this](const std::function<void()>& fn) { on_loop_->Run(fn); }, log_);
    }
    auto r = agent_->RunOnce();
    on_loop_ = nullptr;
    return r;
  }
  std::string Failure() const {
    for (const auto& f : server_.feedback()) {
      if (f.value("status", "") == "failure") return f.dump();
    }
    return "";
  }

  testing::FaultServer server_;
  Repo image_, director_;
  std::string bundle_;
  DaemonConfig config_;
  std::unique_ptr<agent::Uplink> uplink_;
  std::ostringstream log_;
  LoopThread* on_loop_ = nullptr;
  std::optional<VehicleAgent> agent_;
};

constexpr char kOld[] = "ecm=1.0.0 tcm=1.0.0 adas=1.0.0 hu=1.0.0 ";

// The control: both repositories agree and the Director names every ECU of the bundle with its
// hardware: the car ends all-new. The check-in carried the vehicle's signed manifest: every ECU
// by serial, hardware and module, and what it runs.
TEST_F(VehicleUptaneTest, Honest_TheVerifiedBundleIsInstalledAllNew) {
  ServeHonest();
  ASSERT_THAT(RunOnce(), IsOk());
  EXPECT_EQ(Failure(), "") << log_.str();
  ASSERT_FALSE(server_.feedback().empty());
  EXPECT_EQ(server_.feedback().back().value("status", ""), "success");
  EXPECT_EQ(Versions(), "ecm=2.0.0 tcm=2.0.0 adas=2.0.0 hu=2.0.0 ");
  auto bodies = server_.check_in_bodies();
  ASSERT_FALSE(bodies.empty());
  const json m = bodies[0]["uptane"]["manifest"]["signed"];
  EXPECT_EQ(m["counter"], 1);
  EXPECT_EQ(m["device"], "dev");
  ASSERT_TRUE(m.contains("ecus")) << m.dump();
  EXPECT_EQ(m["ecus"]["SN-TCM-0001"]["hardware_id"], "T1");
  EXPECT_EQ(m["ecus"]["SN-TCM-0001"]["module"], "tcm");
  EXPECT_EQ(m["ecus"]["SN-TCM-0001"]["installed"]["tcm"], "1.0.0");
  EXPECT_EQ(m["ecus"]["hu"]["module"], "hu") << "a serial two ECUs report names neither";
  EXPECT_FALSE(m["ecus"].contains("SN00000001")) << m.dump();
}

// Uptane 5.4.4.3 (a compromised Director): the Director lists a bundle the Image repository,
// signed offline, does not: refused before its download.
TEST_F(VehicleUptaneTest, Uptane5443_ABundleTheImageRepositoryDoesNotListIsRefused) {
  ServeImage({{"car/1.0.0.aloft", tuf::TargetEntry(1000, std::string(64, 'a'), json::object())}});
  ServeDirector({{"car/2.0.0.aloft", Entry(bundle_, Ecus())}});
  ASSERT_THAT(RunOnce(), IsOk());
  EXPECT_THAT(Failure(), HasSubstr("uptane: action 1: the Image repository does not list "
                                   "'car/2.0.0.aloft'"));
  EXPECT_EQ(server_.artifact_requests(), 0) << "refused before a byte was downloaded";
  EXPECT_EQ(Versions(), kOld);
}

// Uptane's partial bundle installation: the Director names an ECU the (listed, signed) bundle
// does not update, so installing it would leave that ECU behind: refused after the download,
// before any ECU is touched.
TEST_F(VehicleUptaneTest, Uptane_PartialBundleInstallation_AnEcuTheDirectorNamesIsMissing) {
  json ecus = Ecus();
  ecus["SN-BCM-0001"] = {{"hardware_id", "B1"}};
  ServeImage({{"car/2.0.0.aloft", Entry(bundle_, json::object())}});
  ServeDirector({{"car/2.0.0.aloft", Entry(bundle_, ecus)}});
  ASSERT_THAT(RunOnce(), IsOk());
  EXPECT_THAT(Failure(), HasSubstr("the Director names ECU 'SN-BCM-0001', which the bundle does "
                                   "not update (partial bundle installation attack?)"));
  EXPECT_EQ(Versions(), kOld);
  EXPECT_FALSE(std::filesystem::exists(config_.state_dir + "/download.part"));
}

// Uptane 5.4.4.2 (wrong software installation) at the gateway: the Director names the ECUs for
// other hardware than the bundle's images are for.
TEST_F(VehicleUptaneTest, Uptane5442_WrongSoftwareInstallation_AHardwareMismatchIsRefused) {
  json ecus = Ecus();
  ecus[Serial("adas")]["hardware_id"] = "A9";
  ServeImage({{"car/2.0.0.aloft", Entry(bundle_, json::object())}});
  ServeDirector({{"car/2.0.0.aloft", Entry(bundle_, ecus)}});
  ASSERT_THAT(RunOnce(), IsOk());
  EXPECT_THAT(Failure(), HasSubstr("is hardware 'A1' in the bundle, 'A9' for the Director"));
  EXPECT_EQ(Versions(), kOld);
}

// Uptane's drop-request: the server's answers come without the Director's metadata; the vehicle
// installs nothing on the server's word alone.
TEST_F(VehicleUptaneTest, Uptane_DropRequest_NoDirectorMetadataNothingInstalled) {
  ServeImage({{"car/2.0.0.aloft", Entry(bundle_, json::object())}});
  ASSERT_THAT(RunOnce(), IsOk());
  EXPECT_THAT(Failure(), HasSubstr("the server sent no Director metadata"));
  EXPECT_EQ(server_.artifact_requests(), 0);
  EXPECT_EQ(Versions(), kOld);
}

// An encrypted bundle (docs/encryption.md) under Uptane: the gateway enrols its own key, opens
// the content key the server wrapped for it, and decrypts the bundle before it flashes; a key
// wrapped for another gateway is refused before the bundle's download, nothing flashed.
class VehicleEncryptionTest : public VehicleUptaneTest {
 protected:
  void SetUp() override {
    VehicleUptaneTest::SetUp();
    std::filesystem::create_directories(config_.state_dir);
    auto k = crypto::RecipientKey::Generate();
    ASSERT_THAT(k, IsOk());
    ASSERT_THAT(k->Save(config_.state_dir + "/encryption"), IsOk());
    gateway_key_.emplace(std::move(k).value());
    encrypted_ =
        ReadFile(Bundle("2.0.0", [this](pkg::PackOptions& o) { o.content_key = key_; }), 64 << 20)
            .value();
    content_key_for_ = ActionContentKey(config_.state_dir);
    StartGateway();
    ServeImage({{"car/2.0.0.aloft", Entry(encrypted_, json::object())}});
    ServeDirector({{"car/2.0.0.aloft", Entry(encrypted_, Ecus())}});
  }
  // The Director's target for the encrypted bundle, carrying `encryption` in its custom.
  void ServeDirectorWith(const json& encryption) {
    json entry = Entry(encrypted_, Ecus());
    entry["custom"]["encryption"] = encryption;
    ServeDirector({{"car/2.0.0.aloft", entry}});
  }
  json WrappedFor(const crypto::RecipientKey& k) {
    return {{"key_id", crypto::ContentKeyId(key_)},
            {"wrapped_key", Base64Encode(crypto::WrapContentKey(key_, k.PublicRaw()).value())}};
  }
  const crypto::ContentKey key_ = crypto::NewContentKey();
  std::optional<crypto::RecipientKey> gateway_key_;
  std::string encrypted_;
};

TEST_F(VehicleEncryptionTest, TheKeyWrappedForThisGatewayOpensTheBundle) {
  Offer(encrypted_, WrappedFor(*gateway_key_));
  ASSERT_THAT(RunOnce(), IsOk());
  EXPECT_EQ(Failure(), "") << log_.str();
  EXPECT_EQ(Versions(), "ecm=2.0.0 tcm=2.0.0 adas=2.0.0 hu=2.0.0 ");
  const auto bodies = server_.check_in_bodies();
  ASSERT_FALSE(bodies.empty());
  EXPECT_EQ(bodies[0].value("encryption_key", ""), Base64Encode(gateway_key_->PublicRaw()));
}

TEST_F(VehicleEncryptionTest, AKeyWrappedForAnotherGatewayIsRefusedBeforeTheDownload) {
  auto other = crypto::RecipientKey::Generate();
  ASSERT_THAT(other, IsOk());
  Offer(encrypted_, WrappedFor(*other));
  ASSERT_THAT(RunOnce(), IsOk());
  EXPECT_THAT(Failure(), HasSubstr("not wrapped for this device's key"));
  EXPECT_THAT(log_.str(), HasSubstr("refused before its download"));
  EXPECT_EQ(Versions(), kOld);
}

// The wrapped key the Director signed into the target is the one used: the action's (unsigned)
// one for another gateway does not matter, and one for another gateway in the Director's target
// is refused although the action's would open.
TEST_F(VehicleEncryptionTest, TheDirectorsSignedWrapTakesPrecedence) {
  auto other = crypto::RecipientKey::Generate();
  ASSERT_THAT(other, IsOk());
  ServeDirectorWith(WrappedFor(*gateway_key_));
  Offer(encrypted_, WrappedFor(*other));
  ASSERT_THAT(RunOnce(), IsOk());
  EXPECT_EQ(Failure(), "") << log_.str();
  EXPECT_EQ(Versions(), "ecm=2.0.0 tcm=2.0.0 adas=2.0.0 hu=2.0.0 ");
}

TEST_F(VehicleEncryptionTest, ADirectorWrapForAnotherGatewayIsRefused) {
  auto other = crypto::RecipientKey::Generate();
  ASSERT_THAT(other, IsOk());
  ServeDirectorWith(WrappedFor(*other));
  Offer(encrypted_, WrappedFor(*gateway_key_));
  ASSERT_THAT(RunOnce(), IsOk());
  EXPECT_THAT(Failure(), HasSubstr("not wrapped for this device's key"));
  EXPECT_THAT(log_.str(), HasSubstr("refused before its download"));
  EXPECT_EQ(Versions(), kOld);
}

}  // namespace
}  // namespace aloft::vehicle
