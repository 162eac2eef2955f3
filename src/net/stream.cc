#include "net/stream.h"

#include <sys/socket.h>

#include <cerrno>

namespace aloft::net {

std::pair<std::unique_ptr<SimStream>, std::unique_ptr<SimStream>> SimStream::Pair(
    EventLoop& loop, uint64_t bit_rate, std::chrono::nanoseconds latency) {
  std::unique_ptr<SimStream> a(new SimStream(loop, bit_rate, latency, "sim:a"));
  std::unique_ptr<SimStream> b(new SimStream(loop, bit_rate, latency, "sim:b"));
  a->peer_ = b.get();
  b->peer_ = a.get();
  return {std::move(a), std::move(b)};
}

SimStream::~SimStream() {
  *alive_ = false;
  Close();
}

void SimStream::Write(Bytes data) {
  if (!open_ || !peer_) return;
  const auto wire = std::chrono::nanoseconds(
      static_cast<int64_t>(data.size() * 8 * 1'000'000'000ull / bit_rate_));
  busy_until_ = std::max(busy_until_, loop_.Now()) +
                std::chrono::duration_cast<EventLoop::TimePoint::duration>(wire);
  SimStream* to = peer_;
  std::weak_ptr<bool> peer_alive = to->alive_;
  loop_.At(busy_until_ + std::chrono::duration_cast<EventLoop::TimePoint::duration>(latency_),
           [to, peer_alive, data = std::move(data)] {
             if (peer_alive.expired() || !to->open_) return;
             if (to->on_data_) to->on_data_(data);
           });
}

void SimStream::Close() {
  if (!open_) return;
  open_ = false;
  SimStream* to = peer_;
  if (!to) return;
  peer_ = nullptr;
  to->peer_ = nullptr;
  std::weak_ptr<bool> peer_alive = to->alive_;
  // The far end hears of it after what was already on its way.
  loop_.At(std::max(busy_until_, loop_.Now()) +
               std::chrono::duration_cast<EventLoop::TimePoint::duration>(latency_),
           [to, peer_alive] {
             if (peer_alive.expired() || !to->open_) return;
             to->open_ = false;
             if (to->on_close_) to->on_close_();
           });
}

SocketStream::SocketStream(EventLoop& loop, Fd fd) : loop_(loop), fd_(std::move(fd)) {
  auto p = PeerEndpoint(fd_.get());
  peer_ = p.ok() ? p->ToString() : "?";
  reader_ = std::thread([this] { ReadLoop(); });
}

SocketStream::~SocketStream() {
  *alive_ = false;
  open_ = false;
  ::shutdown(fd_.get(), SHUT_RDWR);
  reader_.join();
}

void SocketStream::Write(Bytes data) {
  if (!open_) return;
  std::lock_guard<std::mutex> lock(write_mu_);
  if (!WriteAll(fd_.get(),
                std::string_view(reinterpret_cast<const char*>(data.data()), data.size()))
           .ok()) {
    ::shutdown(fd_.get(), SHUT_RDWR);  // the reader sees the end and reports it
  }
}

void SocketStream::Close() {
  if (!open_.exchange(false)) return;
  ::shutdown(fd_.get(), SHUT_RDWR);
}

void SocketStream::ReadLoop() {
  uint8_t buf[16384];
  while (true) {
    const ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    loop_.Post([this, alive = alive_, data = Bytes(buf, buf + n)] {
      if (!*alive) return;
      if (on_data_) on_data_(data);
    });
  }
  loop_.Post([this, alive = alive_] {
    if (!*alive) return;
    const bool was_open = open_.exchange(false);
    if (was_open && on_close_) on_close_();
  });
}

}  // namespace aloft::net
