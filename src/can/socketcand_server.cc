#include "can/socketcand_server.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>

#include "can/socketcand.h"

namespace aloft::can {

struct SocketcandServer::Client {
  enum class State { kGreeted, kOpen, kRaw };
  net::Fd fd;
  std::string peer;
  std::string in;
  State state = State::kGreeted;
  std::unique_ptr<CanBus> port;  // made, used and destroyed on the loop's thread
  int listener = 0;
  bool closing = false;  // close once the output is flushed
  std::mutex mu;         // guards `out` (the loop's thread appends frames)
  std::string out;
  std::chrono::steady_clock::time_point hold_until{};  // nothing is sent before it
};

SocketcandServer::SocketcandServer(RealLoop& loop, Opener open)
    : loop_(loop), open_(std::move(open)) {}

SocketcandServer::~SocketcandServer() { Stop(); }

Result<net::Endpoint> SocketcandServer::Start(const net::Endpoint& at) {
  ALOFT_ASSIGN_OR_RETURN(listen_, net::ListenTcp(at));
  ALOFT_RETURN_IF_ERROR(net::SetNonBlocking(listen_.get()));
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC | O_NONBLOCK) != 0) return ErrnoError("pipe", errno);
  wake_read_ = net::Fd(pipe_fds[0]);
  wake_write_ = net::Fd(pipe_fds[1]);
  ALOFT_ASSIGN_OR_RETURN(net::Endpoint where, net::LocalEndpoint(listen_.get()));
  thread_ = std::thread([this] { Serve(); });
  return where;
}

void SocketcandServer::Stop() {
  if (!thread_.joinable()) return;
  stop_ = true;
  Wake();
  thread_.join();
  for (auto& c : clients_) Close(c);
  clients_.clear();
}

void SocketcandServer::Wake() {
  const char byte = 1;
  [[maybe_unused]] ssize_t n = ::write(wake_write_.get(), &byte, 1);
}

void SocketcandServer::Queue(Client& c, const std::string& text) {
  std::lock_guard<std::mutex> lock(c.mu);
  c.out += text;  // bare: python-can compares the handshake's answers whole
}

// A space before each frame: python-can 4.1 drops the character after the last complete element
// of a read, which would otherwise be the '<' of a frame the read cut in two. (After the frame,
// the space would arrive alone at the end of most reads, and python-can warns of "bad data".)
// Past kMaxBacklog the frame is dropped (a client too slow to read).
void SocketcandServer::QueueFrame(Client& c, const Frame& f) {
  {
    std::lock_guard<std::mutex> lock(c.mu);
    if (c.out.size() > kMaxBacklog) {
      ++dropped_;
      return;
    }
    c.out += ' ';
    c.out += socketcand::FormatFrame(f, loop_.clock().Wall());
  }
  Wake();
}

bool SocketcandServer::Flush(Client& c) {
  std::lock_guard<std::mutex> lock(c.mu);
  if (std::chrono::steady_clock::now() < c.hold_until) return true;
  while (!c.out.empty()) {
    const ssize_t n = ::send(c.fd.get(), c.out.data(), c.out.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
      if (errno == EINTR) continue;
      return false;
    }
    c.out.erase(0, static_cast<size_t>(n));
  }
  return true;
}

void SocketcandServer::Serve() {
  std::vector<pollfd> fds;
  while (!stop_) {
    fds.clear();
    fds.push_back({wake_read_.get(), POLLIN, 0});
    fds.push_back({listen_.get(), POLLIN, 0});
    int timeout_ms = 1000;
    const auto now = std::chrono::steady_clock::now();
    for (auto& c : clients_) {
      short events = POLLIN;
      {
        std::lock_guard<std::mutex> lock(c->mu);
        if (now < c->hold_until) {
          timeout_ms = 5;
        } else if (!c->out.empty()) {
          events |= POLLOUT;
        }
      }
      fds.push_back({c->fd.get(), events, 0});
    }
    if (::poll(fds.data(), fds.size(), timeout_ms) < 0 && errno != EINTR) break;
    if (fds[0].revents) {
      char drain[256];
      while (::read(wake_read_.get(), drain, sizeof drain) > 0) {
      }
    }
    if (fds[1].revents & POLLIN) Accept();
    std::vector<std::shared_ptr<Client>> done;
    for (size_t i = 0; i < clients_.size() && i + 2 < fds.size(); ++i) {
      auto& c = clients_[i];
      const short re = fds[i + 2].revents;
      if (re & (POLLIN | POLLHUP | POLLERR)) Read(c);
      if (!Flush(*c)) c->closing = true;
      if (c->closing) done.push_back(c);  // what could be flushed was
    }
    // Output queued by the loop's thread since the poll began is flushed on its wake byte.
    for (auto& c : done) {
      Close(c);
      std::erase(clients_, c);
    }
    client_count_ = clients_.size();
  }
}

