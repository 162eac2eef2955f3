#include "fleetsim/mqtt_sessions.h"

#include <mosquitto.h>

#include <algorithm>
#include <mutex>

#include "mqtt/client.h"
#include "mqtt/topics.h"

namespace aloft::fleetsim {

namespace {

enum class State : uint8_t { kDown, kSubscribing, kReady };

// Connects in progress at once: the broker's listen backlog, and its password checks, are finite.
constexpr size_t kConnectsAtOnce = 200;

}  // namespace

struct MqttSessions::Session {
  MqttSessions* owner = nullptr;
  uint32_t id = 0;
  std::string name, password;
  mosquitto* m = nullptr;
  State state = State::kDown;
  bool connecting = false;  // TCP up, CONNACK or SUBACK awaited
  bool configured = false;  // mosquitto_connect was called once (later: mosquitto_reconnect)
  int tries = 0;
  int64_t next_try = 0;
  std::unordered_map<int, std::function<void(bool)>> pending;  // by message id
};

Result<std::unique_ptr<MqttSessions>> MqttSessions::New(const std::string& url, Handlers handlers) {
  ALOFT_ASSIGN_OR_RETURN(mqtt::Url u, mqtt::ParseUrl(url));
  if (u.tls) return Error(Code::kInvalidArgument, url + ": the simulator's devices speak mqtt://");
  static std::once_flag init;
  std::call_once(init, [] { mosquitto_lib_init(); });
  return std::unique_ptr<MqttSessions>(new MqttSessions(u.host, u.port, std::move(handlers)));
}

MqttSessions::MqttSessions(std::string host, uint16_t port, Handlers handlers)
    : host_(std::move(host)), port_(port), h_(std::move(handlers)) {}

MqttSessions::~MqttSessions() {
  for (auto& [id, s] : sessions_) {
    if (!s->m) continue;
    mosquitto_disconnect(s->m);
    mosquitto_destroy(s->m);
  }
}

void MqttSessions::Open(uint32_t id, const std::string& name, const std::string& password) {
  auto& s = sessions_[id];
  if (s) return;
  s = std::make_unique<Session>();
  s->owner = this;
  s->id = id;
  s->name = name;
  s->password = password;
}

bool MqttSessions::ready(uint32_t id) const {
  auto it = sessions_.find(id);
  return it != sessions_.end() && it->second->state == State::kReady;
}

size_t MqttSessions::ready_count() const {
  size_t n = 0;
  for (const auto& [id, s] : sessions_) n += s->state == State::kReady;
  return n;
}

void MqttSessions::Publish(uint32_t id, const std::string& topic, const std::string& payload,
                           std::function<void(bool)> done) {
  auto it = sessions_.find(id);
  if (it == sessions_.end() || it->second->state != State::kReady) return done(false);
  Session& s = *it->second;
  int mid = 0;
  const int rc = mosquitto_publish(s.m, &mid, topic.c_str(), static_cast<int>(payload.size()),
                                   payload.data(), 1, false);
  if (rc != MOSQ_ERR_SUCCESS) return done(false);
  ++counters_.published;
  s.pending[mid] = std::move(done);
}

void MqttSessions::Connect(Session& s, int64_t now_ms) {
  if (!s.m) {
    s.m = mosquitto_new(s.name.c_str(), /*clean_session=*/false, &s);
    if (!s.m) {
      s.next_try = now_ms + 5000;
      return;
    }
    mosquitto_int_option(s.m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    mosquitto_username_pw_set(s.m, s.name.c_str(), s.password.c_str());
    mosquitto_connect_callback_set(s.m, OnConnect);
    mosquitto_subscribe_callback_set(s.m, OnSubscribe);
    mosquitto_publish_callback_set(s.m, OnPublish);
    mosquitto_message_callback_set(s.m, OnMessage);
    mosquitto_disconnect_callback_set(s.m, OnDisconnect);
  }
  // A blocking TCP connect: on loopback it is answered at once, accepted or refused.
  const int rc =
      s.configured ? mosquitto_reconnect(s.m) : mosquitto_connect(s.m, host_.c_str(), port_, 60);
  s.configured = true;
  if (rc != MOSQ_ERR_SUCCESS) {
    s.tries = std::min(s.tries + 1, 4);
    s.next_try = now_ms + (500LL << s.tries) + s.id % 500;
    return;
  }
  s.connecting = true;
  s.next_try = now_ms + 10'000;  // no CONNACK by then: try again
}

void MqttSessions::Dropped(Session& s, int64_t now_ms) {
  if (s.state == State::kDown && !s.connecting) return;
  if (s.state != State::kDown) ++counters_.drops;
  s.state = State::kDown;
  s.connecting = false;
  s.tries = std::min(s.tries + 1, 4);
  s.next_try = now_ms + (500LL << s.tries) + s.id % 500;
  auto pending = std::move(s.pending);
  s.pending.clear();
  counters_.unacked += pending.size();
  for (auto& [mid, done] : pending) done(false);
}

void MqttSessions::OnConnect(mosquitto* m, void* p, int rc) {
  auto& s = *static_cast<Session*>(p);
  MqttSessions& self = *s.owner;
  if (rc != 0) {
    ++self.counters_.refused;
    mosquitto_disconnect(m);
    self.Dropped(s, self.now_ms_);
    return;
  }
  ++self.counters_.connects;
  s.state = State::kSubscribing;
  const std::string topic = mqtt::DownTopic(s.name, "#");
  mosquitto_subscribe(m, nullptr, topic.c_str(), 1);
}

void MqttSessions::OnSubscribe(mosquitto*, void* p, int, int, const int*) {
  auto& s = *static_cast<Session*>(p);
  s.state = State::kReady;
  s.connecting = false;
  s.tries = 0;
  if (s.owner->h_.on_ready) s.owner->h_.on_ready(s.id);
}

void MqttSessions::OnPublish(mosquitto*, void* p, int mid) {
  auto& s = *static_cast<Session*>(p);
  auto it = s.pending.find(mid);
  if (it == s.pending.end()) return;  // sent again after a reconnect; already given up on
  auto done = std::move(it->second);
  s.pending.erase(it);
  ++s.owner->counters_.acked;
  done(true);
}

void MqttSessions::OnMessage(mosquitto*, void* p, const mosquitto_message* msg) {
  auto& s = *static_cast<Session*>(p);
  if (!s.owner->h_.on_message) return;
  s.owner->h_.on_message(s.id, msg->topic,
                         std::string_view(static_cast<const char*>(msg->payload),
                                          static_cast<size_t>(msg->payloadlen)));
}

void MqttSessions::OnDisconnect(mosquitto*, void* p, int) {
  auto& s = *static_cast<Session*>(p);
  s.owner->Dropped(s, s.owner->now_ms_);
}

void MqttSessions::Prepare(std::vector<pollfd>& fds, size_t from) {
  fds.resize(from);
  order_.clear();
  for (auto& [id, s] : sessions_) {
    if (!s->m) continue;
    const int fd = mosquitto_socket(s->m);
    if (fd < 0) continue;
    short events = POLLIN;
    if (mosquitto_want_write(s->m)) events |= POLLOUT;
    fds.push_back({fd, events, 0});
    order_.push_back(s.get());
  }
}

void MqttSessions::Process(const std::vector<pollfd>& fds, size_t from, int64_t now_ms) {
  now_ms_ = now_ms;
  for (size_t k = 0; k < order_.size() && from + k < fds.size(); ++k) {
    Session& s = *order_[k];
    const short ev = fds[from + k].revents;
    if (ev & (POLLIN | POLLHUP | POLLERR)) {
      if (mosquitto_loop_read(s.m, 1) != MOSQ_ERR_SUCCESS) Dropped(s, now_ms);
    }
    if ((ev & POLLOUT) && mosquitto_socket(s.m) >= 0) mosquitto_loop_write(s.m, 1);
  }
  order_.clear();
  // Keep-alives, timeouts and reconnects: each session once per call, at most every 100 ms.
  if (now_ms - last_sweep_ < 100) return;
  last_sweep_ = now_ms;
  size_t connecting = 0;
  for (auto& [id, s] : sessions_) connecting += s->connecting;
  for (auto& [id, s] : sessions_) {
    Session& x = *s;
    if (x.m && mosquitto_socket(x.m) >= 0) {
      mosquitto_loop_misc(x.m);
      if (x.connecting && now_ms >= x.next_try) {
        mosquitto_disconnect(x.m);  // no CONNACK or SUBACK in time
        Dropped(x, now_ms);
      }
      continue;
    }
    if (x.state != State::kDown || x.connecting) Dropped(x, now_ms);
    if (now_ms < x.next_try || connecting >= kConnectsAtOnce) continue;
    Connect(x, now_ms);
    connecting += x.connecting;
  }
}

}  // namespace aloft::fleetsim
