#include "fleetsim/fault_proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <string>

namespace aloft::fleetsim {

namespace {

constexpr uint64_t kListenTag = 1ULL << 62, kWakeTag = 1ULL << 61;
constexpr size_t kBufferCap = 256 << 10;  // per direction: beyond it, reading waits

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

sockaddr_in Loopback(uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

// Reads what `fd` has into `to` (up to the cap). false: the peer closed (or failed).
bool ReadInto(int fd, std::string& to, bool& eof) {
  char buf[64 << 10];
  while (to.size() < kBufferCap) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      to.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n == 0) {
      eof = true;
      return true;
    }
    return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
  }
  return true;
}

// Writes what it can of `from` to `fd`. false: the peer is gone.
bool WriteFrom(int fd, std::string& from, uint64_t& bytes) {
  while (!from.empty()) {
    const ssize_t n = ::send(fd, from.data(), from.size(), MSG_NOSIGNAL);
    if (n > 0) {
      bytes += static_cast<uint64_t>(n);
      from.erase(0, static_cast<size_t>(n));
      continue;
    }
    return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
  }
  return true;
}

}  // namespace

struct FaultProxy::Conn {
  uint64_t id = 0;
  int cfd = -1, ufd = -1;  // the device's side, the server's side (-1: held by a cut)
  bool connecting = false;
  bool c_eof = false, u_eof = false, c_shut = false, u_shut = false;
  std::string c2u, u2c;
};

Result<std::unique_ptr<FaultProxy>> FaultProxy::Start(const std::vector<uint16_t>& upstreams) {
  std::unique_ptr<FaultProxy> p(new FaultProxy());
  p->upstreams_ = upstreams;
  p->epoll_ = ::epoll_create1(EPOLL_CLOEXEC);
  p->wake_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (p->epoll_ < 0 || p->wake_ < 0) return ErrnoError("the fault proxy's epoll", errno);
  epoll_event wev{.events = EPOLLIN, .data = {.u64 = kWakeTag}};
  ::epoll_ctl(p->epoll_, EPOLL_CTL_ADD, p->wake_, &wev);
  for (size_t k = 0; k < upstreams.size(); ++k) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return ErrnoError("the fault proxy's socket", errno);
    p->listen_fds_.push_back(fd);
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a = Loopback(0);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 1024) != 0) {
      return ErrnoError("the fault proxy's listening socket", errno);
    }
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    p->listen_ports_.push_back(ntohs(a.sin_port));
    epoll_event ev{.events = EPOLLIN, .data = {.u64 = kListenTag | k}};
    ::epoll_ctl(p->epoll_, EPOLL_CTL_ADD, fd, &ev);
  }
  p->thread_ = std::thread([raw = p.get()] { raw->Loop(); });
  return p;
}

FaultProxy::~FaultProxy() {
  stop_ = true;
  if (wake_ >= 0) {
    const uint64_t one = 1;
    (void)!::write(wake_, &one, sizeof one);
  }
  if (thread_.joinable()) thread_.join();
  while (!conns_.empty()) Close(conns_.begin()->first, false);
  for (int fd : listen_fds_) ::close(fd);
  if (wake_ >= 0) ::close(wake_);
  if (epoll_ >= 0) ::close(epoll_);
}

void FaultProxy::Cut(std::chrono::milliseconds duration) {
  const int64_t until = NowMs() + duration.count();
  int64_t was = cut_until_ms_.load();
  while (was < until && !cut_until_ms_.compare_exchange_weak(was, until)) {
  }
  const uint64_t one = 1;
  (void)!::write(wake_, &one, sizeof one);
}

FaultProxy::Counters FaultProxy::counters() const {
  std::lock_guard lock(mu_);
  return counters_;
}

void FaultProxy::Loop() {
  bool was_cutting = false;
  epoll_event events[256];
  while (!stop_) {
    const int n = ::epoll_wait(epoll_, events, 256, 50);
    const bool cutting = NowMs() < cut_until_ms_.load();
    if (cutting != was_cutting) {
      // A cut begins: live connections die. It ends: those held through it are reset.
      ResetAll(/*held=*/!cutting);
      was_cutting = cutting;
    }
    for (int e = 0; e < n; ++e) {
      const uint64_t tag = events[e].data.u64;
      if (tag == kWakeTag) {
        uint64_t v = 0;
        (void)!::read(wake_, &v, sizeof v);
      } else if (tag & kListenTag) {
        Accept(static_cast<size_t>(tag & ~kListenTag), cutting);
      } else {
        auto it = conns_.find(tag);
        if (it == conns_.end()) continue;  // closed earlier in this batch
        Conn& c = *it->second;
        if (c.ufd < 0) {  // held: the device gave up on it
          if (events[e].events & (EPOLLHUP | EPOLLERR | EPOLLRDHUP)) Close(c.id, false);
          continue;
        }
        Pump(c);
      }
    }
  }
}

