#include "net/socket.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace aloft::net {

void Fd::Reset() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

std::string Endpoint::ToString() const {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

Result<Endpoint> ParseEndpoint(std::string_view text) {
  Endpoint e;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return Error(Code::kInvalidArgument,
                   "address '" + std::string(text) + "': expected [host]:port");
    }
    e.host = std::string(text.substr(1, close - 1));
    port = text.substr(close + 2);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos || colon == 0) {
      return Error(Code::kInvalidArgument,
                   "address '" + std::string(text) + "': expected host:port");
    }
    e.host = std::string(text.substr(0, colon));
    port = text.substr(colon + 1);
  }
  unsigned value = 0;
  if (port.empty() || port.size() > 5) {
    return Error(Code::kInvalidArgument, "address '" + std::string(text) + "': bad port");
  }
  for (char c : port) {
    if (c < '0' || c > '9') {
      return Error(Code::kInvalidArgument, "address '" + std::string(text) + "': bad port");
    }
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  if (value > 65535) {
    return Error(Code::kInvalidArgument, "address '" + std::string(text) + "': port above 65535");
  }
  if (e.host == "localhost") e.host = "127.0.0.1";
  e.port = static_cast<uint16_t>(value);
  return e;
}

Result<std::pair<sockaddr_storage, socklen_t>> ToSockaddr(const Endpoint& e) {
  sockaddr_storage ss{};
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
  if (::inet_pton(AF_INET, e.host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(e.port);
    return std::make_pair(ss, static_cast<socklen_t>(sizeof(sockaddr_in)));
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (::inet_pton(AF_INET6, e.host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(e.port);
    return std::make_pair(ss, static_cast<socklen_t>(sizeof(sockaddr_in6)));
  }
  return Error(Code::kInvalidArgument,
               "address '" + e.host + "': not a numeric IPv4 or IPv6 address");
}

Endpoint FromSockaddr(const sockaddr* sa) {
  Endpoint e;
  char buf[INET6_ADDRSTRLEN] = {};
  if (sa->sa_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(sa);
    ::inet_ntop(AF_INET, &v4->sin_addr, buf, sizeof buf);
    e.port = ntohs(v4->sin_port);
  } else if (sa->sa_family == AF_INET6) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(sa);
    ::inet_ntop(AF_INET6, &v6->sin6_addr, buf, sizeof buf);
    e.port = ntohs(v6->sin6_port);
  }
  e.host = buf;
  return e;
}

namespace {

Result<Endpoint> NameOf(int fd, bool peer) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  const int rc = peer ? ::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len)
                      : ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  if (rc != 0) return ErrnoError(peer ? "getpeername" : "getsockname", errno);
  return FromSockaddr(reinterpret_cast<sockaddr*>(&ss));
}

}  // namespace

Result<Endpoint> LocalEndpoint(int fd) { return NameOf(fd, false); }
Result<Endpoint> PeerEndpoint(int fd) { return NameOf(fd, true); }

Result<Fd> ListenTcp(const Endpoint& at, int backlog) {
  ALOFT_ASSIGN_OR_RETURN(auto sa, ToSockaddr(at));
  Fd fd(::socket(sa.first.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return ErrnoError("socket", errno);
  int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa.first), sa.second) != 0) {
    return ErrnoError("listening on " + at.ToString(), errno);
  }
  if (::listen(fd.get(), backlog) != 0) return ErrnoError("listen on " + at.ToString(), errno);
  return fd;
}

Result<Fd> ConnectTcp(const Endpoint& to, std::chrono::milliseconds timeout) {
  ALOFT_ASSIGN_OR_RETURN(auto sa, ToSockaddr(to));
  Fd fd(::socket(sa.first.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid()) return ErrnoError("socket", errno);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa.first), sa.second) != 0) {
    if (errno != EINPROGRESS) return ErrnoError("connecting to " + to.ToString(), errno);
    pollfd p{fd.get(), POLLOUT, 0};
    const int n = ::poll(&p, 1, static_cast<int>(timeout.count()));
    if (n == 0) {
      return Error(Code::kUnavailable, "connecting to " + to.ToString() + ": timed out after " +
                                           std::to_string(timeout.count()) + " ms");
    }
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (n < 0 || err != 0) return ErrnoError("connecting to " + to.ToString(), n < 0 ? errno : err);
  }
  const int flags = ::fcntl(fd.get(), F_GETFL);
  ::fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK);
  (void)SetNoDelay(fd.get());
  return fd;
}

Result<Fd> BindUdp(const Endpoint& at) {
  ALOFT_ASSIGN_OR_RETURN(auto sa, ToSockaddr(at));
  Fd fd(::socket(sa.first.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return ErrnoError("socket", errno);
  int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  ::setsockopt(fd.get(), SOL_SOCKET, SO_BROADCAST, &one, sizeof one);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa.first), sa.second) != 0) {
    return ErrnoError("binding UDP " + at.ToString(), errno);
  }
  return fd;
}

Status SetNonBlocking(int fd) {
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) {
    return ErrnoError("fcntl O_NONBLOCK", errno);
  }
  return OkStatus();
}

Status SetNoDelay(int fd) {
  int one = 1;
  if (::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) {
    return ErrnoError("TCP_NODELAY", errno);
  }
  return OkStatus();
}

Status WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("send", errno);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return OkStatus();
}

}  // namespace aloft::net
