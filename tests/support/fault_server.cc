#include "support/fault_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <stdexcept>

namespace aloft::testing {
namespace {

bool SendAll(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

std::string Lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

FaultServer::FaultServer() {
  listen_fd_ = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      listen(listen_fd_, 64) != 0) {
    throw std::runtime_error("FaultServer: bind/listen failed");
  }
  socklen_t len = sizeof a;
  getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
  port_ = ntohs(a.sin_port);
  thread_ = std::thread([this] { Accept(); });
}

FaultServer::~FaultServer() {
  stop_ = true;
  shutdown(listen_fd_, SHUT_RDWR);
  thread_.join();
  close(listen_fd_);
}

void FaultServer::SetArtifact(Bytes bytes) {
  std::lock_guard lock(mu_);
  artifact_ = std::move(bytes);
}

void FaultServer::SetAction(nlohmann::json action) {
  std::lock_guard lock(mu_);
  action_ = std::move(action);
}

void FaultServer::SetFile(const std::string& path, std::string bytes, bool endless) {
  std::lock_guard lock(mu_);
  files_[path] = {std::move(bytes), endless};
}

void FaultServer::SetCheckInExtra(nlohmann::json extra) {
  std::lock_guard lock(mu_);
  check_in_extra_ = std::move(extra);
}

std::vector<nlohmann::json> FaultServer::check_in_bodies() const {
  std::lock_guard lock(mu_);
  return check_in_bodies_;
}

void FaultServer::QueueFault(Fault f, uint64_t at) {
  std::lock_guard lock(mu_);
  faults_.emplace_back(f, at);
}

void FaultServer::RefuseFeedback(const std::string& status, int http_status, std::string message) {
  std::lock_guard lock(mu_);
  if (http_status == 0) {
    refusals_.erase(status);
  } else {
    refusals_[status] = {http_status, std::move(message)};
  }
}

std::vector<nlohmann::json> FaultServer::feedback() const {
  std::lock_guard lock(mu_);
  return feedback_;
}

void FaultServer::Accept() {
  while (!stop_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    int fd = accept(listen_fd_, nullptr, nullptr);
    if (fd < 0) continue;
    // A thread per connection: the agent posts feedback while a download is open.
    std::lock_guard lock(mu_);
    workers_.emplace_back([this, fd] {
      Serve(fd);
      close(fd);
    });
  }
  std::vector<std::thread> workers;
  {
    std::lock_guard lock(mu_);
    workers.swap(workers_);
  }
  for (auto& t : workers) t.join();
}

void FaultServer::Serve(int fd) {
  std::string in;
  char buf[8192];
  size_t head_end;
  while ((head_end = in.find("\r\n\r\n")) == std::string::npos) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 5000) <= 0) return;
    ssize_t r = recv(fd, buf, sizeof buf, 0);
    if (r <= 0) return;
    in.append(buf, static_cast<size_t>(r));
  }
  std::string head = in.substr(0, head_end);
  std::string method = head.substr(0, head.find(' '));
  size_t p1 = head.find(' ') + 1;
  std::string path = head.substr(p1, head.find(' ', p1) - p1);
  std::string range;
  size_t content_length = 0;
  for (size_t pos = head.find("\r\n"); pos != std::string::npos;) {
    size_t next = head.find("\r\n", pos + 2);
    std::string line =
        head.substr(pos + 2, next == std::string::npos ? std::string::npos : next - pos - 2);
    size_t colon = line.find(':');
    if (colon != std::string::npos) {
      std::string name = Lower(line.substr(0, colon));
      std::string value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.erase(0, 1);
      if (name == "range") range = value;
      if (name == "content-length") content_length = std::stoul(value);
    }
    pos = next;
  }
  std::string body = in.substr(head_end + 4);
  while (body.size() < content_length) {
    ssize_t r = recv(fd, buf, sizeof buf, 0);
    if (r <= 0) return;
    body.append(buf, static_cast<size_t>(r));
  }
  auto reply = [&](int status, const std::string& type, const std::string& text) {
    std::string h = "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Type: " + type +
                    "\r\nContent-Length: " + std::to_string(text.size()) +
                    "\r\nConnection: close\r\n\r\n" + text;
    SendAll(fd, h.data(), h.size());
  };

  if (method == "POST" && path.ends_with("/check-in")) {
    ++check_ins_;
    std::lock_guard lock(mu_);
    check_in_bodies_.push_back(nlohmann::json::parse(body, nullptr, false));
    nlohmann::json j = {{"device", "dev"}, {"poll_interval_s", 30}, {"action", action_}};
    j.update(check_in_extra_);
    reply(200, "application/json", j.dump());
    return;
  }
  if (method == "GET" && !path.starts_with("/device/")) {
    std::pair<std::string, bool> file;
    bool found = false;
    {
      std::lock_guard lock(mu_);
      if (auto it = files_.find(path); it != files_.end()) {
        file = it->second;
        found = true;
      }
    }
    if (!found) {
      reply(404, "application/json", R"({"error":"not-found","message":"no such file"})");
      return;
    }
    if (!file.second) {
      reply(200, "application/json", file.first);
      return;
    }
    // Endless: a response without a length, the same bytes until the client hangs up.
    const std::string h =
        "HTTP/1.1 200 X\r\nContent-Type: application/json\r\nConnection: "
        "close\r\n\r\n";
    if (!SendAll(fd, h.data(), h.size())) return;
    for (int i = 0; i < 1'000'000 && !stop_; ++i) {
      if (!SendAll(fd, file.first.data(), file.first.size())) return;
    }
    return;
  }
  if (method == "POST" && path.ends_with("/feedback")) {
    nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
    std::optional<std::pair<int, std::string>> refused;
    {
      std::lock_guard lock(mu_);
      feedback_.push_back(j);
      auto it = refusals_.find(j.is_object() ? j.value("status", "") : "");
      if (it != refusals_.end()) refused = it->second;
    }
    if (refused) {
      reply(refused->first, "application/json",
            nlohmann::json({{"error", "already-exists"}, {"message", refused->second}}).dump());
      return;
    }
    reply(200, "application/json", R"({"id":1,"state":"ok"})");
    return;
  }
  if (method != "GET" || !path.ends_with("/artifact")) {
    reply(404, "application/json", R"({"error":"not-found","message":"no such route"})");
    return;
  }
  ++artifact_requests_;
  Bytes artifact;
  std::optional<std::pair<Fault, uint64_t>> fault;
  {
    std::lock_guard lock(mu_);
    artifact = artifact_;
    if (!faults_.empty()) {
      fault = faults_.front();
      faults_.pop_front();
    }
  }
  if (fault && fault->first == Fault::kStatus503) {
    reply(503, "application/json", R"({"error":"unavailable","message":"try later"})");
    return;
  }
  uint64_t from = 0;
  bool partial = false;
  unsigned long long a = 0;
  if (!range.empty() && !(fault && fault->first == Fault::kIgnoreRange) &&
      std::sscanf(range.c_str(), "bytes=%llu-", &a) == 1) {
    if (a >= artifact.size()) {
      std::string h = "HTTP/1.1 416 X\r\nContent-Range: bytes */" +
                      std::to_string(artifact.size()) +
                      "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
      SendAll(fd, h.data(), h.size());
      return;
    }
    from = a;
    partial = true;
  }
  const uint64_t length = artifact.size() - from;
  std::string h = partial ? "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes " +
                                std::to_string(from) + "-" + std::to_string(artifact.size() - 1) +
                                "/" + std::to_string(artifact.size()) + "\r\n"
                          : std::string("HTTP/1.1 200 OK\r\n");
  h += "Content-Type: application/octet-stream\r\nContent-Length: " + std::to_string(length) +
       "\r\nETag: \"x\"\r\nConnection: close\r\n\r\n";
  if (!SendAll(fd, h.data(), h.size())) return;
  uint64_t limit = length;
  if (fault && fault->first != Fault::kIgnoreRange) limit = std::min(length, fault->second);
  const char* data = reinterpret_cast<const char*>(artifact.data() + from);
  for (uint64_t sent = 0; sent < limit;) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(64 * 1024, limit - sent));
    if (!SendAll(fd, data + sent, n)) return;
    sent += n;
    body_sent_ += n;
  }
  if (!fault || fault->first == Fault::kIgnoreRange) return;
  if (fault->first == Fault::kReset) {
    linger l{1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  } else if (fault->first == Fault::kStall) {
    // Hold the connection open without sending until the client hangs up (or 10 s).
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!stop_ && std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, 100) > 0 && recv(fd, buf, sizeof buf, 0) <= 0) break;
    }
  }
}

}  // namespace aloft::testing
