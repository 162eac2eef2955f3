#include "mqtt/client.h"

#include <mosquitto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <atomic>
#include <charconv>
#include <cstring>
#include <map>
#include <mutex>

#include "core/encoding.h"

namespace aloft::mqtt {
namespace {

Error Invalid(std::string message) { return Error(Code::kInvalidArgument, std::move(message)); }

std::string MosqError(int rc) {
  if (rc == MOSQ_ERR_ERRNO) return std::string(std::strerror(errno));
  return mosquitto_strerror(rc);
}

class MosquittoClient final : public Client {
 public:
  MosquittoClient(ClientOptions o, Handlers h) : o_(std::move(o)), h_(std::move(h)) {}
  ~MosquittoClient() override { Stop(); }

  Status Start() override {
    std::lock_guard lock(mu_);
    if (mosq_) return OkStatus();
    ALOFT_ASSIGN_OR_RETURN(Url url, ParseUrl(o_.url));
    static std::once_flag init;
    std::call_once(init, [] { mosquitto_lib_init(); });
    if (o_.client_id.empty() && !o_.clean_session) {
      return Invalid("an MQTT persistent session needs a client id");
    }
    mosq_ = mosquitto_new(o_.client_id.empty() ? nullptr : o_.client_id.c_str(), o_.clean_session,
                          this);
    if (!mosq_) return Error(Code::kInternal, "mosquitto_new failed: " + MosqError(MOSQ_ERR_ERRNO));
    mosquitto_int_option(mosq_, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    mosquitto_max_inflight_messages_set(mosq_, static_cast<unsigned>(std::max(0, o_.max_inflight)));
    if (!o_.username.empty()) {
      mosquitto_username_pw_set(mosq_, o_.username.c_str(),
                                o_.password.empty() ? nullptr : o_.password.c_str());
    }
    if (url.tls) {
      int rc = mosquitto_tls_set(mosq_, o_.ca_file.empty() ? nullptr : o_.ca_file.c_str(),
                                 o_.ca_file.empty() ? "/etc/ssl/certs" : nullptr,
                                 o_.cert_file.empty() ? nullptr : o_.cert_file.c_str(),
                                 o_.key_file.empty() ? nullptr : o_.key_file.c_str(), nullptr);
      if (rc != MOSQ_ERR_SUCCESS) {
        Destroy();
        return Invalid("MQTT TLS with CA file '" + o_.ca_file + "'" +
                       (o_.cert_file.empty() ? "" : ", certificate '" + o_.cert_file + "'") + ": " +
                       MosqError(rc));
      }
    }
    mosquitto_reconnect_delay_set(mosq_, static_cast<unsigned>(o_.reconnect_min.count()),
                                  static_cast<unsigned>(o_.reconnect_max.count()), true);
    mosquitto_connect_with_flags_callback_set(mosq_, &OnConnect);
    mosquitto_disconnect_callback_set(mosq_, &OnDisconnect);
    mosquitto_message_callback_set(mosq_, &OnMessage);
    mosquitto_publish_callback_set(mosq_, &OnPublish);
    mosquitto_subscribe_callback_set(mosq_, &OnSubscribe);
    // A refused or failed first connect is retried by the network thread, as any later one.
    int rc = mosquitto_connect_async(mosq_, url.host.c_str(), url.port, o_.keepalive_s);
    if (rc != MOSQ_ERR_SUCCESS) last_error_ = "connecting to " + o_.url + ": " + MosqError(rc);
    rc = mosquitto_loop_start(mosq_);
    if (rc != MOSQ_ERR_SUCCESS) {
      Destroy();
      return Error(Code::kInternal, "starting the MQTT thread: " + MosqError(rc));
    }
    return OkStatus();
  }

  void Stop() override {
    mosquitto* m;
    {
      std::lock_guard lock(mu_);
      m = mosq_;
      if (!m) return;
      stopping_ = true;
    }
    mosquitto_disconnect(m);
    mosquitto_loop_stop(m, false);
    std::lock_guard lock(mu_);
    Destroy();
    connected_ = false;
  }

  bool connected() const override { return connected_.load(); }

  Status Publish(const std::string& topic, std::string_view payload, int qos,
                 std::function<void()> on_ack) override {
    if (!ValidTopic(topic)) return Invalid("'" + topic + "' is not a valid MQTT topic to publish");
    if (payload.size() > 256 * 1024 * 1024 - 1024) return Invalid("MQTT payload too large");
    std::lock_guard lock(mu_);
    if (!mosq_) return Error(Code::kUnavailable, "the MQTT client is not started");
    int mid = 0;
    // The PUBACK cannot be handled before the callback is registered: OnPublish takes mu_.
    int rc = mosquitto_publish(mosq_, &mid, topic.c_str(), static_cast<int>(payload.size()),
                               payload.data(), qos, false);
    // While disconnected, libmosquitto keeps a QoS 1 message for the next connect and says
    // MOSQ_ERR_NO_CONN.
    if (rc == MOSQ_ERR_NO_CONN && qos > 0) rc = MOSQ_ERR_SUCCESS;
    if (rc != MOSQ_ERR_SUCCESS) {
      return Error(Code::kUnavailable, "publishing to " + topic + ": " + MosqError(rc));
    }
    if (qos > 0) pending_[mid] = std::move(on_ack);
    return OkStatus();
  }

  size_t unacknowledged() const override {
    std::lock_guard lock(mu_);
    return pending_.size();
  }

  std::string last_error() const override {
    std::lock_guard lock(mu_);
    return connected_ ? "" : last_error_;
  }

 private:
  void Destroy() {
    if (mosq_) mosquitto_destroy(mosq_);
    mosq_ = nullptr;
  }

  static void OnConnect(mosquitto* m, void* self_ptr, int rc, int flags) {
    auto* self = static_cast<MosquittoClient*>(self_ptr);
    if (rc != 0) {
      {
        std::lock_guard lock(self->mu_);
        self->last_error_ =
            std::string("the broker refused the connection: ") + mosquitto_connack_string(rc);
      }
      if (self->h_.on_disconnect) self->h_.on_disconnect(self->last_error());
      return;
    }
    if (!self->o_.subscriptions.empty()) {
      std::vector<char*> filters;
      for (auto& f : self->o_.subscriptions) filters.push_back(f.data());
      int mid = 0;
      mosquitto_subscribe_multiple(m, &mid, static_cast<int>(filters.size()), filters.data(), 1, 0,
                                   nullptr);
      self->subscribe_mid_ = mid;
    }
    self->connected_ = true;
    {
      std::lock_guard lock(self->mu_);
      self->last_error_.clear();
    }
    if (self->h_.on_connect) self->h_.on_connect((flags & 1) != 0);
  }

  static void OnDisconnect(mosquitto*, void* self_ptr, int rc) {
    auto* self = static_cast<MosquittoClient*>(self_ptr);
    const bool was = self->connected_.exchange(false);
    std::string why;
    {
      std::lock_guard lock(self->mu_);
      if (self->stopping_) return;
      if (was || self->last_error_.empty()) {
        self->last_error_ = "connection to " + self->o_.url + " lost: " + MosqError(rc);
      }
      why = self->last_error_;
    }
    if (self->h_.on_disconnect) self->h_.on_disconnect(why);
  }

  static void OnMessage(mosquitto*, void* self_ptr, const mosquitto_message* msg) {
    auto* self = static_cast<MosquittoClient*>(self_ptr);
    if (!self->h_.on_message) return;
    Message m;
    m.topic = msg->topic ? msg->topic : "";
    if (msg->payload && msg->payloadlen > 0) {
      m.payload.assign(static_cast<const char*>(msg->payload),
                       static_cast<size_t>(msg->payloadlen));
    }
    m.qos = msg->qos;
    m.retain = msg->retain;
    self->h_.on_message(m);
  }

  static void OnSubscribe(mosquitto*, void* self_ptr, int mid, int, const int*) {
    auto* self = static_cast<MosquittoClient*>(self_ptr);
    if (mid == self->subscribe_mid_ && self->h_.on_subscribed) self->h_.on_subscribed();
  }

  static void OnPublish(mosquitto*, void* self_ptr, int mid) {
    auto* self = static_cast<MosquittoClient*>(self_ptr);
    std::function<void()> ack;
    {
      std::lock_guard lock(self->mu_);
      auto it = self->pending_.find(mid);
      if (it == self->pending_.end()) return;  // QoS 0
      ack = std::move(it->second);
      self->pending_.erase(it);
    }
    if (ack) ack();
  }

  ClientOptions o_;
  Handlers h_;
  mutable std::recursive_mutex mu_;  // QoS 0 publishes complete inside mosquitto_publish
  mosquitto* mosq_ = nullptr;
  bool stopping_ = false;
  std::atomic<bool> connected_{false};
  int subscribe_mid_ = -1;  // the network thread's only
  std::string last_error_;
  std::map<int, std::function<void()>> pending_;  // mid -> on_ack, QoS 1 in flight
};

}  // namespace

Result<Url> ParseUrl(std::string_view text) {
  Url u;
  std::string_view rest;
  if (text.starts_with("mqtt://")) {
    rest = text.substr(7);
  } else if (text.starts_with("mqtts://")) {
    rest = text.substr(8);
    u.tls = true;
    u.port = 8883;
  } else {
    return Invalid("MQTT URL '" + std::string(text) +
                   "' must start with mqtt:// or mqtts:// (e.g. mqtt://127.0.0.1:1883)");
  }
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  std::string_view host = rest;
  if (rest.starts_with("[")) {  // [::1]:1883
    size_t close = rest.find(']');
    if (close == std::string_view::npos)
      return Invalid("MQTT URL '" + std::string(text) + "': bad IPv6 host");
    host = rest.substr(1, close - 1);
    rest = rest.substr(close + 1);
  } else if (size_t colon = rest.rfind(':'); colon != std::string_view::npos) {
    host = rest.substr(0, colon);
    rest = rest.substr(colon);
  } else {
    rest = {};
  }
  if (!rest.empty()) {
    if (rest[0] != ':') return Invalid("MQTT URL '" + std::string(text) + "': bad port");
    unsigned port = 0;
    auto [p, ec] = std::from_chars(rest.data() + 1, rest.data() + rest.size(), port);
    if (ec != std::errc() || p != rest.data() + rest.size() || port == 0 || port > 65535) {
      return Invalid("MQTT URL '" + std::string(text) + "': bad port");
    }
    u.port = static_cast<uint16_t>(port);
  }
  if (host.empty() || host.find('/') != std::string_view::npos) {
    return Invalid("MQTT URL '" + std::string(text) + "' names no host");
  }
  u.host = host;
  return u;
}

std::unique_ptr<Client> NewClient(ClientOptions options, Handlers handlers) {
  return std::make_unique<MosquittoClient>(std::move(options), std::move(handlers));
}

std::string PasswordHash(std::string_view password, int iterations) {
  unsigned char salt[12];
  RAND_bytes(salt, sizeof salt);
  unsigned char hash[64];
  PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()), salt, sizeof salt,
                    iterations, EVP_sha512(), sizeof hash, hash);
  return "$7$" + std::to_string(iterations) + "$" + Base64Encode(ByteSpan(salt, sizeof salt)) +
         "$" + Base64Encode(ByteSpan(hash, sizeof hash));
}

bool ValidTopic(std::string_view topic) {
  return !topic.empty() && topic.size() < 65536 &&
         mosquitto_pub_topic_check2(topic.data(), topic.size()) == MOSQ_ERR_SUCCESS &&
         mosquitto_validate_utf8(topic.data(), static_cast<int>(topic.size())) == MOSQ_ERR_SUCCESS;
}

}  // namespace aloft::mqtt
