// The file layout (Linux devices): slots are files, the bootloader is driven by shell commands.
// The bootloader here is a U-Boot-like script model: `activate_command` writes the slot to try
// and a boot count, `commit_command` writes the primary slot; at each reset, a trial with boots
// left is started (and its count lowered), otherwise the trial is dropped and the primary slot
// starts. The tests trust only what that model starts.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "agent/agent.h"
#include "agent/file_storage.h"
#include "agent/test_device.h"
#include "core/file.h"
#include "core/hash.h"
#include "support/fault_server.h"
#include "support/matchers.h"
#include "support/package_fixture.h"
#include "support/temp_dir.h"

namespace aloft::agent {
namespace {

using ::testing::HasSubstr;

class FileLayoutTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::filesystem::create_directories(dir_ / "state");
    slots_.module = "rootfs";
    slots_.paths = {dir_ / "slot-a.img", dir_ / "slot-b.img"};
    slots_.slot_size = 64 * 1024;
    const std::string env = dir_.path();
    slots_.booted_command = "cat " + env + "/booted";
    slots_.activate_command =
        "echo $ALOFT_SLOT > " + env + "/try && echo $ALOFT_TRIES > " + env + "/tries";
    slots_.commit_command =
        "echo $ALOFT_SLOT > " + env + "/primary && rm -f " + env + "/try " + env + "/tries";
    slots_.record = dir_ / "state/rootfs.slots.json";
    ASSERT_THAT(WriteFileAtomic(slots_.paths[0], AsString(old_image_)), IsOk());
    ASSERT_THAT(WriteFileAtomic(dir_ / "factory.img", AsString(old_image_)), IsOk());
    Put("primary", "a");
    Reset();
    ASSERT_THAT(ProvisionFileSlots(slots_, dir_ / "factory.img", "1.0.0", 0), IsOk());
  }

  static std::string AsString(const Bytes& b) { return std::string(b.begin(), b.end()); }
  void Put(const std::string& name, const std::string& value) {
    ASSERT_THAT(WriteFileAtomic(dir_ / name, value + "\n"), IsOk());
  }
  std::string Get(const std::string& name) {
    auto t = ReadFile(dir_ / name, 64);
    if (!t.ok()) return "";
    std::string v = *t;
    while (!v.empty() && v.back() == '\n') v.pop_back();
    return v;
  }

  // The bootloader at a reset: what it starts, written to `booted`.
  void Reset() {
    ++boots_;
    std::string slot = Get("primary");
    if (!Get("try").empty() && std::stoi(Get("tries")) > 0) {
      slot = Get("try");
      Put("tries", std::to_string(std::stoi(Get("tries")) - 1));
    } else {
      std::filesystem::remove(dir_ / "try");
      std::filesystem::remove(dir_ / "tries");
    }
    Put("booted", slot);
  }
  // The image the booted slot holds, as the device sees it.
  bool Boots(const Bytes& image) {
    const std::string path = slots_.paths[Get("booted") == "b" ? 1 : 0];
    auto content = ReadFile(path, 1 << 20);
    return content.ok() && content->size() >= image.size() &&
           content->substr(0, image.size()) == AsString(image);
  }

  // One agent run after a boot; kReboot results in a Reset.
  Result<Agent::Step> RunAgent(const std::string& health = "") {
    ALOFT_ASSIGN_OR_RETURN(auto storage, MakeFileStorage(slots_));
    AgentConfig cfg = testing::DeviceConfig(server_, dir_ / "state", pkgs_.Trust({0}, 1));
    cfg.boot_id = "boot-" + std::to_string(boots_);
    cfg.health_check = health;
    cfg.tries = 2;
    ALOFT_ASSIGN_OR_RETURN(auto staging, MakeFileStaging(dir_ / "state/download.part"));
    Agent agent(cfg, {{"rootfs", storage.get()}}, staging.get());
    ALOFT_ASSIGN_OR_RETURN(Agent::Step step, agent.Run());
    auto text = agent.StatusText();
    status_ = text.ok() ? *text : text.error().ToString();
    return step;
  }
  void Offer(const Bytes& image, const std::string& module = "rootfs") {
    Bytes pkg = pkgs_.Pack({{module, image}}, pkg::Compression::kZstd);
    testing::OfferPackage(server_, pkg, testing::ManifestOf(pkg));
  }
  std::string FinalStatus() {
    for (const auto& f : server_.feedback()) {
      std::string s = f.value("status", "");
      if (s == "success" || s == "failure")
        return s + " " + f.value("details", nlohmann::json()).dump();
    }
    return "";
  }

  testing::TempDir dir_;
  testing::PackageFixture pkgs_;
  testing::FaultServer server_;
  FileSlots slots_;
  Bytes old_image_ = testing::RandomBytes(40000, 1), new_image_ = testing::RandomBytes(50000, 2);
  int boots_ = 0;
  std::string status_;
};

