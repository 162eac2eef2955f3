#include "can/socketcand_bus.h"

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>

#include "can/socketcand.h"

namespace aloft::can {

namespace {

// Reads elements until one arrives, within `timeout`; `buffer` keeps what follows it.
Result<std::string> Expect(int fd, std::string& buffer, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    ALOFT_ASSIGN_OR_RETURN(std::optional<std::string> element, socketcand::TakeElement(buffer));
    if (element) return *element;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      return Error(Code::kUnavailable,
                   "socketcand: no answer within " + std::to_string(timeout.count()) + " ms");
    }
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    char buf[1024];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return Error(Code::kUnavailable, "socketcand: the hub closed the connection");
    buffer.append(buf, static_cast<size_t>(n));
  }
}

Status ExpectOk(int fd, std::string& buffer, const std::string& after) {
  ALOFT_ASSIGN_OR_RETURN(std::string answer, Expect(fd, buffer, std::chrono::seconds(5)));
  if (answer != "ok") {
    return Error(Code::kUnavailable, "socketcand: '" + after + "' answered '< " + answer + " >'");
  }
  return OkStatus();
}

}  // namespace

Result<std::unique_ptr<SocketcandBus>> SocketcandBus::Connect(EventLoop& loop,
                                                              const net::Endpoint& hub,
                                                              const std::string& bus,
                                                              BitRates rates) {
  ALOFT_ASSIGN_OR_RETURN(net::Fd fd, net::ConnectTcp(hub, std::chrono::seconds(5)));
  std::string buffer;
  ALOFT_ASSIGN_OR_RETURN(std::string hi, Expect(fd.get(), buffer, std::chrono::seconds(5)));
  if (hi != "hi") {
    return Error(Code::kUnavailable,
                 "socketcand at " + hub.ToString() + " greeted with '< " + hi + " >'");
  }
  ALOFT_RETURN_IF_ERROR(net::WriteAll(fd.get(), "< open " + bus + " >"));
  ALOFT_RETURN_IF_ERROR(ExpectOk(fd.get(), buffer, "open " + bus));
  ALOFT_RETURN_IF_ERROR(net::WriteAll(fd.get(), "< rawmode >"));
  ALOFT_RETURN_IF_ERROR(ExpectOk(fd.get(), buffer, "rawmode"));
  std::unique_ptr<SocketcandBus> b(new SocketcandBus(loop, std::move(fd), hub, bus, rates));
  return b;
}

SocketcandBus::SocketcandBus(EventLoop& loop, net::Fd fd, net::Endpoint hub, std::string bus,
                             BitRates rates)
    : loop_(loop), fd_(std::move(fd)), hub_(std::move(hub)), bus_(std::move(bus)), rates_(rates) {
  reader_ = std::thread([this] { ReadLoop(); });
}

SocketcandBus::~SocketcandBus() {
  *alive_ = false;
  closed_ = true;
  ::shutdown(fd_.get(), SHUT_RDWR);
  reader_.join();
}

Status SocketcandBus::Send(const Frame& frame) {
  ALOFT_RETURN_IF_ERROR(Validate(frame));
  if (frame.fd || frame.remote) {
    return Error(Code::kInvalidArgument,
                 name() + ": socketcand rawmode carries classic data frames only");
  }
  if (closed_) return Error(Code::kUnavailable, name() + ": the connection is closed");
  {
    std::lock_guard<std::mutex> lock(write_mu_);
    ALOFT_RETURN_IF_ERROR(net::WriteAll(fd_.get(), socketcand::FormatSend(frame)));
  }
  // Rawmode has no transmit confirmation: a frame counts as sent once the bus (at its bit rate,
  // behind the frames before it) would have carried it, so that a sender paced by confirmations
  // (ISO-TP's consecutive frames) does not outrun the bus and overflow the far node's queue.
  const EventLoop::TimePoint now = loop_.Now();
  sent_until_ = std::max(sent_until_, now) + Duration(frame, rates_);
  loop_.After(sent_until_ - now, [this, alive = alive_, frame] {
    if (!*alive) return;
    CanEvent e;
    e.kind = CanEvent::Kind::kSent;
    e.frame = frame;
    e.at = loop_.Now();
    listeners_.Notify(e);
  });
  return OkStatus();
}

void SocketcandBus::ReadLoop() {
  std::string buffer;
  char buf[4096];
  while (true) {
    const ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      break;
    }
    buffer.append(buf, static_cast<size_t>(n));
    while (true) {
      Result<std::optional<std::string>> element = socketcand::TakeElement(buffer);
      if (!element.ok()) {
        buffer.clear();
        break;
      }
      if (!element->has_value()) break;
      const socketcand::Command cmd = socketcand::Split(**element);
      if (cmd.verb != "frame") continue;  // "< error ... >" for a refused send, "< echo >"
      auto frame = socketcand::ParseFrame(cmd);
      if (!frame.ok()) continue;
      loop_.Post([this, alive = alive_, f = frame->first] {
        if (!*alive) return;
        CanEvent e;
        e.kind = CanEvent::Kind::kFrame;
        e.frame = f;
        e.at = loop_.Now();
        listeners_.Notify(e);
      });
    }
  }
  closed_ = true;
}

}  // namespace aloft::can
