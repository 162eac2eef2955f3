// The MQTT client against a real Mosquitto broker (scripts/mqtt.sh): URL parsing, password hashes
// the broker accepts, and the ACL aloftd writes, which confines every device to its own topics.
#include "mqtt/client.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/file.h"
#include "crypto/ca_directory.h"
#include "mqtt/topics.h"
#include "support/matchers.h"
#include "support/temp_dir.h"
#include "support/test_broker.h"

namespace aloft::mqtt {
namespace {

using ::aloft::testing::MqttProbe;
using ::aloft::testing::TestBroker;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using namespace std::chrono_literals;

TEST(MqttUrl, ParsesSchemesHostsAndPorts) {
  auto a = ParseUrl("mqtt://127.0.0.1:1884");
  ASSERT_THAT(a, IsOk());
  EXPECT_FALSE(a->tls);
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 1884);
  auto b = ParseUrl("mqtts://broker.example");
  ASSERT_THAT(b, IsOk());
  EXPECT_TRUE(b->tls);
  EXPECT_EQ(b->port, 8883);
  auto c = ParseUrl("mqtt://[::1]:1883");
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->host, "::1");
  EXPECT_THAT(ParseUrl("http://x"), IsError(Code::kInvalidArgument, HasSubstr("mqtt://")));
  EXPECT_THAT(ParseUrl("mqtt://x:0"), IsError(Code::kInvalidArgument, HasSubstr("bad port")));
  EXPECT_THAT(ParseUrl("mqtt://x:99999"), IsError(Code::kInvalidArgument, HasSubstr("bad port")));
  EXPECT_THAT(ParseUrl("mqtt://:1883"), IsError(Code::kInvalidArgument, HasSubstr("no host")));
}

TEST(MqttTopics, UpTopicsParse_OthersDoNot) {
  auto p = ParseUpTopic(UpTopic("dev-1", "event"));
  ASSERT_TRUE(p);
  EXPECT_EQ(p->device, "dev-1");
  EXPECT_EQ(p->kind, "event");
  EXPECT_FALSE(ParseUpTopic(DownTopic("dev-1", "command")));
  EXPECT_FALSE(ParseUpTopic("aloft/v1/d/dev-1/up/"));
  EXPECT_FALSE(ParseUpTopic("aloft/v1/d/dev-1/up/a/b"));
  EXPECT_FALSE(ParseUpTopic("aloft/v1/d//up/event"));
  EXPECT_FALSE(ParseUpTopic("other/dev-1/up/event"));
  EXPECT_TRUE(ValidTopic("aloft/v1/d/dev-1/up/event"));
  EXPECT_FALSE(ValidTopic("aloft/v1/d/+/up/event"));
  EXPECT_FALSE(ValidTopic(""));
}

TEST(MqttPassword, HashIsMosquittosFormat) {
  std::string h = PasswordHash("secret");
  EXPECT_THAT(h, MatchesRegex(R"(\$7\$101\$[A-Za-z0-9+/=]{16}\$[A-Za-z0-9+/=]{88})"));
  EXPECT_NE(h, PasswordHash("secret"));  // salted
}

class MqttBrokerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_THAT(broker_.Start(), IsOk());
    ASSERT_THAT(WriteFileAtomic(broker_.acl_file(), BrokerAcl({"aloftd"}), 0600), IsOk());
    ASSERT_THAT(
        broker_.AddUsers({{"aloftd", "pw-aloftd"}, {"dev-1", "pw-dev-1"}, {"dev-2", "pw-dev-2"}}),
        IsOk());
  }
  aloft::testing::TempDir dir_;
  TestBroker broker_{dir_ / "broker"};
};

TEST_F(MqttBrokerTest, OurPasswordHashesLogIn_WrongPasswordsAndStrangersDoNot) {
  MqttProbe good(broker_.url(), "dev-1", "pw-dev-1");
  EXPECT_THAT(good.Connect(), IsOk());
  MqttProbe wrong(broker_.url(), "dev-1", "pw-dev-2");
  EXPECT_THAT(wrong.Connect(), IsError(Code::kPermissionDenied, HasSubstr("not authorised")));
  MqttProbe stranger(broker_.url(), "nobody", "x");
  EXPECT_THAT(stranger.Connect(), IsError(Code::kPermissionDenied, HasSubstr("not authorised")));
  MqttProbe anonymous(broker_.url(), "", "");
  EXPECT_THAT(anonymous.Connect(), IsError(Code::kPermissionDenied, HasSubstr("not authorised")));
}