TEST_F(FileLayoutTest, Update_TriesTheOtherSlot_ThenCommitsIt) {
  Offer(new_image_);
  EXPECT_THAT(RunAgent(), IsOkAndHolds(Agent::Step::kReboot));
  EXPECT_EQ(Get("try"), "b");
  EXPECT_EQ(Get("primary"), "a") << "not committed before the new image ran";
  EXPECT_TRUE(Boots(old_image_)) << "the running slot is never written";
  Reset();
  EXPECT_TRUE(Boots(new_image_));
  EXPECT_THAT(RunAgent(), IsOkAndHolds(Agent::Step::kIdle));
  EXPECT_THAT(FinalStatus(), HasSubstr("success"));
  EXPECT_EQ(Get("primary"), "b");
  EXPECT_EQ(Get("try"), "");
  EXPECT_THAT(status_, HasSubstr("active b"));
  Reset();
  EXPECT_TRUE(Boots(new_image_)) << "committed: later resets keep it";
}

TEST_F(FileLayoutTest, FailedHealthCheck_GoesBackToTheOldSlot) {
  Offer(new_image_);
  EXPECT_THAT(RunAgent(), IsOkAndHolds(Agent::Step::kReboot));
  Reset();
  EXPECT_THAT(RunAgent("echo 'service x down'; exit 1"), IsOkAndHolds(Agent::Step::kReboot));
  EXPECT_EQ(Get("primary"), "a");
  EXPECT_EQ(Get("try"), "") << "the trial is cancelled";
  Reset();
  EXPECT_TRUE(Boots(old_image_));
  EXPECT_THAT(RunAgent(), IsOkAndHolds(Agent::Step::kIdle));
  EXPECT_THAT(FinalStatus(), HasSubstr("failure"));
  EXPECT_THAT(FinalStatus(), HasSubstr("service x down"));
  EXPECT_THAT(FinalStatus(), HasSubstr("rolled back: running rootfs 1.0.0"));
}

TEST_F(FileLayoutTest, NewImageThatNeverComesUp_TheBootloaderFallsBack) {
  Offer(new_image_);
  EXPECT_THAT(RunAgent(), IsOkAndHolds(Agent::Step::kReboot));
  Reset();  // the new image hangs before the agent starts: tries 2 -> 1
  Reset();  // again: 1 -> 0
  Reset();  // no tries left: the primary slot
  EXPECT_TRUE(Boots(old_image_));
  EXPECT_THAT(RunAgent(), IsOkAndHolds(Agent::Step::kIdle));
  EXPECT_THAT(FinalStatus(), HasSubstr("failure"));
  EXPECT_THAT(FinalStatus(), HasSubstr("the bootloader did not start rootfs 1.2.0; it runs 1.0.0"));
}

TEST_F(FileLayoutTest, ACommitInterruptedByACrash_IsRedoneOnTheNextRun) {
  Offer(new_image_);
  EXPECT_THAT(RunAgent(), IsOkAndHolds(Agent::Step::kReboot));
  Reset();
  const std::string commit = slots_.commit_command;
  slots_.commit_command = "exit 7";  // e.g. the environment's flash was busy
  EXPECT_THAT(RunAgent(), IsError(Code::kUnavailable, HasSubstr("commit_command")));
  slots_.commit_command = commit;
  EXPECT_THAT(RunAgent(), IsOkAndHolds(Agent::Step::kIdle));
  EXPECT_THAT(FinalStatus(), HasSubstr("success"));
  EXPECT_EQ(Get("primary"), "b");
}

TEST_F(FileLayoutTest, ImageLargerThanTheSlot_IsRefusedBeforeDownload) {
  Offer(testing::RandomBytes(70000, 3));
  EXPECT_THAT(RunAgent(), IsOkAndHolds(Agent::Step::kIdle));
  EXPECT_THAT(FinalStatus(), HasSubstr("no space"));
  EXPECT_EQ(server_.artifact_requests(), 0);
  EXPECT_FALSE(std::filesystem::exists(slots_.paths[1]));
}

TEST_F(FileLayoutTest, BootloaderCommandErrors_NameTheCommand) {
  FileSlots s = slots_;
  s.booted_command = "echo c";
  EXPECT_THAT(MakeFileStorage(s),
              IsError(Code::kUnavailable, HasSubstr("printed 'c'; expected 0, 1, a, b")));
  s.booted_command = "echo 'no env' >&1; exit 1";
  EXPECT_THAT(MakeFileStorage(s), IsError(Code::kUnavailable, HasSubstr("booted_command")));
  s = slots_;
  s.slot_size = 0;
  EXPECT_THAT(MakeFileStorage(s),
              IsError(Code::kInvalidArgument, HasSubstr("slot_size is required")));
  // Provision never writes a slot: the booted one must already hold the image.
  ASSERT_THAT(WriteFileAtomic(dir_ / "other.img", "something else"), IsOk());
  EXPECT_THAT(ProvisionFileSlots(slots_, dir_ / "other.img", "1.0.0", 0),
              IsError(Code::kInvalidArgument, HasSubstr("does not start with")));
}

}  // namespace
}  // namespace aloft::agent
