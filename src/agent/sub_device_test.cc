// Gateway mode's configuration and a sub-device's slots: the "bootloader" the gateway makes of the
// sub-device's install command (config.h SubDeviceSlots), run as real shell commands. The install
// command here copies the image to a file standing for the sub-device's flash and logs each run.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "agent/config.h"
#include "agent/file_storage.h"
#include "core/file.h"
#include "core/hash.h"
#include "crypto/keys.h"
#include "support/matchers.h"
#include "support/package_fixture.h"
#include "support/temp_dir.h"

namespace aloft::agent {
namespace {

using ::testing::HasSubstr;

std::string AsString(const Bytes& b) { return std::string(b.begin(), b.end()); }

class SubDeviceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    gateway_.agent.state_dir = dir_ / "state";
    sub_.name = "s1";
    sub_.device_type = "sensor-a";
    sub_.max_image_size = 64 * 1024;
    sub_.command_timeout = std::chrono::seconds(10);
    // The sub-device's flash is a file; the command fails while `broken` exists.
    sub_.install_command = "test ! -e " + dir_ / "broken" + " && cp \"$ALOFT_IMAGE\" " +
                           dir_ / "flash" + " && echo \"$ALOFT_DEVICE $ALOFT_VERSION\" >>" +
                           dir_ / "installs.log";
    ASSERT_THAT(WriteFileAtomic(dir_ / "v1.img", AsString(v1_)), IsOk());
    ASSERT_THAT(ProvisionSubDevice(gateway_, sub_, dir_ / "v1.img", "1.0.0", 0), IsOk());
  }

  // The sub-device's storage as the gateway opens it at each (re)start; null on error.
  std::unique_ptr<Storage> PowerOn() {
    auto s = MakeFileStorage(SubDeviceSlots(gateway_, sub_));
    EXPECT_THAT(s, IsOk());
    return s.ok() ? std::move(s).value() : nullptr;
  }
  StorageStatus Status(Storage& s) {
    auto st = s.GetStatus();
    EXPECT_THAT(st, IsOk());
    return st.ok() ? *st : StorageStatus{};
  }
  // Installs v2 into the other slot, as the agent does before activation.
  void Install(Storage& s, const boot::ImageSlot& target) {
    ASSERT_THAT(s.BeginInstall(target), IsOk());
    ASSERT_THAT(s.Write(v2_), IsOk());
    ASSERT_THAT(s.EndInstall(target), IsOk());
  }
  std::string Read(const std::string& name) {
    auto t = ReadFile(dir_ / name);
    return t.ok() ? *t : "";
  }
  std::string Log() { return Read("installs.log"); }
  std::string Flash() { return Read("flash"); }

  testing::TempDir dir_;
  AgentFile gateway_;
  SubDeviceConfig sub_;
  Bytes v1_ = testing::RandomBytes(10000, 1), v2_ = testing::RandomBytes(12000, 2);
  boot::ImageSlot v2_slot_ = SlotFrom("2.0.0", 12000, Sha256Hex(v2_));
};

TEST_F(SubDeviceTest, ActivateInstalls_CommitKeeps) {
  auto s = PowerOn();
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(Status(*s).running.version, "1.0.0");
  Install(*s, v2_slot_);
  EXPECT_EQ(Log(), "");  // nothing reaches the sub-device before activation
  ASSERT_THAT(s->Activate(v2_slot_, 1), IsOk());
  EXPECT_EQ(Log(), "s1 2.0.0\n");
  EXPECT_EQ(Flash(), AsString(v2_));
  auto after = PowerOn();  // the gateway's "reboot" of the sub-device
  ASSERT_NE(after, nullptr);
  EXPECT_THAT(after->BootedNew(v2_slot_), IsOkAndHolds(true));
  ASSERT_THAT(after->Commit(v2_slot_, 0), IsOk());
  EXPECT_EQ(Status(*after).confirmed.version, "2.0.0");
  EXPECT_EQ(Log(), "s1 2.0.0\n");  // committing what runs installs nothing again
}