// Must show 2: a device can neither read nor write another device's topics.
TEST_F(MqttBrokerTest, DeviceCannotReadOrWriteAnotherDevicesTopics) {
  MqttProbe bridge(broker_.url(), "aloftd", "pw-aloftd", {BridgeSubscription("aloftd")});
  ASSERT_THAT(bridge.Connect(), IsOk());
  MqttProbe dev2(broker_.url(), "dev-2", "pw-dev-2", {"aloft/v1/d/dev-2/down/#"});
  ASSERT_THAT(dev2.Connect(), IsOk());
  // dev-1 subscribes to dev-2's topics, every device's, and everything.
  MqttProbe spy(broker_.url(), "dev-1", "pw-dev-1",
                {"aloft/v1/d/dev-2/#", "aloft/v1/d/+/down/#", "aloft/v1/d/+/up/#", "#"});
  ASSERT_THAT(spy.Connect(), IsOk());

  // The server's command to dev-2 reaches dev-2 only.
  ASSERT_THAT(bridge.Publish(DownTopic("dev-2", "command"), R"({"method":"otaUpgrade"})"), IsOk());
  auto got = dev2.Next(5s);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->topic, "aloft/v1/d/dev-2/down/command");
  // dev-2's report reaches the bridge only.
  ASSERT_THAT(dev2.Publish(UpTopic("dev-2", "report"), R"({"id":1,"status":"success"})"), IsOk());
  got = bridge.Next(5s);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->topic, "aloft/v1/d/dev-2/up/report");

  // dev-1 writes as dev-2 (to the server and to dev-2), then as itself. The broker drops the first
  // two (MQTT 3.1.1 still acknowledges them); the bridge gets dev-1's own message, and nothing
  // before it.
  ASSERT_THAT(spy.Publish(UpTopic("dev-2", "event"), R"({"method":"otaCheck"})"), IsOk());
  ASSERT_THAT(spy.Publish(DownTopic("dev-2", "command"), R"({"method":"otaUpgrade"})"), IsOk());
  ASSERT_THAT(spy.Publish(UpTopic("dev-1", "event"), R"({"method":"otaCheck"})"), IsOk());
  got = bridge.Next(5s);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->topic, "aloft/v1/d/dev-1/up/event");
  EXPECT_FALSE(dev2.Next(500ms)) << "dev-1 reached dev-2's command topic";
  // The spy saw nothing at all: not dev-2's command, not dev-2's report, not its own up topic
  // (devices may write there, not read).
  auto seen = spy.Next(500ms);
  EXPECT_FALSE(seen) << "dev-1 read " << seen->topic;
  // A device cannot pose as the server to itself either.
  MqttProbe self(broker_.url(), "dev-2", "pw-dev-2", {"aloft/v1/d/dev-2/down/#"}, true, "dev-2b");
  ASSERT_THAT(self.Connect(), IsOk());
  ASSERT_THAT(self.Publish(DownTopic("dev-2", "command"), "{}"), IsOk());
  EXPECT_FALSE(dev2.Next(500ms));
}

TEST_F(MqttBrokerTest, PersistentSessionGetsWhatWasSentWhileAway_AcrossABrokerRestart) {
  {
    MqttProbe dev(broker_.url(), "dev-1", "pw-dev-1", {"aloft/v1/d/dev-1/down/#"}, false);
    ASSERT_THAT(dev.Connect(), IsOk());
  }  // gone; the broker keeps its session
  MqttProbe bridge(broker_.url(), "aloftd", "pw-aloftd");
  ASSERT_THAT(bridge.Connect(), IsOk());
  ASSERT_THAT(bridge.Publish(DownTopic("dev-1", "command"), "1"), IsOk());
  ASSERT_THAT(broker_.Restart(), IsOk());  // SIGTERM saves sessions and queued messages
  ASSERT_THAT(bridge.Publish(DownTopic("dev-1", "command"), "2"), IsOk());  // after reconnecting
  MqttProbe dev(broker_.url(), "dev-1", "pw-dev-1", {"aloft/v1/d/dev-1/down/#"}, false);
  ASSERT_THAT(dev.Connect(), IsOk());
  auto a = dev.Next(5s), b = dev.Next(5s);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->payload, "1");
  EXPECT_EQ(b->payload, "2");
  auto extra = dev.Next(300ms);
  EXPECT_FALSE(extra) << extra->payload;
}

