// Many MQTT sessions from one thread (docs/fleet-sim.md): the fleet simulator's push devices,
// each a libmosquitto client with a persistent session (client id = user name = the device's
// name, password = its token) subscribed to its own down/# topics, all driven by the caller's
// poll loop (libmosquitto without its threads). A session that drops or is refused (the broker
// restarting, its password file not yet reloaded) connects again after a backoff.
//
//   MqttSessions mqtt("mqtt://127.0.0.1:1883", {.on_connect = ..., .on_message = ...});
//   mqtt.Open(7, "sim-0000007", token);
//   mqtt.Publish(7, topic, payload, [](bool acked) { ... });
//   while (...) { mqtt.Prepare(&fds); poll(fds); mqtt.Process(fds, now_ms); }
#pragma once

#include <poll.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/error.h"

struct mosquitto;
struct mosquitto_message;

namespace aloft::fleetsim {

class MqttSessions {
 public:
  struct Handlers {
    // After each CONNACK that accepted the session and the SUBACK of its down/# subscription.
    std::function<void(uint32_t id)> on_ready;
    std::function<void(uint32_t id, std::string_view topic, std::string_view payload)> on_message;
  };
  struct Counters {
    uint64_t connects = 0, refused = 0, drops = 0;   // accepted, refused, lost connections
    uint64_t published = 0, acked = 0, unacked = 0;  // unacked: lost with their connection
  };
  // `url`: mqtt://host:port.
  static Result<std::unique_ptr<MqttSessions>> New(const std::string& url, Handlers handlers);
  ~MqttSessions();
  MqttSessions(const MqttSessions&) = delete;
  MqttSessions& operator=(const MqttSessions&) = delete;

  // Starts session `id` (its first connect happens in Process).
  void Open(uint32_t id, const std::string& name, const std::string& password);
  bool ready(uint32_t id) const;
  // QoS 1. `done(true)` once the broker acknowledged it, `done(false)` when the session is not
  // ready or dropped before the acknowledgement (the caller sends it again later).
  void Publish(uint32_t id, const std::string& topic, const std::string& payload,
               std::function<void(bool acked)> done);

  // The descriptors to wait on (appended to `fds`); Process takes the same vector back.
  void Prepare(std::vector<pollfd>& fds, size_t from);
  // Reads, writes, keeps alive, reconnects the sessions whose time has come.
  void Process(const std::vector<pollfd>& fds, size_t from, int64_t now_ms);
  const Counters& counters() const { return counters_; }
  size_t size() const { return sessions_.size(); }
  size_t ready_count() const;

 private:
  struct Session;
  MqttSessions(std::string host, uint16_t port, Handlers handlers);
  void Connect(Session& s, int64_t now_ms);
  void Dropped(Session& s, int64_t now_ms);
  static void OnConnect(mosquitto* m, void* p, int rc);
  static void OnSubscribe(mosquitto* m, void* p, int mid, int n, const int* qos);
  static void OnPublish(mosquitto* m, void* p, int mid);
  static void OnMessage(mosquitto* m, void* p, const mosquitto_message* msg);
  static void OnDisconnect(mosquitto* m, void* p, int rc);

  std::string host_;
  uint16_t port_;
  Handlers h_;
  std::unordered_map<uint32_t, std::unique_ptr<Session>> sessions_;
  std::vector<Session*> order_;  // Prepare's order, for Process
  Counters counters_;
  int64_t now_ms_ = 0, last_sweep_ = 0;
};

}  // namespace aloft::fleetsim
