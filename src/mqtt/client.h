// MQTT for aloftd's bridge, the agent's push mode and the push bench: a client seam over
// libmosquitto (docs/mqtt.md). The client runs its own network thread, connects in the background,
// renews its subscriptions at every connect and reconnects with exponential backoff; callbacks run
// on that thread and must not block for long.
//
//   mqtt::ClientOptions o;
//   o.url = "mqtt://127.0.0.1:1883";  o.client_id = "dev-1";  o.username = "dev-1";
//   o.password = token;  o.subscriptions = {"aloft/v1/d/dev-1/down/#"};
//   auto client = mqtt::NewClient(o, {.on_message = [](const mqtt::Message& m) { ... }});
//   ALOFT_RETURN_IF_ERROR(client->Start());
//   client->Publish("aloft/v1/d/dev-1/up/event", R"({"method":"otaCheck"})", 1);
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/error.h"

namespace aloft::mqtt {

// mqtt://host[:1883] or mqtts://host[:8883].
struct Url {
  bool tls = false;
  std::string host;
  uint16_t port = 1883;
};
Result<Url> ParseUrl(std::string_view text);

struct ClientOptions {
  std::string url;
  std::string client_id;  // empty: the broker picks one (clean sessions only)
  std::string username, password;
  std::string ca_file;  // mqtts: the CA that signed the broker's certificate
  // mqtts: the client's certificate and key (a device by certificate: the broker takes its CN
  // for the user name; docs/identity.md).
  std::string cert_file, key_file;
  // false: a persistent session; the broker keeps subscriptions and queues QoS 1 messages while
  // the client is away, and in-flight messages are resent after a reconnect.
  bool clean_session = true;
  int keepalive_s = 30;
  std::chrono::seconds reconnect_min{1}, reconnect_max{30};
  std::vector<std::string> subscriptions;  // topic filters, subscribed with QoS 1 at each connect
  // Messages in flight at once (QoS 1 publishes awaiting their PUBACK); 0: no limit.
  int max_inflight = 0;
};

struct Message {
  std::string topic;
  std::string payload;
  int qos = 0;
  bool retain = false;
};

struct Handlers {
  std::function<void(const Message&)> on_message;
  // After each CONNACK that accepted the connection; session_present: the broker kept the session.
  std::function<void(bool session_present)> on_connect;
  // When the broker granted the subscriptions made at a connect (its SUBACK).
  std::function<void()> on_subscribed;
  // Each refused connection or lost one: `why` says what happened.
  std::function<void(const std::string& why)> on_disconnect;
};

class Client {
 public:
  virtual ~Client() = default;
  // Starts the network thread, which connects and keeps connecting. Errors are only those of the
  // options (a bad URL, an unreadable CA file); an absent broker is retried in the background.
  virtual Status Start() = 0;
  // Disconnects and joins the network thread. Idempotent.
  virtual void Stop() = 0;
  virtual bool connected() const = 0;
  // Queues a message. `on_ack` (QoS 1) runs on the network thread when the broker acknowledged
  // it; a message queued while disconnected goes out after the next connect. kUnavailable when the
  // client is not started; kInvalidArgument for a bad topic or payload.
  virtual Status Publish(const std::string& topic, std::string_view payload, int qos,
                         std::function<void()> on_ack = {}) = 0;
  // Messages published with QoS 1 and not yet acknowledged.
  virtual size_t unacknowledged() const = 0;
  // The last reason the connection failed or was refused ("" while connected).
  virtual std::string last_error() const = 0;
};

std::unique_ptr<Client> NewClient(ClientOptions options, Handlers handlers);

// A line's password hash as Mosquitto's password file holds it, PBKDF2-SHA512 with a random
// 12-byte salt: "$7$101$<salt base64>$<hash base64>" (what `mosquitto_passwd` writes).
std::string PasswordHash(std::string_view password, int iterations = 101);

// Whether `topic` is a valid topic to publish to (no wildcards, UTF-8, not empty, < 64 KiB).
bool ValidTopic(std::string_view topic);

}  // namespace aloft::mqtt
