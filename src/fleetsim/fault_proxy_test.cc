// The fault proxy against a real loopback server: bytes go both ways unchanged, a cut resets the
// live connections and holds new ones unanswered until it ends, a dead upstream is a reset.
#include "fleetsim/fault_proxy.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>

#include "support/matchers.h"

namespace aloft::fleetsim {
namespace {

sockaddr_in Loopback(uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

// An echo server on its own thread: every connection gets back what it sends.
class Echo {
 public:
  Echo() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a = Loopback(0);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(fd_, 16);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] {
      for (;;) {
        const int c = ::accept(fd_, nullptr, nullptr);
        if (c < 0) return;
        std::thread([c] {
          char buf[4096];
          ssize_t n;
          while ((n = ::read(c, buf, sizeof buf)) > 0)
            (void)!::write(c, buf, static_cast<size_t>(n));
          ::close(c);
        }).detach();
      }
    });
  }
  ~Echo() {
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
};

int Connect(uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a = Loopback(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// What `fd` answers within `ms`: the bytes, "" for nothing, "EOF" or "RESET".
std::string Answer(int fd, int ms) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, ms) <= 0) return "";
  char buf[4096];
  const ssize_t n = ::read(fd, buf, sizeof buf);
  if (n == 0) return "EOF";
  if (n < 0) return errno == ECONNRESET ? "RESET" : "ERROR";
  return std::string(buf, static_cast<size_t>(n));
}

TEST(FaultProxy, RelaysBothWays_ACutResetsAndHolds_ThenItWorksAgain) {
  Echo echo;
  auto proxy = FaultProxy::Start({echo.port()});
  ASSERT_THAT(proxy, IsOk());
  const uint16_t port = (*proxy)->port(0);

  const int a = Connect(port);
  ASSERT_GE(a, 0);
  ASSERT_EQ(::write(a, "hello", 5), 5);
  EXPECT_EQ(Answer(a, 2000), "hello");

  (*proxy)->Cut(std::chrono::milliseconds(600));
  EXPECT_EQ(Answer(a, 2000), "RESET");  // the live connection dies
  ::close(a);
  // During the cut: taken, but nothing comes back; reset when the cut ends.
  const int b = Connect(port);
  ASSERT_GE(b, 0);
  ASSERT_EQ(::write(b, "lost", 4), 4);
  EXPECT_EQ(Answer(b, 200), "");
  EXPECT_EQ(Answer(b, 2000), "RESET");
  ::close(b);

  const int c = Connect(port);
  ASSERT_GE(c, 0);
  ASSERT_EQ(::write(c, "again", 5), 5);
  EXPECT_EQ(Answer(c, 2000), "again");
  ::close(c);
  // The proxy counts a piece just after passing it on: wait for its thread to get there.
  FaultProxy::Counters n = (*proxy)->counters();
  for (int i = 0; i < 100 && n.bytes < 20; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    n = (*proxy)->counters();
  }
  EXPECT_EQ(n.connections, 2u);
  EXPECT_EQ(n.reset, 2u);
  EXPECT_EQ(n.bytes, 20u);  // 5 + 5 + 5 + 5 (nothing of the held one)
}

TEST(FaultProxy, ADeadUpstream_IsAResetNotAHang) {
  uint16_t dead = 0;
  {
    Echo gone;
    dead = gone.port();
  }
  auto proxy = FaultProxy::Start({dead});
  ASSERT_THAT(proxy, IsOk());
  const int a = Connect((*proxy)->port(0));
  ASSERT_GE(a, 0);
  const std::string got = Answer(a, 2000);
  EXPECT_TRUE(got == "RESET" || got == "EOF") << got;
  ::close(a);
  EXPECT_EQ((*proxy)->counters().refused, 1u);
}

}  // namespace
}  // namespace aloft::fleetsim
