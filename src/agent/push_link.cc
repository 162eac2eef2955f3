#include "agent/push_link.h"

#include <random>

#include "mqtt/topics.h"

namespace aloft::agent {

using json = nlohmann::json;

class PushLink::MqttUplink final : public Uplink {
 public:
  MqttUplink(PushLink& link, std::string device, Uplink* fallback)
      : link_(link), device_(std::move(device)), fallback_(fallback) {}

  Result<json> CheckIn(const json& body) override {
    if (link_.ready()) {
      auto answer = link_.Ask(device_, body);
      if (answer.ok()) {
        link_.Count(&Counts::mqtt_checkins);
        return ToCheckIn(*answer);
      }
      if (answer.error().code() != Code::kUnavailable) return answer.error();
      link_.log_ << "aloft-agent: " << device_ << ": " << answer.error().message()
                 << "; checking in over HTTP" << std::endl;
    } else {
      link_.log_ << "aloft-agent: " << device_
                 << ": the broker is unreachable; checking in over HTTP" << std::endl;
    }
    link_.Count(&Counts::http_checkins);
    return fallback_->CheckIn(body);
  }

  Status Feedback(int64_t action, const json& body) override {
    const bool final = FinalStatus(body.value("status", ""));
    if (link_.ready()) {
      json report = body;
      report["id"] = action;
      auto acked = std::make_shared<std::atomic<bool>>(false);
      Status s = link_.Publish(device_, "report", report, [acked, &link = link_] {
        acked->store(true);
        std::lock_guard lock(link.mu_);
        link.cv_.notify_all();
      });
      if (s.ok() && !final) {
        link_.Count(&Counts::mqtt_reports);
        return OkStatus();  // progress is best effort
      }
      if (s.ok()) {
        std::unique_lock lock(link_.mu_);
        if (link_.cv_.wait_for(lock, link_.o_.reply_timeout, [&] { return acked->load(); })) {
          ++link_.counts_.mqtt_reports;
          return OkStatus();
        }
      }
      link_.log_ << "aloft-agent: " << device_ << ": the broker did not take the report on action "
                 << action << "; reporting over HTTP" << std::endl;
    } else if (final) {
      link_.log_ << "aloft-agent: " << device_ << ": the broker is unreachable; reporting "
                 << body.value("status", "") << " on action " << action << " over HTTP"
                 << std::endl;
    }
    link_.Count(&Counts::http_reports);
    return fallback_->Feedback(action, body);
  }

  Status StartInstall(int64_t action) override {
    // A report over MQTT has no answer but the broker's: the server's verdict comes over HTTP.
    link_.Count(&Counts::http_reports);
    return fallback_->StartInstall(action);
  }

 private:
  // otaUpgrade / otaCancel -> the native check-in's answer (docs/mqtt.md).
  Result<json> ToCheckIn(const Answer& a) {
    const json& body = a.body;
    if (a.kind == "error") {
      return Error(Code::kPermissionDenied,
                   "check-in over MQTT refused: " + body.value("error", std::string("error")) +
                       ": " + body.value("message", std::string()));
    }
    const std::string method = body.value("method", "");
    const json params =
        body.contains("params") && body["params"].is_object() ? body["params"] : json::object();
    if (method == "otaCancel") {
      return json{{"action", {{"id", params.value("id", int64_t{0})}, {"cancel", true}}}};
    }
    if (method != "otaUpgrade") {
      return Error(Code::kUnavailable, "check-in over MQTT: unexpected answer '" + method + "'");
    }
    if (!params.value("upgrade", false)) return json::object();
    return json{{"action", params}};
  }

  PushLink& link_;
  std::string device_;
  Uplink* fallback_;
};

PushLink::PushLink(PushLinkOptions options, std::ostream& log) : o_(std::move(options)), log_(log) {
  std::random_device rd;
  id_prefix_ = std::to_string(rd()) + "-";
}

PushLink::~PushLink() {
  if (client_) client_->Stop();
}

Result<std::unique_ptr<PushLink>> PushLink::Start(PushLinkOptions options, std::ostream& log) {
  if (options.user.empty()) return Error(Code::kInvalidArgument, "push: no device name");
  std::unique_ptr<PushLink> link(new PushLink(std::move(options), log));
  PushLink* self = link.get();
  mqtt::ClientOptions c;
  c.url = self->o_.url;
  c.ca_file = self->o_.ca_file;
  c.cert_file = self->o_.cert_file;
  c.key_file = self->o_.key_file;
  c.client_id = self->o_.user;  // one persistent session per device
  c.username = self->o_.user;
  c.password = self->o_.token;
  c.clean_session = false;  // commands sent while the device is away wait for it at the broker
  c.keepalive_s = self->o_.keepalive_s;
  c.subscriptions = {mqtt::DownTopic(self->o_.user, "#")};
  mqtt::Handlers h;
  h.on_message = [self](const mqtt::Message& m) { self->OnMessage(m); };
  h.on_subscribed = [self] {
    std::lock_guard lock(self->mu_);
    if (!self->ready_)
      self->log_ << "aloft-agent: push: connected to " << self->o_.url << std::endl;
    self->ready_ = true;
    // Commands may have been missed while away (a session the broker lost): check everything.
    self->woken_.insert(self->devices_.begin(), self->devices_.end());
    self->cv_.notify_all();
  };
  h.on_disconnect = [self](const std::string& why) {
    std::lock_guard lock(self->mu_);
    if (self->ready_) {
      self->log_ << "aloft-agent: push: " << why << " (reconnecting; HTTP meanwhile)" << std::endl;
    }
    self->ready_ = false;
    self->cv_.notify_all();
  };
  self->client_ = mqtt::NewClient(std::move(c), std::move(h));
  ALOFT_RETURN_IF_ERROR(self->client_->Start());
  return link;
}

bool PushLink::ready() const {
  std::lock_guard lock(mu_);
  return ready_;
}

bool PushLink::WaitReady(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return ready_; });
}

