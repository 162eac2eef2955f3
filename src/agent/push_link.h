// The agent's push mode (docs/mqtt.md): one MQTT connection to the broker, a persistent session
// (client id = the device's name), commands pushed by aloftd waking the agent at once, and
// check-ins and reports over MQTT. While the broker is unreachable, or aloftd does not answer,
// every uplink falls back to HTTP.
//
//   auto link = PushLink::Start({.url = "mqtt://127.0.0.1:1883", .user = "dev-1", .token = t},
//                               std::cerr);
//   auto uplink = (*link)->UplinkFor("dev-1", http.get());
//   Agent agent(config, modules, staging, uplink.get());
//   for (;;) { agent.Run(); (*link)->Wait(1h, &stop); }
//
// A gateway (aloft-agent in gateway mode) has one link and one uplink per sub-device: their
// messages travel wrapped on the gateway's own topics ({"device": "s1", "event": {...}}).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <set>
#include <string>

#include "agent/uplink.h"
#include "mqtt/client.h"

namespace aloft::agent {

struct PushLinkOptions {
  std::string url;      // mqtt://host:1883 or mqtts://host:8883
  std::string ca_file;  // mqtts: the CA of the broker's certificate
  std::string user;     // this device's name (a gateway's, in gateway mode)
  std::string token;    // its device token: the broker password
  // Or its certificate and key (mqtts to a listener that takes certificates; docs/identity.md).
  std::string cert_file, key_file;
  // How long a check-in over MQTT waits for aloftd's answer before it goes over HTTP instead,
  // and how long a final report waits for the broker's acknowledgement.
  std::chrono::milliseconds reply_timeout{10000};
  int keepalive_s = 60;
};

class PushLink {
 public:
  // Starts connecting in the background. Errors are the options' (a bad URL or CA file).
  static Result<std::unique_ptr<PushLink>> Start(PushLinkOptions options, std::ostream& log);
  ~PushLink();

  // Connected and subscribed to this device's commands.
  bool ready() const;
  // Waits up to `timeout` for ready(); returns ready().
  bool WaitReady(std::chrono::milliseconds timeout);

  // The uplink of `device` (the link's own user, or a sub-device behind it), over MQTT while
  // ready, else through `fallback`. The link must outlive it.
  std::unique_ptr<Uplink> UplinkFor(const std::string& device, Uplink* fallback);

  // Blocks until a command arrives for some device, the link (re)connects (commands may have been
  // missed: every device is named), or `*stop` is set; or, with nothing arrived, until `push_poll`
  // passed while the link is ready, or `http_poll` while it is not (a link lost while waiting
  // makes the wait the shorter HTTP poll). Returns the devices to check now: empty after a
  // timeout or a stop.
  std::set<std::string> Wait(std::chrono::milliseconds push_poll,
                             std::chrono::milliseconds http_poll, const std::atomic<bool>* stop);

  // Check-ins and reports that went over MQTT and over HTTP, for logs and tests.
  struct Counts {
    uint64_t mqtt_checkins = 0, http_checkins = 0, mqtt_reports = 0, http_reports = 0;
    uint64_t commands = 0;  // pushed commands received
  };
  Counts counts() const;

 private:
  class MqttUplink;
  struct Answer {
    std::string kind;  // "command" or "error"
    nlohmann::json body;
  };
  explicit PushLink(PushLinkOptions options, std::ostream& log);
  void OnMessage(const mqtt::Message& m);
  // Publishes `event` for `device` (wrapped when it is a sub-device) on topic `kind`.
  Status Publish(const std::string& device, const std::string& kind, const nlohmann::json& event,
                 std::function<void()> on_ack = {});
  void Count(uint64_t Counts::*field);
  // An otaCheck for `device`; its answer, or kUnavailable after reply_timeout.
  Result<Answer> Ask(const std::string& device, const nlohmann::json& params);

  PushLinkOptions o_;
  std::ostream& log_;
  std::unique_ptr<mqtt::Client> client_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool ready_ = false;
  std::set<std::string> devices_;  // the devices uplinks were made for
  std::set<std::string> woken_;
  std::map<std::string, std::optional<Answer>> pending_;  // otaCheck id -> answer
  uint64_t next_id_ = 0;
  std::string id_prefix_;
  Counts counts_;
};

}  // namespace aloft::agent