TEST_F(MqttBrokerTest, PublishWhileTheBrokerIsDown_GoesOutAfterReconnect) {
  // A persistent session, as aloftd's bridge has: its subscription outlives the restart, so the
  // device's message cannot arrive before it.
  MqttProbe bridge(broker_.url(), "aloftd", "pw-aloftd", {BridgeSubscription("")}, false,
                   "aloftd-test");
  ASSERT_THAT(bridge.Connect(), IsOk());
  mqtt::ClientOptions o;
  o.url = broker_.url();
  o.username = o.client_id = "dev-1";
  o.password = "pw-dev-1";
  o.clean_session = false;
  o.reconnect_min = 1s;
  o.reconnect_max = 2s;
  auto dev = NewClient(o, {});
  ASSERT_THAT(dev->Start(), IsOk());
  for (int i = 0; i < 100 && !dev->connected(); ++i) std::this_thread::sleep_for(50ms);
  ASSERT_TRUE(dev->connected());
  broker_.Pause();
  for (int i = 0; i < 100 && dev->connected(); ++i) std::this_thread::sleep_for(50ms);
  EXPECT_FALSE(dev->connected());
  EXPECT_THAT(dev->last_error(), HasSubstr("lost"));
  std::atomic<bool> acked{false};
  ASSERT_THAT(dev->Publish(UpTopic("dev-1", "report"), "while away", 1, [&] { acked = true; }),
              IsOk());
  EXPECT_EQ(dev->unacknowledged(), 1u);
  ASSERT_THAT(broker_.Resume(), IsOk());
  auto got = bridge.Next(10s);
  ASSERT_TRUE(got) << "device connected " << dev->connected() << ", unacknowledged "
                   << dev->unacknowledged() << ", bridge connected " << bridge.client().connected()
                   << " " << dev->last_error();
  EXPECT_EQ(got->payload, "while away");
  for (int i = 0; i < 100 && !acked; ++i) std::this_thread::sleep_for(50ms);
  EXPECT_TRUE(acked);
  EXPECT_EQ(dev->unacknowledged(), 0u);
  dev->Stop();
}

// TLS "when configured": mqtts:// with the CA that signed the broker's certificate; without it
// (the system's CAs) the handshake fails and the client never connects.
TEST(MqttTls, TrustedCaConnects_UnknownCaDoesNot) {
  aloft::testing::TempDir dir;
  TestBroker broker(dir / "broker");
  ASSERT_THAT(broker.Start(/*tls=*/true), IsOk());
  ASSERT_THAT(broker.AddUser("dev-1", "pw-dev-1"), IsOk());
  ASSERT_THAT(ParseUrl(broker.tls_url()), IsOk());
  EXPECT_TRUE(ParseUrl(broker.tls_url())->tls);
  auto connect = [&](const std::string& ca_file) {
    ClientOptions o;
    o.url = broker.tls_url();
    o.username = "dev-1";
    o.password = "pw-dev-1";
    o.ca_file = ca_file;
    auto c = NewClient(o, {});
    EXPECT_THAT(c->Start(), IsOk());
    for (int i = 0; i < 100 && !c->connected(); ++i) std::this_thread::sleep_for(50ms);
    bool connected = c->connected();
    c->Stop();
    return connected;
  };
  EXPECT_TRUE(connect(broker.ca_file()));
  EXPECT_FALSE(connect(""));  // the system's CAs do not know the test CA
}

