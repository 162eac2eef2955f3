#include "server/push.h"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <functional>

#include "core/canonical_json.h"
#include "core/file.h"
#include "mqtt/topics.h"
#include "server/api.h"
#include "server/app.h"

namespace aloft::server {

using json = nlohmann::json;

PushBridge::PushBridge(PushOptions options, Store& store, Hooks hooks, std::ostream& log)
    : o_(std::move(options)), store_(store), hooks_(std::move(hooks)), log_(log) {
  // A broker that binds client ids to user names (use_username_as_clientid, docs/mqtt.md) gives
  // the bridge its user name as its client id anyway.
  if (o_.client_id.empty()) o_.client_id = o_.username;
  if (o_.workers < 1) o_.workers = 1;
}

PushBridge::~PushBridge() { Stop(); }

Status PushBridge::Start() {
  if (o_.username.empty()) {
    return Error(Code::kInvalidArgument, "the MQTT bridge needs its broker user name");
  }
  if (auto url = mqtt::ParseUrl(o_.url); !url.ok()) return url.error();
  if (o_.password.empty()) {
    if (o_.passwd_file.empty()) {
      return Error(Code::kInvalidArgument,
                   "mqtt_password is empty and aloftd does not write the broker's password file "
                   "(mqtt_broker_passwd): the bridge could not log in");
    }
    o_.password = NewToken("");  // only this process knows it; the file it writes lets it in
  }
  if (!o_.passwd_file.empty()) {
    // Every aloftd has a broker user of its own (with use_username_as_clientid, one user is one
    // connection); the database tells each the others', for the files each writes.
    const std::string hash = mqtt::PasswordHash(o_.password);
    const int64_t now = ToMs(std::chrono::system_clock::now());
    ALOFT_RETURN_IF_ERROR(
        store_.Write([&](Tx& tx) { return tx.PutMqttBridge(o_.username, hash, now); }));
  }
  // The first sync always writes the files (with this process's bridge password) and signals
  // the broker.
  ALOFT_RETURN_IF_ERROR(SyncBrokerFiles());

  for (int i = 0; i < o_.workers; ++i) shards_.push_back(std::make_unique<Shard>());
  for (int i = 0; i < o_.workers; ++i) workers_.emplace_back([this, i] { Worker(i); });
  housekeeper_ = std::thread([this] { Housekeeper(); });

  mqtt::ClientOptions c;
  c.url = o_.url;
  c.client_id = o_.client_id;
  c.username = o_.username;
  c.password = o_.password;
  c.ca_file = o_.ca_file;
  c.clean_session = false;  // device messages sent while this bridge reconnects wait for it
  c.subscriptions = {mqtt::BridgeSubscription(o_.group)};
  mqtt::Handlers h;
  h.on_message = [this](const mqtt::Message& m) { OnMessage(m); };
  h.on_connect = [this](bool) {
    ++counters_.connects;
    log_ << "aloftd: MQTT bridge connected to " << o_.url << " as " << o_.client_id << std::endl;
    // Pushes published while the connection was down may never leave libmosquitto's queue (seen
    // with 2.0.11 after a broker restart): the ones not acknowledged are published again at the
    // next PushDue, their due time being still set. A device may get a command twice; commands
    // are idempotent by action id.
    std::lock_guard lock(push_mu_);
    in_flight_.clear();
  };
  h.on_disconnect = [this](const std::string& why) {
    if (!stop_) log_ << "aloftd: MQTT bridge: " << why << " (reconnecting)" << std::endl;
  };
  client_ = mqtt::NewClient(std::move(c), std::move(h));
  return client_->Start();
}

void PushBridge::Stop() {
  if (stop_.exchange(true)) return;
  if (client_) client_->Stop();
  for (auto& s : shards_) {
    std::lock_guard lock(s->mu);
    s->cv.notify_all();
  }
  for (auto& t : workers_) t.join();
  {
    std::lock_guard lock(files_mu_);
    files_cv_.notify_all();
  }
  if (housekeeper_.joinable()) housekeeper_.join();
}

void PushBridge::CredentialsChanged() {
  std::lock_guard lock(files_mu_);
  files_dirty_ = true;
  files_cv_.notify_all();
}

Status PushBridge::SyncBrokerFiles() {
  if (o_.passwd_file.empty()) return OkStatus();
  std::vector<std::pair<std::string, std::string>> bridges, creds;
  ALOFT_RETURN_IF_ERROR(store_.Read([&](Tx& tx) -> Status {
    ALOFT_ASSIGN_OR_RETURN(bridges, tx.MqttBridges());
    ALOFT_ASSIGN_OR_RETURN(creds, tx.MqttCredentials());
    return OkStatus();
  }));
  std::string text;
  std::set<std::string> bridge_users;
  for (const auto& [name, hash] : bridges) {
    bridge_users.insert(name);
    text += name + ":" + hash + "\n";
  }
  for (const auto& [name, hash] : creds) {
    if (bridge_users.count(name)) continue;  // a device may not pose as a bridge
    text += name + ":" + hash + "\n";
  }
  const std::string acl =
      o_.acl_file.empty()
          ? ""
          : mqtt::BrokerAcl(std::vector<std::string>(bridge_users.begin(), bridge_users.end()));
  const auto now = std::chrono::steady_clock::now();
  if (text == files_written_ && acl == acl_written_) {
    if (!resignal_at_ || now < *resignal_at_) return OkStatus();
    resignal_at_.reset();
    return SignalBroker();
  }
  if (!o_.acl_file.empty() && acl != acl_written_) {
    auto current = ReadFile(o_.acl_file);
    if (!current.ok() || *current != acl) {
      ALOFT_RETURN_IF_ERROR(WriteFileAtomic(o_.acl_file, acl, 0600));
    }
    acl_written_ = acl;
  }
  ALOFT_RETURN_IF_ERROR(WriteFileAtomic(o_.passwd_file, text, 0600));
  files_written_ = std::move(text);
  // Mosquitto clears its reload flag after reading its files, so a SIGHUP that arrives while it
  // reloads for an earlier one is lost, and the broker keeps the older file. One more signal a
  // second later makes the last write's reload certain.
  resignal_at_ = now + std::chrono::seconds(1);
  return SignalBroker();
}

Status PushBridge::SignalBroker() {
  if (o_.pid_file.empty()) return OkStatus();
  auto pid_text = ReadFile(o_.pid_file, 64);
  if (!pid_text.ok()) {
    return pid_text.error().WithContext("reading the broker's pid file (mqtt_broker_pid)");
  }
  const long pid = std::strtol(pid_text->c_str(), nullptr, 10);
  if (pid <= 1 || ::kill(static_cast<pid_t>(pid), SIGHUP) != 0) {
    return Error(Code::kUnavailable, "could not signal the broker (pid " + *pid_text + " from " +
                                         o_.pid_file + ") to reload its password file");
  }
  return OkStatus();
}

void PushBridge::Housekeeper() {
  // The password file follows the registry: at once after this server's changes, and within 10 s
  // of another server's.
  auto last_sync = std::chrono::steady_clock::now();
  std::unique_lock lock(files_mu_);
  while (!stop_) {
    files_cv_.wait_for(lock, std::chrono::milliseconds(200));
    if (stop_) break;
    const auto now = std::chrono::steady_clock::now();
    const bool resignal = resignal_at_ && now >= *resignal_at_;
    if (!files_dirty_ && !resignal && now - last_sync < std::chrono::seconds(10)) continue;
    files_dirty_ = false;
    last_sync = now;
    lock.unlock();
    Status s = SyncBrokerFiles();
    if (!s.ok()) log_ << "aloftd: MQTT broker files: " << s.error().ToString() << std::endl;
    lock.lock();
  }
}

void PushBridge::OnMessage(const mqtt::Message& m) {
  counters_.received.fetch_add(1, std::memory_order_relaxed);
  auto parts = mqtt::ParseUpTopic(m.topic);
  const size_t shard = parts ? std::hash<std::string>()(parts->device) % shards_.size() : 0;
  Shard& s = *shards_[shard];
  std::lock_guard lock(s.mu);
  if (s.queue.size() >= 100000) {
    counters_.dropped.fetch_add(1, std::memory_order_relaxed);
    return;  // the device's QoS 1 retry or its next otaCheck will come back
  }
  s.queue.push_back(m);
  s.cv.notify_one();
}

void PushBridge::Worker(size_t index) {
  Shard& s = *shards_[index];
  std::unique_lock lock(s.mu);
  while (!stop_) {
    s.cv.wait(lock, [&] { return stop_ || !s.queue.empty(); });
    while (!s.queue.empty() && !stop_) {
      mqtt::Message m = std::move(s.queue.front());
      s.queue.pop_front();
      lock.unlock();
      Handle(m);
      lock.lock();
    }
  }
}

json PushBridge::CommandFor(const json& action) {
  if (!action.is_object()) {
    return {{"method", "otaUpgrade"}, {"params", {{"upgrade", false}}}};
  }
  if (action.value("cancel", false)) {
    return {{"method", "otaCancel"},
            {"params",
             {{"id", action.value("id", int64_t{0})},
              {"release", action.value("release", "")},
              {"version", action.value("version", "")}}}};
  }
  json p = action;
  p["upgrade"] = true;
  const json& modules = action.contains("modules") ? action["modules"] : json();
  p["module"] = modules.is_array() && !modules.empty() ? modules[0] : json("main");
  const json& d = action.contains("download") ? action["download"] : json::object();
  for (const char* k : {"url", "size", "md5", "sha256"}) {
    if (d.contains(k)) p[k] = d[k];
  }
  return {{"method", "otaUpgrade"}, {"params", std::move(p)}};
}

void PushBridge::Reply(const std::string& device, const std::optional<std::string>& sub,
                       const std::string& kind, json body) {
  if (sub) body = {{"device", *sub}, {kind == "error" ? "error" : "command", std::move(body)}};
  Status s = client_->Publish(mqtt::DownTopic(device, kind), DumpJson(body), 1);
  if (!s.ok()) log_ << "aloftd: MQTT bridge: " << s.error().ToString() << std::endl;
}

void PushBridge::ReplyError(const std::string& device, const std::optional<std::string>& sub,
                            const std::string& topic, std::string_view code,
                            const std::string& message, const json& reply_to) {
  counters_.errors.fetch_add(1, std::memory_order_relaxed);
  json body = {{"error", code}, {"message", message}, {"topic", topic}};
  if (!reply_to.is_null()) body["reply_to"] = reply_to;
  Reply(device, sub, "error", std::move(body));
}

namespace {

// The check-in body for a property report or an otaCheck's params: versions (or one "version"
// for the device type's first module) and attributes.
json CheckInBody(const json& p) {
  json body = json::object();
  for (const char* k : {"versions", "version", "attributes"}) {
    if (p.contains(k)) body[k] = p[k];
  }
  return body;
}

}  // namespace

void PushBridge::Handle(const mqtt::Message& m) {
  auto parts = mqtt::ParseUpTopic(m.topic);
  if (!parts) return;  // not ours (the subscription makes this impossible)
  const std::string& from = parts->device;
  std::optional<std::string> sub;
  json reply_to;  // an event's "id": its error report answers it, as its command would
  auto error = [&](std::string_view code, const std::string& message) {
    ReplyError(from, sub, m.topic, code, message, reply_to);
  };
  if (m.payload.size() > o_.max_message_bytes) {
    return error("invalid-argument", "the message has " + std::to_string(m.payload.size()) +
                                         " bytes; this server takes at most " +
                                         std::to_string(o_.max_message_bytes));
  }
  json j = json::parse(m.payload, nullptr, false);
  if (j.is_discarded()) return error("invalid-argument", "the message is not JSON");
  if (!j.is_object()) {
    return error("invalid-argument",
                 std::string("the message must be a JSON object, not ") + j.type_name());
  }
  std::string device = from;
  if (j.contains("device")) {
    // A gateway speaking for a sub-device: {"device": "<name>", "event": {...}}.
    if (!j["device"].is_string()) return error("invalid-argument", "'device' must be a string");
    std::string name = j["device"].get<std::string>();
    if (!j.contains("event") || !j["event"].is_object()) {
      return error("invalid-argument", "a gateway's message needs an 'event' object");
    }
    std::optional<std::string> gateway;
    Status s = store_.Read([&](Tx& tx) -> Status {
      ALOFT_ASSIGN_OR_RETURN(Device d, tx.GetDevice(name));
      gateway = d.gateway;
      return OkStatus();
    });
    if (!s.ok()) {
      return error(CodeName(s.error().code()), s.error().code() == Code::kNotFound
                                                   ? "unknown device '" + name + "'"
                                                   : s.error().message());
    }
    if (gateway != from) {
      return error("permission-denied",
                   "device '" + name + "' is not behind gateway '" + from + "'");
    }
    device = name;
    sub = name;  // from here on, answers name the sub-device
    json event = std::move(j["event"]);
    j = std::move(event);
  }
  auto call = [&](const std::string& method, const std::string& path,
                  const json& body) -> std::optional<json> {
    Call c = hooks_.call(device, method, path, DumpJson(body));
    json out = json::parse(c.body, nullptr, false);
    if (c.status >= 200 && c.status < 300) return out;
    std::string code = out.is_object() ? out.value("error", "error") : "error";
    std::string message = out.is_object() ? out.value("message", c.body) : c.body;
    error(code, message);
    return std::nullopt;
  };
  const std::string base = "/device/v1/" + device;
  if (parts->kind == "property") {
    (void)call("POST", base + "/check-in", CheckInBody(j));
  } else if (parts->kind == "event") {
    if (j.contains("id")) reply_to = j["id"];
    if (!j.contains("method") || !j["method"].is_string()) {
      return error("invalid-argument", "an event needs a 'method' string (e.g. \"otaCheck\")");
    }
    const std::string method = j["method"].get<std::string>();
    if (method != "otaCheck") {
      return error("invalid-argument", "unknown method '" + method + "' (known: otaCheck)");
    }
    json params = j.contains("params") ? j["params"] : json::object();
    if (!params.is_object()) return error("invalid-argument", "'params' must be an object");
    auto answer = call("POST", base + "/check-in", CheckInBody(params));
    if (!answer) return;
    json command = CommandFor(answer->contains("action") ? (*answer)["action"] : json());
    if (j.contains("id")) command["reply_to"] = j["id"];
    counters_.commands.fetch_add(1, std::memory_order_relaxed);
    Reply(from, sub, "command", std::move(command));
  } else if (parts->kind == "report") {
    if (!j.contains("id") || !j["id"].is_number_integer()) {
      return error("invalid-argument", "a report needs the action's 'id' (an integer)");
    }
    const int64_t id = j["id"].get<int64_t>();
    json body = j;
    body.erase("id");
    (void)call("POST", base + "/actions/" + std::to_string(id) + "/feedback", body);
  } else {
    error("invalid-argument",
          "unknown topic '" + parts->kind + "' (known: property, event, report)");
  }
}

Result<int> PushBridge::PushDue(int64_t now_ms) {
  if (!client_) return 0;
  int published = 0;
  int64_t after = 0;
  for (;;) {
    std::vector<int64_t> clear;
    {
      std::lock_guard lock(push_mu_);
      clear.swap(acked_);
    }
    std::vector<DuePush> due;
    ALOFT_RETURN_IF_ERROR(store_.Write([&](Tx& tx) -> Status {
      if (!clear.empty()) ALOFT_RETURN_IF_ERROR(tx.ClearPushes(clear));
      ALOFT_ASSIGN_OR_RETURN(due, tx.DuePushes(now_ms, after, 1000));
      return OkStatus();
    }));
    for (const DuePush& p : due) {
      after = p.action;
      {
        std::lock_guard lock(push_mu_);
        if (!in_flight_.insert(p.action).second) continue;  // published, awaiting its PUBACK
      }
      auto done = [this, id = p.action] {
        std::lock_guard lock(push_mu_);
        in_flight_.erase(id);
        acked_.push_back(id);
      };
      auto action = hooks_.offer(p.device);
      if (!action.ok() || !action->is_object() || action->value("id", int64_t{0}) != p.action) {
        done();  // closed or replaced meanwhile: nothing to push
        continue;
      }
      json command = CommandFor(*action);
      if (p.gateway) command = {{"device", p.device}, {"command", std::move(command)}};
      Status s = client_->Publish(mqtt::DownTopic(p.gateway.value_or(p.device), "command"),
                                  DumpJson(command), 1, done);
      if (!s.ok()) {
        std::lock_guard lock(push_mu_);
        in_flight_.erase(p.action);
        return s.error();
      }
      ++published;
      counters_.pushed.fetch_add(1, std::memory_order_relaxed);
    }
    if (due.size() < 1000) break;
  }
  return published;
}

}  // namespace aloft::server
