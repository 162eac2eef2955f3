// What Uptane costs a check-in (bench/trust.sh, docs/trust.md): devices seeded by
// aloft_bench_seed check in with aloftd over keep-alive HTTP, CONNECTIONS at a time, first as
// today (versions only), then as Uptane devices (a version manifest signed with the device's own
// Ed25519 key and a rising counter, the Director's metadata in the answer when newer), in
// alternating rounds of SECONDS each; then one device is given an update and the metadata bytes
// it receives are counted: the Director's part of the answer and the Image repository's files a
// device fetches for it.
//
// Usage: aloft_bench_trust PORT DEVICES SECONDS CONNECTIONS ADMIN_TOKEN RELEASE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "crypto/keys.h"
#include "tuf/metadata.h"

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

int g_port = 0;
std::mutex g_error_mu;
std::string g_first_error;  // the first refused check-in, for the report

// One keep-alive HTTP/1.1 connection to 127.0.0.1:g_port.
class Conn {
 public:
  ~Conn() {
    if (fd_ >= 0) close(fd_);
  }
  // The answer's status and body; -1 on a broken connection (it reconnects next time).
  int Call(const std::string& method, const std::string& path, const std::string& token,
           const std::string& body, std::string& out) {
    if (fd_ < 0 && !Connect()) return -1;
    std::string req = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    if (!token.empty()) req += "Authorization: Bearer " + token + "\r\n";
    if (!body.empty()) {
      req += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
             "\r\n";
    }
    req += "\r\n" + body;
    sent_ = req.size();
    if (send(fd_, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
      Reset();
      return -1;
    }
    // Headers, then Content-Length bytes.
    std::string head;
    size_t end;
    while ((end = buf_.find("\r\n\r\n")) == std::string::npos) {
      if (!Fill()) return -1;
    }
    head = buf_.substr(0, end);
    buf_.erase(0, end + 4);
    const int status = std::atoi(head.c_str() + 9);
    size_t length = 0;
    for (size_t p = 0; (p = head.find('\n', p)) != std::string::npos; ++p) {
      if (strncasecmp(head.c_str() + p + 1, "content-length:", 15) == 0) {
        length = std::strtoull(head.c_str() + p + 16, nullptr, 10);
      }
    }
    while (buf_.size() < length) {
      if (!Fill()) return -1;
    }
    out = buf_.substr(0, length);
    buf_.erase(0, length);
    received_ = head.size() + 4 + length;
    return status;
  }
  size_t sent() const { return sent_; }
  size_t received() const { return received_; }

 private:
  bool Connect() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(g_port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      Reset();
      return false;
    }
    return true;
  }
  bool Fill() {
    char tmp[65536];
    ssize_t n = recv(fd_, tmp, sizeof tmp, 0);
    if (n <= 0) {
      Reset();
      return false;
    }
    buf_.append(tmp, static_cast<size_t>(n));
    return true;
  }
  void Reset() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
    buf_.clear();
  }
  int fd_ = -1;
  std::string buf_;
  size_t sent_ = 0, received_ = 0;
};

struct Device {
  std::string name, token;
  std::shared_ptr<aloft::crypto::PrivateKey> key;
  int64_t counter = 0, timestamp = 0, root = 0;
};

std::string Name(int i) {
  char b[32];
  std::snprintf(b, sizeof b, "bench-%06d", i);
  return b;
}

// The Uptane check-in body of `d`: with a signed manifest (its counter raised) when
// `with_manifest`, as after a start or a change of what runs; else only what it holds.
std::string UptaneBody(Device& d, bool with_manifest, bool with_key = false) {
  json have = {{"root", d.root}, {"timestamp", d.timestamp}};
  if (!with_manifest) {
    return json({{"versions", {{"main", "1.0.0"}}}, {"uptane", {{"have", have}}}}).dump();
  }
  json m = {{"signed",
             {{"_type", "aloft-version-manifest"},
              {"device", d.name},
              {"counter", ++d.counter},
              {"ecus",
               {{d.name, {{"hardware_id", "bench-board"}, {"installed", {{"main", "1.0.0"}}}}}}}}},
            {"signatures", json::array()}};
  if (with_key) m["signed"]["public_key"] = aloft::tuf::KeyFromPublic(d.key->public_key())->object;
  if (!aloft::tuf::Sign(m, *d.key).ok()) std::abort();
  return json({{"versions", {{"main", "1.0.0"}}}, {"uptane", {{"manifest", m}, {"have", have}}}})
      .dump();
}

