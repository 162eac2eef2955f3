#include "support/test_broker.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "core/file.h"
#include "mqtt/client.h"

namespace aloft::testing {
namespace {

// Runs a command; its stdout, or an error with its exit status.
Result<std::string> Run(const std::string& command) {
  FILE* p = ::popen(command.c_str(), "r");
  if (!p) return ErrnoError("running " + command, errno);
  std::string out;
  char buf[256];
  while (size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  int status = ::pclose(p);
  if (status != 0) {
    return Error(Code::kUnavailable, command + " failed (status " + std::to_string(status) + ")");
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

std::string Script() { return std::string(ALOFT_SOURCE_DIR) + "/scripts/mqtt.sh"; }

size_t CountReloads(const std::string& log) {
  std::ifstream in(log);
  std::string line;
  size_t n = 0;
  while (std::getline(in, line)) {
    for (size_t at = line.find("Reloading config."); at != std::string::npos;
         at = line.find("Reloading config.", at + 1)) {
      ++n;
    }
  }
  return n;
}

}  // namespace

uint16_t FreeLoopbackPort() {
  static std::mt19937 rng(static_cast<unsigned>(::getpid()) ^ std::random_device{}());
  for (int attempt = 0; attempt < 1000; ++attempt) {
    uint16_t port = static_cast<uint16_t>(20000 + rng() % 12000);
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool free = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    if (free) return port;
  }
  return 0;
}

Status TestBroker::Start(bool tls, const std::string& device_ca) {
  port_ = FreeLoopbackPort();
  std::string cmd = Script() + " start '" + dir_ + "' " + std::to_string(port_);
  uint16_t tls_port = 0, cert_port = 0;
  if (tls) {
    do {
      tls_port = FreeLoopbackPort();
    } while (tls_port == port_);
    cmd += " " + std::to_string(tls_port);
  }
  if (tls && !device_ca.empty()) {
    do {
      cert_port = FreeLoopbackPort();
    } while (cert_port == tls_port || cert_port == port_);
    cmd += " " + std::to_string(cert_port) + " '" + device_ca + "'";
  }
  ALOFT_ASSIGN_OR_RETURN(url_, Run(cmd + " 2>&1"));
  if (tls) tls_url_ = "mqtts://127.0.0.1:" + std::to_string(tls_port);
  if (cert_port) cert_url_ = "mqtts://127.0.0.1:" + std::to_string(cert_port);
  running_ = true;
  return OkStatus();
}

Status TestBroker::Restart() {
  ALOFT_ASSIGN_OR_RETURN(url_, Run(Script() + " restart '" + dir_ + "' 2>&1"));
  running_ = true;
  return OkStatus();
}

void TestBroker::Stop() {
  if (!running_) return;
  (void)Run(Script() + " stop '" + dir_ + "' 2>&1");
  running_ = false;
}

Status TestBroker::Reload() {
  const std::string log = dir_ + "/mosquitto.log";
  const size_t before = CountReloads(log);
  ALOFT_ASSIGN_OR_RETURN(std::string pid_text, ReadFile(pid_file()));
  pid_t pid = static_cast<pid_t>(std::stol(pid_text));
  // Mosquitto clears its reload flag after reloading, so a SIGHUP that lands during a reload
  // (one just asked for) is lost: ask again each second until the log shows a new reload.
  for (int i = 0; i < 500; ++i) {
    if (i % 100 == 0 && ::kill(pid, SIGHUP) != 0) return ErrnoError("signalling the broker", errno);
    if (CountReloads(log) > before) return OkStatus();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return Error(Code::kUnavailable, "the broker did not reload within 5 s");
}

Status TestBroker::AddUsers(const std::vector<std::pair<std::string, std::string>>& users) {
  std::ofstream out(passwd_file(), std::ios::app);
  for (const auto& [name, password] : users) {
    out << name << ":" << mqtt::PasswordHash(password) << "\n";
  }
  out.close();
  if (!out) return Error(Code::kInternal, "appending to " + passwd_file());
  return Reload();
}

Status TestBroker::SetAcl(const std::string& text) {
  ALOFT_RETURN_IF_ERROR(WriteFileAtomic(acl_file(), text, 0600));
  return Reload();
}

MqttProbe::MqttProbe(const std::string& url, const std::string& user, const std::string& password,
                     std::vector<std::string> subscriptions, bool clean_session,
                     std::string client_id) {
  mqtt::ClientOptions o;
  o.url = url;
  o.username = user;
  o.password = password;
  o.clean_session = clean_session;
  o.reconnect_max = std::chrono::seconds(2);
  o.client_id = client_id.empty() && !clean_session ? user : client_id;
  const bool subscribes = !subscriptions.empty();
  o.subscriptions = std::move(subscriptions);
  mqtt::Handlers h;
  h.on_message = [this](const mqtt::Message& m) {
    std::lock_guard lock(mu_);
    messages_.push_back(m);
    cv_.notify_all();
  };
  h.on_connect = [this, subscribes](bool) {
    if (subscribes) return;  // connected once subscribed
    std::lock_guard lock(mu_);
    ++connects_;
    cv_.notify_all();
  };
  h.on_subscribed = [this] {
    std::lock_guard lock(mu_);
    ++connects_;
    cv_.notify_all();
  };
  h.on_disconnect = [this](const std::string& why) {
    std::lock_guard lock(mu_);
    ++refusals_;
    refusal_ = why;
    cv_.notify_all();
  };
  client_ = mqtt::NewClient(std::move(o), std::move(h));
}

MqttProbe::~MqttProbe() { client_->Stop(); }

Status MqttProbe::Connect() {
  ALOFT_RETURN_IF_ERROR(client_->Start());
  std::unique_lock lock(mu_);
  if (!cv_.wait_for(lock, std::chrono::seconds(10),
                    [&] { return connects_ > 0 || refusals_ > 0; })) {
    return Error(Code::kUnavailable, "no answer from the broker within 10 s");
  }
  if (connects_ == 0) return Error(Code::kPermissionDenied, refusal_);
  return OkStatus();  // and subscribed, when it subscribes
}

Status MqttProbe::Publish(const std::string& topic, const std::string& payload) {
  auto acked = std::make_shared<std::pair<std::mutex, std::condition_variable>>();
  auto done = std::make_shared<bool>(false);
  ALOFT_RETURN_IF_ERROR(client_->Publish(topic, payload, 1, [acked, done] {
    std::lock_guard lock(acked->first);
    *done = true;
    acked->second.notify_all();
  }));
  std::unique_lock lock(acked->first);
  if (!acked->second.wait_for(lock, std::chrono::seconds(10), [&] { return *done; })) {
    return Error(Code::kUnavailable, "no PUBACK for " + topic + " within 10 s");
  }
  return OkStatus();
}

std::optional<mqtt::Message> MqttProbe::Next(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  if (!cv_.wait_for(lock, timeout, [&] { return !messages_.empty(); })) return std::nullopt;
  mqtt::Message m = std::move(messages_.front());
  messages_.pop_front();
  return m;
}

std::optional<mqtt::Message> MqttProbe::NextOn(const std::string& topic,
                                               std::chrono::milliseconds timeout) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        end - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    auto m = Next(left);
    if (!m) return std::nullopt;
    if (m->topic == topic) return m;
  }
}

}  // namespace aloft::testing