TEST_F(SubDeviceTest, RollbackAfterAnInstall_InstallsTheOldImageAgain) {
  auto s = PowerOn();
  ASSERT_NE(s, nullptr);
  Install(*s, v2_slot_);
  ASSERT_THAT(s->Activate(v2_slot_, 1), IsOk());
  auto after = PowerOn();
  ASSERT_NE(after, nullptr);
  // A failed health check: the agent rolls back.
  EXPECT_THAT(after->Rollback(), IsOkAndHolds(true));  // the sub-device runs something else now
  EXPECT_EQ(Log(), "s1 2.0.0\ns1 1.0.0\n");
  EXPECT_EQ(Flash(), AsString(v1_));
  auto back = PowerOn();
  ASSERT_NE(back, nullptr);
  EXPECT_EQ(Status(*back).running.version, "1.0.0");
  EXPECT_FALSE(Status(*back).trial);
}

TEST_F(SubDeviceTest, FailedInstall_IsAnErrorAndRollbackReinstallsTheOldImage) {
  auto s = PowerOn();
  ASSERT_NE(s, nullptr);
  Install(*s, v2_slot_);
  ASSERT_THAT(WriteFileAtomic(dir_ / "flash", "half an image"), IsOk());
  ASSERT_THAT(WriteFileAtomic(dir_ / "broken", ""), IsOk());
  EXPECT_THAT(s->Activate(v2_slot_, 1), IsError(Code::kUnavailable, HasSubstr("activate_command")));
  std::filesystem::remove(dir_ / "broken");
  auto after = PowerOn();
  ASSERT_NE(after, nullptr);
  EXPECT_THAT(after->BootedNew(v2_slot_), IsOkAndHolds(false));
  // The install may have been cut off half-way: rolling back puts the old image on again.
  EXPECT_THAT(after->Rollback(), IsOkAndHolds(false));
  EXPECT_EQ(Flash(), AsString(v1_));
  EXPECT_EQ(Log(), "s1 1.0.0\n");
}

class AgentConfigTest : public ::testing::Test {
 protected:
  Result<AgentFile> Load(const std::string& extra) {
    const std::string text =
        "server = \"http://127.0.0.1:1\"\ndevice = \"gw\"\ntoken = \"t\"\n"
        "device_type = \"board-a\"\nstate_dir = \"" +
        dir_ / "state" + "\"\n" + extra + "\n[trust]\nkeys = [\"" + key_ +
        "\"]\n[[module]]\nname = \"main\"\n"
        "flash = \"" +
        dir_ / "f" + "\"\n";
    EXPECT_THAT(WriteFileAtomic(dir_ / "agent.toml", text), IsOk());
    return LoadAgentConfig(dir_ / "agent.toml");
  }
  void SetUp() override {
    testing::PackageFixture f;
    ASSERT_THAT(crypto::SaveKeyPair(f.keys[0], dir_ / "release"), IsOk());
    key_ = dir_ / "release.pub";
  }
  testing::TempDir dir_;
  std::string key_;
};

TEST_F(AgentConfigTest, PushKeysAndSubDevices_AreRead) {
  auto loaded = Load(
      "mqtt_url = \"mqtt://127.0.0.1:1883\"\npush_poll_interval_s = 600\n"
      "mqtt_reply_timeout_ms = 2500\n[[sub_device]]\nname = \"s1\"\ndevice_type = \"x\"\n"
      "install_command = \"true\"\n[[sub_device]]\nname = \"s2\"\ndevice_type = \"y\"\n"
      "install_command = \"true\"\nmodule = \"radio\"\n");
  ASSERT_THAT(loaded, IsOk());
  const AgentFile& f = *loaded;
  EXPECT_EQ(f.mqtt_url, "mqtt://127.0.0.1:1883");
  EXPECT_EQ(f.push_poll_interval, std::chrono::seconds(600));
  EXPECT_EQ(f.mqtt_reply_timeout, std::chrono::milliseconds(2500));
  ASSERT_EQ(f.sub_devices.size(), 2u);
  EXPECT_EQ(f.sub_devices[1].module, "radio");
  AgentConfig s2 = SubDeviceAgent(f, f.sub_devices[1]);
  EXPECT_EQ(s2.device, "s2");
  EXPECT_EQ(s2.device_type, "y");
  EXPECT_EQ(s2.token, "t");  // the gateway's
  EXPECT_EQ(s2.state_dir, dir_ / "state/sub/s2");
}

