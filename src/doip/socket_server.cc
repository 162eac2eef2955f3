#include "doip/socket_server.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "net/stream.h"

namespace aloft::doip {

Result<net::Endpoint> SocketServer::Start(const net::Endpoint& at) {
  ALOFT_ASSIGN_OR_RETURN(tcp_, net::ListenTcp(at));
  ALOFT_ASSIGN_OR_RETURN(net::Endpoint where, net::LocalEndpoint(tcp_.get()));
  ALOFT_ASSIGN_OR_RETURN(udp_, net::BindUdp(where));
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC | O_NONBLOCK) != 0) return ErrnoError("pipe", errno);
  wake_read_ = net::Fd(pipe_fds[0]);
  wake_write_ = net::Fd(pipe_fds[1]);
  thread_ = std::thread([this] { Serve(); });
  return where;
}

Result<net::Endpoint> SocketServer::ListenTls(const net::Endpoint& at, const std::string& cert,
                                              const std::string& key) {
  ALOFT_ASSIGN_OR_RETURN(tls_, net::TlsEndpoint::Server(cert, key));
  ALOFT_ASSIGN_OR_RETURN(tls_listen_, net::ListenTcp(at));
  return net::LocalEndpoint(tls_listen_.get());
}

void SocketServer::Stop() {
  if (!thread_.joinable()) return;
  stop_ = true;
  const char b = 1;
  [[maybe_unused]] ssize_t n = ::write(wake_write_.get(), &b, 1);
  thread_.join();
}

void SocketServer::Announce(const net::Endpoint& to) {
  auto addr = net::ToSockaddr(to);
  if (!addr.ok()) return;
  const Bytes message = entity_.Announcement();
  for (int i = 0; i < 3; ++i) {
    loop_.After(std::chrono::milliseconds(500 * i), [this, message, a = *addr] {
      ::sendto(udp_.get(), message.data(), message.size(), 0,
               reinterpret_cast<const sockaddr*>(&a.first), a.second);
    });
  }
}

void SocketServer::Serve() {
  while (!stop_) {
    pollfd fds[4] = {{wake_read_.get(), POLLIN, 0},
                     {tcp_.get(), POLLIN, 0},
                     {udp_.get(), POLLIN, 0},
                     {tls_listen_.get(), POLLIN, 0}};
    if (::poll(fds, tls_listen_.valid() ? 4 : 3, 1000) < 0 && errno != EINTR) return;
    if (tls_listen_.valid() && (fds[3].revents & POLLIN)) {
      net::Fd tcp(::accept4(tls_listen_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (tcp.valid()) {
        (void)net::SetNoDelay(tcp.get());
        // The handshake runs here (at most 5 s); a failed one drops the connection.
        Result<net::Fd> plain = tls_->Wrap(std::move(tcp));
        if (plain.ok()) {
          const int fd = plain->Release();
          loop_.Post([this, fd] {
            entity_.Accept(std::make_unique<net::SocketStream>(loop_, net::Fd(fd)), true);
          });
        }
      }
    }
    if (fds[1].revents & POLLIN) {
      const int fd = ::accept4(tcp_.get(), nullptr, nullptr, SOCK_CLOEXEC);
      if (fd >= 0) {
        (void)net::SetNoDelay(fd);
        // Made and handed over on the loop's thread: its first bytes find their handler.
        loop_.Post([this, fd] {
          entity_.Accept(std::make_unique<net::SocketStream>(loop_, net::Fd(fd)));
        });
      }
    }
    if (fds[2].revents & POLLIN) {
      uint8_t buf[2048];
      sockaddr_storage from{};
      socklen_t len = sizeof from;
      const ssize_t n =
          ::recvfrom(udp_.get(), buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
      if (n > 0) {
        Bytes answer;
        loop_.Run([&] { answer = entity_.Datagram(ByteSpan(buf, static_cast<size_t>(n))); });
        if (!answer.empty()) {
          ::sendto(udp_.get(), answer.data(), answer.size(), 0, reinterpret_cast<sockaddr*>(&from),
                   len);
        }
      }
    }
  }
}

}  // namespace aloft::doip
