// Push over MQTT (docs/mqtt.md): aloftd's bridge to a Mosquitto broker. It keeps the broker's
// password and ACL files in step with the device registry, answers devices' messages (property
// reports, otaCheck, progress and result reports; a gateway's on behalf of its sub-devices) and
// pushes otaUpgrade / otaCancel commands when they are due (a push rollout's wave starts, an
// operator's push task). Several aloftd instances share the work: the broker hands each device
// message to one of them (a shared subscription), and only the rollout leader pushes.
//
// The bridge reaches the server only through Hooks, so it runs the same code as the native HTTP
// device API: an MQTT message is a device-API request made by the device the broker
// authenticated.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "mqtt/client.h"
#include "server/store.h"

namespace aloft::server {

struct PushOptions {
  std::string url;       // mqtt://host:port or mqtts://; the bridge runs only when set
  std::string username;  // this aloftd's own broker user (App: aloftd-<host>-<data dir hash>)
  std::string password;  // "" with passwd_file: a random one, written to the broker's file
  std::string ca_file;
  std::string client_id;  // a persistent session; "" = the user name
  std::string group;      // "" = a plain subscription; else the shared subscription's group
  // The broker's files that aloftd keeps (Mosquitto password_file and acl_file), and its pid
  // file (SIGHUP after a change). "": the broker's credentials are managed elsewhere.
  std::string passwd_file, acl_file, pid_file;
  size_t max_message_bytes = 64 * 1024;  // larger messages get an error report
  int workers = 4;                       // threads handling device messages
};

class PushBridge {
 public:
  struct Call {
    int status = 0;
    std::string body;  // JSON
  };
  struct Hooks {
    // Runs a native device-API request as `device` (authenticated by the broker).
    std::function<Call(const std::string& device, const std::string& method,
                       const std::string& path, const std::string& body)>
        call;
    // The native check-in's "action" for the device's open action (null when none), without a
    // check-in's side effects.
    std::function<Result<nlohmann::json>(const std::string& device)> offer;
  };
  struct Counters {
    std::atomic<int64_t> received{0}, errors{0}, commands{0}, pushed{0}, dropped{0}, connects{0};
  };

  PushBridge(PushOptions options, Store& store, Hooks hooks, std::ostream& log);
  ~PushBridge();

  // Writes the broker's files (when configured) and starts the client, which connects in the
  // background. Errors: bad options, files that cannot be written.
  Status Start();
  void Stop();
  bool connected() const { return client_ && client_->connected(); }
  // QoS 1 messages published and not yet acknowledged by the broker.
  size_t unacknowledged() const { return client_ ? client_->unacknowledged() : 0; }

  // Publishes the commands due at `now_ms` (QoS 1); an action's push is cleared once the broker
  // acknowledged it. Returns how many were published. The rollout leader calls it after each
  // tick.
  Result<int> PushDue(int64_t now_ms);
  // The device registry changed: rewrite the broker's password file soon.
  void CredentialsChanged();
  // Rewrites the broker's files now when they differ from the registry (and signals the broker).
  Status SyncBrokerFiles();

  const Counters& counters() const { return counters_; }

  // The command for a native check-in "action": otaUpgrade (upgrade false when null), or
  // otaCancel for an action being canceled.
  static nlohmann::json CommandFor(const nlohmann::json& action);

 private:
  void OnMessage(const mqtt::Message& m);
  void Handle(const mqtt::Message& m);
  void Reply(const std::string& device, const std::optional<std::string>& sub,
             const std::string& kind, nlohmann::json body);
  void ReplyError(const std::string& device, const std::optional<std::string>& sub,
                  const std::string& topic, std::string_view code, const std::string& message,
                  const nlohmann::json& reply_to = nullptr);
  // SIGHUP to the broker (mqtt_broker_pid): reload the password and ACL files.
  Status SignalBroker();
  void Worker(size_t index);
  void Housekeeper();

  PushOptions o_;
  Store& store_;
  Hooks hooks_;
  std::ostream& log_;
  std::unique_ptr<mqtt::Client> client_;
  Counters counters_;

  // Device messages, sharded by device so that one device's messages are handled in order.
  struct Shard {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<mqtt::Message> queue;
  };
  std::vector<std::unique_ptr<Shard>> shards_;
  std::vector<std::thread> workers_;
  std::atomic<bool> stop_{false};

  std::mutex files_mu_;
  std::condition_variable files_cv_;
  bool files_dirty_ = false;
  std::string files_written_;  // the password file's content as last written
  std::string acl_written_;    // the ACL file's
  // When to signal the broker once more after a write (SyncBrokerFiles; housekeeper thread).
  std::optional<std::chrono::steady_clock::time_point> resignal_at_;
  std::thread housekeeper_;

  std::mutex push_mu_;
  std::set<int64_t> in_flight_;  // action ids published, not yet acknowledged
  std::vector<int64_t> acked_;   // acknowledged, push not yet cleared in the database
};

}  // namespace aloft::server