// A device by certificate (docs/identity.md): on the listener that requires certificates of the
// device CA, its certificate is its user name (no password), under the ACL aloftd writes: it
// receives its own down topic; once revoked (the broker reloaded), it no longer connects.
TEST(MqttTls, DeviceCertificate_IsTheUserName_RevokedOneRefused) {
  aloft::testing::TempDir dir;
  const std::string ca_dir = dir / "ca";
  auto ca = crypto::CaDirectory::Init(ca_dir, "Fleet devices CA", 30, SystemClock::Instance());
  ASSERT_THAT(ca, IsOk());
  auto issue = [&](const std::string& name) {
    auto key = crypto::PrivateKey::Generate(crypto::KeyType::kEcdsaP256).value();
    auto cert = ca->Issue({.common_name = name, .tls_client = true}, key.public_key());
    EXPECT_THAT(cert, IsOk());
    EXPECT_THAT(WriteFileAtomic(dir / (name + ".key"), key.ToPem(), 0600), IsOk());
    EXPECT_THAT(WriteFileAtomic(dir / (name + ".crt"), cert->Pem()), IsOk());
    return cert->SerialHex();
  };
  const std::string serial = issue("dev-1");
  TestBroker broker(dir / "broker");
  ASSERT_THAT(broker.Start(/*tls=*/true, ca_dir), IsOk());
  ASSERT_THAT(broker.SetAcl(BrokerAcl({"aloftd"})), IsOk());
  ASSERT_THAT(broker.AddUser("aloftd", "pw-aloftd"), IsOk());
  std::atomic<int> got{0};
  std::atomic<bool> subscribed{false};
  auto device = [&] {
    ClientOptions o;
    o.url = broker.cert_url();
    o.client_id = "dev-1";
    o.username = "dev-1";
    o.ca_file = broker.ca_file();
    o.cert_file = dir / "dev-1.crt";
    o.key_file = dir / "dev-1.key";
    o.subscriptions = {DownTopic("dev-1", "#")};
    Handlers h;
    h.on_message = [&](const Message&) { ++got; };
    h.on_subscribed = [&] { subscribed = true; };
    return NewClient(o, h);
  };
  auto dev = device();
  ASSERT_THAT(dev->Start(), IsOk());
  for (int i = 0; i < 100 && !subscribed; ++i) std::this_thread::sleep_for(50ms);
  ASSERT_TRUE(subscribed) << dev->last_error();
  ClientOptions s;
  s.url = broker.url();
  s.username = "aloftd";
  s.password = "pw-aloftd";
  auto server = NewClient(s, {});
  ASSERT_THAT(server->Start(), IsOk());
  for (int i = 0; i < 100 && !server->connected(); ++i) std::this_thread::sleep_for(50ms);
  ASSERT_THAT(server->Publish(DownTopic("dev-1", "command"), "check-in", 1), IsOk());
  for (int i = 0; i < 100 && got == 0; ++i) std::this_thread::sleep_for(50ms);
  EXPECT_EQ(got, 1);
  dev->Stop();

  ASSERT_THAT(ca->Revoke(serial), IsOk());
  ASSERT_THAT(broker.Reload(), IsOk());
  auto again = device();
  ASSERT_THAT(again->Start(), IsOk());
  std::this_thread::sleep_for(2s);
  EXPECT_FALSE(again->connected());
  again->Stop();
  server->Stop();
}

TEST(MqttClient, BadOptionsAreRefusedAtStart) {
  ClientOptions o;
  o.url = "tcp://x";
  EXPECT_THAT(NewClient(o, {})->Start(), IsError(Code::kInvalidArgument, HasSubstr("tcp://x")));
  o.url = "mqtt://127.0.0.1:1";
  o.clean_session = false;
  EXPECT_THAT(NewClient(o, {})->Start(), IsError(Code::kInvalidArgument, HasSubstr("client id")));
  o.url = "mqtts://127.0.0.1:1";
  o.clean_session = true;
  o.ca_file = "/nonexistent/ca.crt";
  EXPECT_THAT(NewClient(o, {})->Start(), IsError(Code::kInvalidArgument, HasSubstr("ca.crt")));
}

}  // namespace
}  // namespace aloft::mqtt
