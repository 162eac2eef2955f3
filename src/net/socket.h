// Plain TCP and UDP sockets for the vehicle network's peers (the socketcand bus hub, DoIP): file
// descriptors owned by a small RAII type, addresses as "host:port", errors as values.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "core/error.h"

namespace aloft::net {

// Owns a file descriptor; closes it when destroyed.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { Reset(); }
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      Reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  // Gives up ownership: the descriptor is the caller's to close.
  int Release() { return std::exchange(fd_, -1); }
  void Reset();

 private:
  int fd_ = -1;
};

struct Endpoint {
  std::string host;  // numeric: "127.0.0.1", "::1"
  uint16_t port = 0;
  std::string ToString() const;  // "127.0.0.1:13400", "[::1]:13400"
};

// "127.0.0.1:29536", "[::1]:13400", "localhost:80"; kInvalidArgument naming the text otherwise.
Result<Endpoint> ParseEndpoint(std::string_view text);

// A listening TCP socket on `at` (port 0: one the kernel picks; LocalEndpoint says which).
Result<Fd> ListenTcp(const Endpoint& at, int backlog = 64);
// A connected TCP socket, giving up after `timeout`.
Result<Fd> ConnectTcp(const Endpoint& to, std::chrono::milliseconds timeout);
// A UDP socket bound to `at`, broadcast allowed.
Result<Fd> BindUdp(const Endpoint& at);
Result<Endpoint> LocalEndpoint(int fd);
Result<Endpoint> PeerEndpoint(int fd);
// Resolves a numeric endpoint to a socket address.
Result<std::pair<sockaddr_storage, socklen_t>> ToSockaddr(const Endpoint& e);
Endpoint FromSockaddr(const sockaddr* sa);

Status SetNonBlocking(int fd);
Status SetNoDelay(int fd);
// Writes all of `data` to a blocking socket.
Status WriteAll(int fd, std::string_view data);

}  // namespace aloft::net