std::unique_ptr<Uplink> PushLink::UplinkFor(const std::string& device, Uplink* fallback) {
  std::lock_guard lock(mu_);
  devices_.insert(device);
  return std::make_unique<MqttUplink>(*this, device, fallback);
}

std::set<std::string> PushLink::Wait(std::chrono::milliseconds push_poll,
                                     std::chrono::milliseconds http_poll,
                                     const std::atomic<bool>* stop) {
  std::unique_lock lock(mu_);
  const auto start = std::chrono::steady_clock::now();
  for (;;) {
    const auto deadline = start + (ready_ ? push_poll : http_poll);
    const auto now = std::chrono::steady_clock::now();
    if (!woken_.empty() || (stop && *stop) || now >= deadline) break;
    // Signals set `stop` without notifying: look again at least every 200 ms.
    cv_.wait_until(lock, std::min(deadline, now + std::chrono::milliseconds(200)));
  }
  if (stop && *stop) return {};
  return std::exchange(woken_, {});
}

PushLink::Counts PushLink::counts() const {
  std::lock_guard lock(mu_);
  return counts_;
}

void PushLink::Count(uint64_t Counts::*field) {
  std::lock_guard lock(mu_);
  ++(counts_.*field);
}

Status PushLink::Publish(const std::string& device, const std::string& kind, const json& event,
                         std::function<void()> on_ack) {
  json body = device == o_.user ? event : json{{"device", device}, {"event", event}};
  return client_->Publish(mqtt::UpTopic(o_.user, kind), body.dump(), 1, std::move(on_ack));
}

Result<PushLink::Answer> PushLink::Ask(const std::string& device, const json& params) {
  std::string id;
  {
    std::lock_guard lock(mu_);
    id = id_prefix_ + std::to_string(++next_id_);
    pending_[id];
  }
  Status s = Publish(device, "event", {{"method", "otaCheck"}, {"id", id}, {"params", params}});
  std::unique_lock lock(mu_);
  auto it = pending_.find(id);
  if (s.ok()) {
    cv_.wait_for(lock, o_.reply_timeout, [&] { return it->second.has_value() || !ready_; });
  }
  std::optional<Answer> answer = std::move(it->second);
  pending_.erase(it);
  if (!s.ok()) return s.error();
  if (!answer) {
    return Error(Code::kUnavailable, ready_ ? "no answer to otaCheck over MQTT in " +
                                                  std::to_string(o_.reply_timeout.count()) + " ms"
                                            : "the broker connection was lost during otaCheck");
  }
  return *std::move(answer);
}

void PushLink::OnMessage(const mqtt::Message& m) {
  const size_t at = m.topic.rfind('/');
  const std::string kind = at == std::string::npos ? "" : m.topic.substr(at + 1);
  json j = json::parse(m.payload, nullptr, false);
  if (!j.is_object() || (kind != "command" && kind != "error")) {
    log_ << "aloft-agent: push: ignored a message on " << m.topic << std::endl;
    return;
  }
  std::string device = o_.user;
  if (j.contains("device") && j["device"].is_string()) {
    device = j["device"].get<std::string>();  // for a sub-device behind this gateway
    json inner = j.contains(kind) ? j[kind] : json();
    j = std::move(inner);
    if (!j.is_object()) {
      log_ << "aloft-agent: push: a wrapped message without '" << kind << "' on " << m.topic
           << std::endl;
      return;
    }
  }
  std::lock_guard lock(mu_);
  if (j.contains("reply_to") && j["reply_to"].is_string()) {
    auto it = pending_.find(j["reply_to"].get<std::string>());
    if (it != pending_.end()) {
      it->second = Answer{kind, std::move(j)};
      cv_.notify_all();
      return;
    }
  }
  if (kind == "error") {
    log_ << "aloft-agent: push: the server refused a message of " << device << ": "
         << j.value("error", "") << ": " << j.value("message", "") << std::endl;
    return;
  }
  if (j.contains("reply_to")) return;  // the answer to an otaCheck given up on
  ++counts_.commands;
  woken_.insert(device);
  cv_.notify_all();
}

}  // namespace aloft::agent
