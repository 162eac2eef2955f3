// A real Mosquitto broker for tests: scripts/mqtt.sh in a directory of the test's, on a free
// loopback port below the ephemeral range, with the password and ACL files aloftd writes.
//
//   TestBroker broker(dir);
//   ASSERT_THAT(broker.Start(), IsOk());
//   ASSERT_THAT(broker.AddUser("dev-1", "secret"), IsOk());   // when no aloftd writes the files
//   broker.url();                                              // mqtt://127.0.0.1:PORT
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "mqtt/client.h"

namespace aloft::testing {

class TestBroker {
 public:
  explicit TestBroker(std::string dir) : dir_(std::move(dir)) {}
  ~TestBroker() { Stop(); }
  TestBroker(const TestBroker&) = delete;
  TestBroker& operator=(const TestBroker&) = delete;

  // `device_ca` (a CA directory of `aloft ca`, needs `tls`): a third listener takes devices by
  // their certificates (cert_url()).
  Status Start(bool tls = false, const std::string& device_ca = "");
  // Stops the broker (SIGTERM: it saves its persistence file), then starts it again on the same
  // port with the same files.
  Status Restart();
  void Stop();
  // Stops the broker without restarting it; Resume() starts it again.
  void Pause() { Stop(); }
  Status Resume() { return Restart(); }

  const std::string& url() const { return url_; }
  const std::string& tls_url() const { return tls_url_; }
  const std::string& cert_url() const { return cert_url_; }
  std::string ca_file() const { return dir_ + "/tls/ca.crt"; }
  std::string passwd_file() const { return dir_ + "/passwd"; }
  std::string acl_file() const { return dir_ + "/acl"; }
  std::string pid_file() const { return dir_ + "/mosquitto.pid"; }
  uint16_t port() const { return port_; }

  // Appends a user to the password file and makes the broker reload it (SIGHUP), for tests without
  // an aloftd to write the files. Waits until the reload happened.
  Status AddUser(const std::string& name, const std::string& password) {
    return AddUsers({{name, password}});
  }
  Status AddUsers(const std::vector<std::pair<std::string, std::string>>& users);
  // Replaces the ACL file and reloads.
  Status SetAcl(const std::string& text);
  Status Reload();

 private:
  std::string dir_;
  std::string url_, tls_url_, cert_url_;
  uint16_t port_ = 0;
  bool running_ = false;
};

// An MQTT client for tests that records what it receives.
//
//   MqttProbe probe(broker.url(), "dev-1", "secret", {"aloft/v1/d/dev-1/down/#"});
//   ASSERT_THAT(probe.Connect(), IsOk());
//   auto m = probe.Next(std::chrono::seconds(5));   // nullopt after 5 s without a message
class MqttProbe {
 public:
  MqttProbe(const std::string& url, const std::string& user, const std::string& password,
            std::vector<std::string> subscriptions = {}, bool clean_session = true,
            std::string client_id = "");
  ~MqttProbe();
  // Starts the client and waits (up to 10 s) until it is connected and its subscriptions granted;
  // an error names the broker's refusal.
  Status Connect();
  // Publishes with QoS 1 and waits (up to 10 s) for the broker's PUBACK.
  Status Publish(const std::string& topic, const std::string& payload);
  std::optional<mqtt::Message> Next(std::chrono::milliseconds timeout);
  // The next message on `topic`, skipping others.
  std::optional<mqtt::Message> NextOn(const std::string& topic, std::chrono::milliseconds timeout);
  mqtt::Client& client() { return *client_; }
  // Connections so far (more than one: the broker dropped it and it reconnected).
  int connects() {
    std::lock_guard lock(mu_);
    return connects_;
  }
  void Stop() { client_->Stop(); }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<mqtt::Message> messages_;
  int connects_ = 0, refusals_ = 0;
  std::string refusal_;
  std::unique_ptr<mqtt::Client> client_;
};

// A loopback TCP port in [20000, 32000) that nothing listens on now.
uint16_t FreeLoopbackPort();

}  // namespace aloft::testing