void SocketcandServer::Accept() {
  while (true) {
    const int fd = ::accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) return;
    auto c = std::make_shared<Client>();
    c->fd = net::Fd(fd);
    (void)net::SetNoDelay(fd);
    auto peer = net::PeerEndpoint(fd);
    c->peer = peer.ok() ? peer->ToString() : "?";
    Queue(*c, "< hi >");
    clients_.push_back(c);
    client_count_ = clients_.size();
  }
}

void SocketcandServer::Read(const std::shared_ptr<Client>& c) {
  char buf[4096];
  while (true) {
    const ssize_t n = ::recv(c->fd.get(), buf, sizeof buf, 0);
    if (n == 0) {
      c->closing = true;
      break;
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) c->closing = true;
      break;
    }
    c->in.append(buf, static_cast<size_t>(n));
  }
  while (!c->closing) {
    Result<std::optional<std::string>> element = socketcand::TakeElement(c->in);
    if (!element.ok()) {
      Queue(*c, "< error " + element.error().message() + " >");
      c->closing = true;
      return;
    }
    if (!element->has_value()) return;
    Handle(c, **element);
  }
}

void SocketcandServer::Handle(const std::shared_ptr<Client>& c, const std::string& element) {
  const socketcand::Command cmd = socketcand::Split(element);
  using State = Client::State;
  if (cmd.verb == "open") {
    if (c->state != State::kGreeted || cmd.args.size() != 1) {
      Queue(*c, "< error 'open' takes one bus name, once >");
      return;
    }
    Result<std::unique_ptr<CanBus>> port = Error(Code::kInternal, "not run");
    loop_.Run([&] { port = open_(cmd.args[0], c->peer); });
    if (!port.ok()) {
      Queue(*c,
            "< error could not open bus '" + cmd.args[0] + "': " + port.error().message() + " >");
      return;
    }
    c->port = std::move(*port);
    c->state = State::kOpen;
    Queue(*c, "< ok >");
    return;
  }
  if (cmd.verb == "rawmode") {
    if (c->state != State::kOpen) {
      Queue(*c, "< error open a bus first >");
      return;
    }
    c->state = State::kRaw;
    Queue(*c, "< ok >");
    Flush(*c);  // alone: frames queued from now on are held back for kRawmodeSettle
    {
      std::lock_guard<std::mutex> lock(c->mu);
      c->hold_until = std::chrono::steady_clock::now() + kRawmodeSettle;
    }
    Client* raw = c.get();
    loop_.Run([this, raw] {
      raw->listener = raw->port->AddListener([this, raw](const CanEvent& e) {
        if (e.kind != CanEvent::Kind::kFrame || e.frame.fd) return;  // FD: not in rawmode
        QueueFrame(*raw, e.frame);
      });
    });
    return;
  }
  if (cmd.verb == "send") {
    if (c->state != State::kRaw) {
      Queue(*c, "< error 'send' needs rawmode >");
      return;
    }
    Result<Frame> frame = socketcand::ParseSend(cmd);
    if (!frame.ok()) {
      Queue(*c, "< error " + frame.error().message() + " >");
      return;
    }
    loop_.Post([this, weak = std::weak_ptr<Client>(c), f = *frame] {
      auto client = weak.lock();
      if (!client || !client->port) return;
      Status sent = client->port->Send(f);
      if (!sent.ok()) {
        Queue(*client, "< error " + sent.error().message() + " >");
        Wake();
      }
    });
    return;
  }
  if (cmd.verb == "echo") {
    Queue(*c, "< echo >");
    return;
  }
  Queue(*c, "< error unknown or unsupported command '" + cmd.verb +
                "' (this hub speaks rawmode: open, rawmode, send, echo) >");
}

void SocketcandServer::Close(const std::shared_ptr<Client>& c) {
  if (c->port) {
    loop_.Run([&] {
      if (c->listener) c->port->RemoveListener(c->listener);
      c->port.reset();
    });
  }
  c->fd.Reset();
}

}  // namespace aloft::can
