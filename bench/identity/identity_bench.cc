// What TLS and device certificates cost a check-in (bench/identity.sh, docs/identity.md): devices
// seeded by aloft_bench_seed (bench-000000..., tokens aloft_d_bench000000...) check in with one
// aloftd for SECONDS, CONNECTIONS at a time, each connection one device, in one MODE:
//   plain-token   HTTP, Authorization: Bearer
//   tls-token     HTTPS, Authorization: Bearer
//   tls-cert      HTTPS with the device's certificate, no token
// over keep-alive connections (KEEP=1) or a new connection, with its TLS handshake, per check-in
// (KEEP=0). The devices' certificates are issued here, in memory, by the CA in CA_DIR (ca.key,
// ca.crt: what aloftd's device_ca_file names). Prints one line: mode, check-ins/s, refused.
//
// Usage: aloft_bench_identity PORT MODE KEEP DEVICES SECONDS CONNECTIONS CA_DIR SERVER_CRT
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "crypto/keys.h"
#include "crypto/x509.h"

namespace {

using Clock = std::chrono::steady_clock;

int g_port = 0;
SSL_CTX* g_ctx = nullptr;  // null: plain HTTP

struct Device {
  std::string name, token;
  X509* cert = nullptr;
  EVP_PKEY* key = nullptr;
};

// One HTTP/1.1 connection to 127.0.0.1:g_port, over TLS when g_ctx is set (with `d`'s
// certificate when `with_cert`).
class Conn {
 public:
  Conn(const Device& d, bool with_cert) : d_(d), with_cert_(with_cert) {}
  ~Conn() { Reset(); }
  // The status of one check-in; -1 on a broken connection (it reconnects next time).
  int CheckIn() {
    if (fd_ < 0 && !Connect()) return -1;
    static const std::string kBody = R"({"versions":{"main":"1.0.0"}})";
    std::string req = "POST /device/v1/" + d_.name + "/check-in HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    if (!with_cert_) req += "Authorization: Bearer " + d_.token + "\r\n";
    req += "Content-Type: application/json\r\nContent-Length: " + std::to_string(kBody.size()) +
           "\r\n\r\n" + kBody;
    if (!Write(req)) return -1;
    size_t end;
    while ((end = buf_.find("\r\n\r\n")) == std::string::npos) {
      if (!Fill()) return -1;
    }
    const std::string head = buf_.substr(0, end);
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
    buf_.erase(0, length);
    return status;
  }
  void Reset() {
    if (ssl_) {
      SSL_free(ssl_);
      ssl_ = nullptr;
    }
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
    buf_.clear();
  }

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
    if (!g_ctx) return true;
    ssl_ = SSL_new(g_ctx);
    SSL_set_fd(ssl_, fd_);
    if (with_cert_) {
      SSL_use_certificate(ssl_, d_.cert);
      SSL_use_PrivateKey(ssl_, d_.key);
    }
    if (SSL_connect(ssl_) != 1) {
      ERR_clear_error();
      Reset();
      return false;
    }
    return true;
  }
  bool Write(const std::string& s) {
    const bool ok =
        ssl_ ? SSL_write(ssl_, s.data(), static_cast<int>(s.size())) == static_cast<int>(s.size())
             : send(fd_, s.data(), s.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(s.size());
    if (!ok) Reset();
    return ok;
  }
  bool Fill() {
    char tmp[16384];
    const long n = ssl_ ? SSL_read(ssl_, tmp, sizeof tmp) : recv(fd_, tmp, sizeof tmp, 0);
    if (n <= 0) {
      ERR_clear_error();
      Reset();
      return false;
    }
    buf_.append(tmp, static_cast<size_t>(n));
    return true;
  }

  const Device& d_;
  bool with_cert_;
  int fd_ = -1;
  SSL* ssl_ = nullptr;
  std::string buf_;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 9) {
    std::fprintf(stderr,
                 "usage: aloft_bench_identity PORT MODE KEEP DEVICES SECONDS CONNECTIONS CA_DIR "
                 "SERVER_CRT\n");
    return 2;
  }
  g_port = std::atoi(argv[1]);
  const std::string mode = argv[2];
  const bool keep = std::atoi(argv[3]) != 0;
  const int devices = std::atoi(argv[4]);
  const int seconds = std::atoi(argv[5]);
  const int connections = std::atoi(argv[6]);
  const std::string ca_dir = argv[7], server_crt = argv[8];
  const bool with_cert = mode == "tls-cert";
  if (mode != "plain-token" && mode != "tls-token" && !with_cert) {
    std::fprintf(stderr, "MODE: plain-token, tls-token or tls-cert\n");
    return 2;
  }
  if (mode != "plain-token") {
    g_ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_load_verify_locations(g_ctx, server_crt.c_str(), nullptr);
    SSL_CTX_set_verify(g_ctx, SSL_VERIFY_PEER, nullptr);
    SSL_CTX_set_session_cache_mode(g_ctx, SSL_SESS_CACHE_OFF);  // a full handshake each time
  }
  // The devices; with certificates, each its own P-256 key and certificate from the CA.
  std::vector<Device> all(static_cast<size_t>(devices));
  std::unique_ptr<aloft::crypto::PrivateKey> ca_key;
  std::unique_ptr<aloft::crypto::Certificate> ca_cert;
  if (with_cert) {
    auto k = aloft::crypto::PrivateKey::Load(ca_dir + "/ca.key");
    auto c = aloft::crypto::Certificate::Load(ca_dir + "/ca.crt");
    if (!k.ok() || !c.ok()) {
      std::fprintf(stderr, "cannot read the CA in %s\n", ca_dir.c_str());
      return 1;
    }
    ca_key = std::make_unique<aloft::crypto::PrivateKey>(std::move(*k));
    ca_cert = std::make_unique<aloft::crypto::Certificate>((*c)[0]);
  }
  std::vector<std::pair<aloft::crypto::PrivateKey, aloft::crypto::Certificate>> owned;
  owned.reserve(all.size());
  const auto now = std::chrono::system_clock::now();
  for (int i = 0; i < devices; ++i) {
    char name[32], token[48];
    std::snprintf(name, sizeof name, "bench-%06d", i);
    std::snprintf(token, sizeof token, "aloft_d_bench%06d", i);
    Device& d = all[static_cast<size_t>(i)];
    d.name = name;
    d.token = token;
    if (!with_cert) continue;
    auto key = aloft::crypto::PrivateKey::Generate(aloft::crypto::KeyType::kEcdsaP256).value();
    auto cert = aloft::crypto::Certificate::Issue({.common_name = name,
                                                   .not_before = now - std::chrono::hours(1),
                                                   .not_after = now + std::chrono::hours(24),
                                                   .tls_client = true},
                                                  key.public_key(), ca_cert.get(), *ca_key)
                    .value();
    owned.emplace_back(std::move(key), std::move(cert));
    d.cert = owned.back().second.native();
    d.key = owned.back().first.native();
  }
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> ok{0}, refused{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < connections; ++t) {
    threads.emplace_back([&, t] {
      uint64_t mine = 0, bad = 0;
      size_t next = static_cast<size_t>(t);
      std::unique_ptr<Conn> conn;
      while (!stop.load(std::memory_order_relaxed)) {
        if (!conn || !keep) {
          conn = std::make_unique<Conn>(all[next % all.size()], with_cert);
          next += static_cast<size_t>(connections);
        }
        const int status = conn->CheckIn();
        if (status == 200) {
          ++mine;
        } else {
          ++bad;
          conn.reset();
        }
      }
      ok += mine;
      refused += bad;
    });
  }
  const auto start = Clock::now();
  std::this_thread::sleep_for(std::chrono::seconds(seconds));
  stop = true;
  for (auto& th : threads) th.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf("%s %s %.0f %llu\n", mode.c_str(), keep ? "keep-alive" : "new-connection",
              static_cast<double>(ok.load()) / elapsed,
              static_cast<unsigned long long>(refused.load()));
  if (g_ctx) SSL_CTX_free(g_ctx);
  return 0;
}
