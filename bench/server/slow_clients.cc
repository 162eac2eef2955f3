// Many slow downloaders: opens N connections to HOST:PORT, sends one GET for PATH on each (with an
// optional Authorization header), then reads only RATE bytes per second per connection for
// SECONDS, with a small receive buffer, so the server must hold every response open. Prints how
// many connections were still streaming at the end.
//
// Usage: aloft_bench_slow_clients HOST PORT PATH TOKEN N SECONDS RATE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 8) {
    std::fprintf(stderr, "usage: %s HOST PORT PATH TOKEN N SECONDS RATE\n", argv[0]);
    return 2;
  }
  const char* host = argv[1];
  const int port = std::atoi(argv[2]);
  const std::string path = argv[3], token = argv[4];
  const int n = std::atoi(argv[5]);
  const int seconds = std::atoi(argv[6]);
  const int rate = std::atoi(argv[7]);
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);

  std::string request = "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\n";
  if (token != "-") request += "Authorization: Bearer " + token + "\r\n";
  request += "\r\n";

  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, host, &addr.sin_addr);
  std::vector<int> fds;
  std::vector<uint64_t> received;
  std::vector<std::string> head;  // the first bytes: the status line
  std::vector<int> last_tick;     // the last second in which bytes arrived
  for (int i = 0; i < n; ++i) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
      std::perror("socket");
      break;
    }
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      std::perror("connect");
      close(fd);
      break;
    }
    if (write(fd, request.data(), request.size()) != static_cast<ssize_t>(request.size())) {
      close(fd);
      continue;
    }
    fcntl(fd, F_SETFL, O_NONBLOCK);
    fds.push_back(fd);
    received.push_back(0);
    head.emplace_back();
    last_tick.push_back(-1);
  }
  std::printf("opened %zu connections\n", fds.size());
  std::fflush(stdout);
  std::vector<char> buf(static_cast<size_t>(rate));
  auto end = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  int tick_no = 0;
  while (std::chrono::steady_clock::now() < end) {
    auto tick = std::chrono::steady_clock::now();
    ++tick_no;
    for (size_t i = 0; i < fds.size(); ++i) {
      if (fds[i] < 0) continue;
      ssize_t got = read(fds[i], buf.data(), buf.size());
      if (got == 0 || (got < 0 && errno != EAGAIN)) {
        close(fds[i]);
        fds[i] = -1;
        continue;
      }
      if (got > 0) {
        received[i] += static_cast<uint64_t>(got);
        last_tick[i] = tick_no;
        if (head[i].size() < 12)
          head[i].append(buf.data(), std::min<size_t>(got, 12 - head[i].size()));
      }
    }
    std::this_thread::sleep_until(tick + std::chrono::seconds(1));
  }
  // Streaming: a 200 answer whose bytes still arrived in the last 3 seconds.
  uint64_t total = 0;
  size_t streaming = 0, not_ok = 0;
  for (size_t i = 0; i < fds.size(); ++i) {
    total += received[i];
    bool ok = head[i].rfind("HTTP/1.1 200", 0) == 0;
    if (!ok) ++not_ok;
    if (ok && fds[i] >= 0 && last_tick[i] >= tick_no - 3) ++streaming;
  }
  std::printf("still streaming: %zu of %zu (answers other than 200: %zu), %llu bytes received\n",
              streaming, fds.size(), not_ok, static_cast<unsigned long long>(total));
  return 0;
}