// The Director timestamp version an answer carries, or `was`.
int64_t TimestampOf(const std::string& answer, int64_t was) {
  json a = json::parse(answer, nullptr, false);
  if (!a.is_object() || !a.contains("director") || !a["director"].contains("timestamp")) return was;
  return json::parse(a["director"]["timestamp"].get<std::string>())["signed"]["version"];
}

struct Figures {
  double rps = 0, p50 = 0, p99 = 0, request = 0, response = 0;
  int64_t errors = 0;
};

enum class Mode { kNative, kUptane, kUptaneManifest };

Figures Run(std::vector<Device>& devices, int seconds, int connections, Mode mode) {
  const bool uptane = mode != Mode::kNative;
  std::atomic<int64_t> errors{0};
  std::mutex mu;
  std::vector<double> latencies;
  double request_bytes = 0, response_bytes = 0;
  const auto deadline = Clock::now() + std::chrono::seconds(seconds);
  std::vector<std::thread> threads;
  for (int t = 0; t < connections; ++t) {
    threads.emplace_back([&, t] {
      Conn c;
      std::vector<double> mine;
      double req = 0, res = 0;
      const std::string native = R"({"versions":{"main":"1.0.0"}})";
      std::string out;
      // Each device belongs to one connection: its counter rises in order.
      std::vector<Device*> own;
      for (size_t i = static_cast<size_t>(t); i < devices.size();
           i += static_cast<size_t>(connections)) {
        own.push_back(&devices[i]);
      }
      for (size_t k = 0; !own.empty() && Clock::now() < deadline; k = (k + 1) % own.size()) {
        Device& d = *own[k];
        const std::string body = uptane ? UptaneBody(d, mode == Mode::kUptaneManifest) : native;
        const auto start = Clock::now();
        const int status = c.Call("POST", "/device/v1/" + d.name + "/check-in", d.token, body, out);
        const double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
        if (status != 200) {
          ++errors;
          std::lock_guard lock(g_error_mu);
          if (g_first_error.empty()) g_first_error = std::to_string(status) + " " + out;
          continue;
        }
        if (uptane) d.timestamp = TimestampOf(out, d.timestamp);
        mine.push_back(ms);
        req += static_cast<double>(c.sent());
        res += static_cast<double>(c.received());
      }
      std::lock_guard lock(mu);
      latencies.insert(latencies.end(), mine.begin(), mine.end());
      request_bytes += req;
      response_bytes += res;
    });
  }
  for (auto& t : threads) t.join();
  Figures f;
  std::sort(latencies.begin(), latencies.end());
  const double n = static_cast<double>(latencies.size());
  f.rps = n / seconds;
  if (!latencies.empty()) {
    f.p50 = latencies[latencies.size() / 2];
    f.p99 = latencies[std::min(latencies.size() - 1, latencies.size() * 99 / 100)];
    f.request = request_bytes / n;
    f.response = response_bytes / n;
  }
  f.errors = errors;
  return f;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 7) {
    std::fprintf(stderr, "usage: %s PORT DEVICES SECONDS CONNECTIONS ADMIN_TOKEN RELEASE\n",
                 argv[0]);
    return 2;
  }
  g_port = std::atoi(argv[1]);
  const int n = std::atoi(argv[2]), seconds = std::atoi(argv[3]), connections = std::atoi(argv[4]);
  const std::string admin = argv[5], release = argv[6];
  std::vector<Device> devices(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    devices[i].name = Name(i);
    char token[48];
    std::snprintf(token, sizeof token, "aloft_d_bench%06d", i);
    devices[i].token = token;
    devices[i].key = std::make_shared<aloft::crypto::PrivateKey>(
        *aloft::crypto::PrivateKey::Generate(aloft::crypto::KeyType::kEd25519));
  }
  // Enrolment: each device's first manifest carries its key (not timed).
  {
    Conn c;
    std::string out;
    for (auto& d : devices) {
      if (c.Call("POST", "/device/v1/" + d.name + "/check-in", d.token, UptaneBody(d, true, true),
                 out) != 200) {
        std::fprintf(stderr, "enrolment of %s failed: %s\n", d.name.c_str(), out.c_str());
        return 1;
      }
      d.timestamp = TimestampOf(out, 0);
      d.root =
          static_cast<int64_t>(json::parse(out)["director"].value("roots", json::array()).size());
    }
  }
  std::printf(
      "| round | check-in | per second | p50 ms | p99 ms | request B | response B | errors |\n");
  std::printf("|---|---|---|---|---|---|---|---|\n");
  double native = 0, uptane = 0, signed_each = 0;
  Figures last_native, last_uptane;
  for (int round = 1; round <= 2; ++round) {
    for (Mode m : {Mode::kNative, Mode::kUptane, Mode::kUptaneManifest}) {
      Figures f = Run(devices, seconds, connections, m);
      const char* what = m == Mode::kNative   ? "native"
                         : m == Mode::kUptane ? "Uptane (nothing changed: no manifest)"
                                              : "Uptane, a new signed manifest each time";
      (m == Mode::kNative ? native : m == Mode::kUptane ? uptane : signed_each) += f.rps / 2;
      if (m == Mode::kNative) last_native = f;
      if (m == Mode::kUptane) last_uptane = f;
      std::printf("| %d | %s | %.0f | %.2f | %.2f | %.0f | %.0f | %lld |\n", round, what, f.rps,
                  f.p50, f.p99, f.request, f.response, static_cast<long long>(f.errors));
    }
  }
  std::printf("\nUptane / native check-ins per second (mean of 2 rounds): %.0f / %.0f = %.2f\n",
              uptane, native, native > 0 ? uptane / native : 0);
  if (!g_first_error.empty()) std::printf("first error: %s\n", g_first_error.c_str());
  std::printf("with a new signed manifest in every check-in: %.0f / %.0f = %.2f\n", signed_each,
              native, native > 0 ? signed_each / native : 0);
  std::printf("metadata bytes per check-in, nothing new: request +%.0f B, answer +%.0f B\n",
              last_uptane.request - last_native.request,
              last_uptane.response - last_native.response);

  // An update for device 0: the Director's part of its next answer, then the Image repository's
  // files it fetches (timestamp, snapshot, targets) as a device that trusts only root 1.
  Conn c;
  std::string out;
  json dep = {{"release", release}, {"devices", {devices[0].name}}};
  if (c.Call("POST", "/api/v1/deployments", admin, dep.dump(), out) != 201) {
    std::fprintf(stderr, "deployment failed: %s\n", out.c_str());
    return 1;
  }
  Device& d = devices[0];
  if (c.Call("POST", "/device/v1/" + d.name + "/check-in", d.token, UptaneBody(d, false), out) !=
      200) {
    std::fprintf(stderr, "update check-in failed: %s\n", out.c_str());
    return 1;
  }
  json answer = json::parse(out);
  const size_t director = answer["director"].dump().size();
  c.Call("GET", "/tuf/image/timestamp.json", "", "", out);
  size_t image = out.size();
  const json ts = json::parse(out);
  const int64_t snap = ts["signed"]["meta"]["snapshot.json"]["version"];
  c.Call("GET", "/tuf/image/" + std::to_string(snap) + ".snapshot.json", "", "", out);
  image += out.size();
  const int64_t targets = json::parse(out)["signed"]["meta"]["targets.json"]["version"];
  c.Call("GET", "/tuf/image/" + std::to_string(targets) + ".targets.json", "", "", out);
  image += out.size();
  std::printf(
      "metadata bytes for an update: Director %zu B in the answer, Image repository %zu B "
      "(timestamp, snapshot, targets), %zu B in all\n",
      director, image, director + image);
  return 0;
}