TEST_F(AgentConfigTest, BadPushKeysAndSubDevices_AreRefusedNamingTheKey) {
  const std::string sub = "[[sub_device]]\ndevice_type = \"x\"\ninstall_command = \"true\"\n";
  struct Case {
    std::string toml, message;
  } cases[] = {
      {"mqtt_url = \"http://127.0.0.1:1883\"", "mqtt_url"},
      {"mqtt_url = 5", "mqtt_url"},
      {sub, "name"},
      {sub + "name = \"s 1\"", "name"},
      {"[[sub_device]]\nname = \"s1\"\ndevice_type = \"x\"", "install_command"},
      {sub + "name = \"s1\"\n" + sub + "name = \"s1\"", "given twice"},
      {sub + "name = \"gw\"", "the gateway itself"},
      {sub + "name = \"s1\"\nflash = \"x\"", "flash"},
      {"sub_device = 3", "sub_device"},
  };
  for (const Case& c : cases) {
    EXPECT_THAT(Load(c.toml), IsError(Code::kInvalidArgument, HasSubstr(c.message))) << c.toml;
  }
}

// [uptane] (docs/trust.md): both roots required, key_file defaulting to the state directory;
// unknown keys refused by name.
// A device certificate and its key (docs/identity.md): both, or neither.
TEST_F(AgentConfigTest, CertificateFiles_TogetherOrNotAtAll) {
  auto loaded = Load("cert_file = \"/etc/aloft/gw.crt\"\nkey_file = \"/etc/aloft/gw.key\"");
  ASSERT_THAT(loaded, IsOk());
  EXPECT_EQ(loaded->agent.tls().cert_file, "/etc/aloft/gw.crt");
  EXPECT_EQ(loaded->agent.tls().key_file, "/etc/aloft/gw.key");
  EXPECT_THAT(Load("cert_file = \"/etc/aloft/gw.crt\""),
              IsError(Code::kInvalidArgument, HasSubstr("'cert_file' goes with 'key_file'")));
}

TEST_F(AgentConfigTest, UptaneSettings_AreReadAndBadOnesRefused) {
  auto none = Load("");
  ASSERT_THAT(none, IsOk());
  EXPECT_FALSE(none->agent.uptane);
  auto loaded = Load("[uptane]\ndirector_root = \"/d.json\"\nimage_root = \"/i.json\"");
  ASSERT_THAT(loaded, IsOk());
  ASSERT_TRUE(loaded->agent.uptane);
  EXPECT_EQ(loaded->agent.uptane->director_root, "/d.json");
  EXPECT_EQ(loaded->agent.uptane->key_file, dir_ / "state" + "/uptane.key");
  auto missing = Load("[uptane]\ndirector_root = \"/d.json\"");
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.error().message(), ::testing::HasSubstr("image_root"));
  auto unknown = Load("[uptane]\ndirector_root = \"/d\"\nimage_root = \"/i\"\nroot = 1");
  ASSERT_FALSE(unknown.ok());
  EXPECT_THAT(unknown.error().message(), ::testing::HasSubstr("root"));
  EXPECT_FALSE(Load("uptane = 5").ok());
}

}  // namespace
}  // namespace aloft::agent