void FaultProxy::Accept(size_t k, bool cutting) {
  for (;;) {
    const int cfd = ::accept4(listen_fds_[k], nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (cfd < 0) return;
    auto c = std::make_unique<Conn>();
    c->id = next_id_++;
    c->cfd = cfd;
    if (!cutting) {
      c->ufd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      sockaddr_in a = Loopback(upstreams_[k]);
      const int rc = ::connect(c->ufd, reinterpret_cast<sockaddr*>(&a), sizeof a);
      if (rc != 0 && errno != EINPROGRESS) {
        {
          std::lock_guard lock(mu_);
          ++counters_.refused;
        }
        ::close(c->ufd);
        linger l{1, 0};
        ::setsockopt(cfd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
        ::close(cfd);
        continue;
      }
      c->connecting = rc != 0;
      std::lock_guard lock(mu_);
      ++counters_.connections;
    }
    Conn& ref = *c;
    conns_[c->id] = std::move(c);
    // Held connections are watched only for the device hanging up.
    epoll_event cev{.events = ref.ufd < 0 ? static_cast<uint32_t>(EPOLLRDHUP) : 0u,
                    .data = {.u64 = ref.id}};
    ::epoll_ctl(epoll_, EPOLL_CTL_ADD, ref.cfd, &cev);
    if (ref.ufd >= 0) {
      epoll_event uev{.events = 0, .data = {.u64 = ref.id}};
      ::epoll_ctl(epoll_, EPOLL_CTL_ADD, ref.ufd, &uev);
      Watch(ref);
    }
  }
}

void FaultProxy::Pump(Conn& c) {
  if (c.connecting) {
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(c.ufd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      {
        std::lock_guard lock(mu_);
        ++counters_.refused;
      }
      return Close(c.id, true);
    }
    // Still in progress: a writable socket says it is done.
    pollfd p{c.ufd, POLLOUT, 0};
    if (::poll(&p, 1, 0) <= 0) return Watch(c);
    c.connecting = false;
  }
  uint64_t bytes = 0;
  bool ok = true;
  if (!c.c_eof) ok = ReadInto(c.cfd, c.c2u, c.c_eof) && ok;
  if (!c.u_eof) ok = ReadInto(c.ufd, c.u2c, c.u_eof) && ok;
  ok = WriteFrom(c.ufd, c.c2u, bytes) && ok;
  ok = WriteFrom(c.cfd, c.u2c, bytes) && ok;
  if (bytes) {
    std::lock_guard lock(mu_);
    counters_.bytes += bytes;
  }
  if (!ok) return Close(c.id, true);
  // A side that finished sending: its peer is told once everything before it went through.
  if (c.c_eof && c.c2u.empty() && !c.u_shut) {
    ::shutdown(c.ufd, SHUT_WR);
    c.u_shut = true;
  }
  if (c.u_eof && c.u2c.empty() && !c.c_shut) {
    ::shutdown(c.cfd, SHUT_WR);
    c.c_shut = true;
  }
  if (c.c_shut && c.u_shut) return Close(c.id, false);
  Watch(c);
}

void FaultProxy::Watch(Conn& c) {
  uint32_t cev = 0, uev = 0;
  if (!c.c_eof && c.c2u.size() < kBufferCap) cev |= EPOLLIN;
  if (!c.u2c.empty()) cev |= EPOLLOUT;
  if (c.connecting) {
    uev = EPOLLOUT;
  } else {
    if (!c.u_eof && c.u2c.size() < kBufferCap) uev |= EPOLLIN;
    if (!c.c2u.empty()) uev |= EPOLLOUT;
  }
  epoll_event a{.events = cev, .data = {.u64 = c.id}};
  epoll_event b{.events = uev, .data = {.u64 = c.id}};
  ::epoll_ctl(epoll_, EPOLL_CTL_MOD, c.cfd, &a);
  ::epoll_ctl(epoll_, EPOLL_CTL_MOD, c.ufd, &b);
}

void FaultProxy::Close(uint64_t id, bool reset) {
  auto it = conns_.find(id);
  if (it == conns_.end()) return;
  Conn& c = *it->second;
  for (int fd : {c.cfd, c.ufd}) {
    if (fd < 0) continue;
    if (reset) {
      linger l{1, 0};  // an RST, as when a link's state is lost
      ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    }
    ::close(fd);
  }
  conns_.erase(it);
}

void FaultProxy::ResetAll(bool held) {
  std::vector<uint64_t> ids;
  for (const auto& [id, c] : conns_) {
    if ((c->ufd < 0) == held) ids.push_back(id);
  }
  {
    std::lock_guard lock(mu_);
    counters_.reset += ids.size();
  }
  for (uint64_t id : ids) Close(id, true);
}

}  // namespace aloft::fleetsim
