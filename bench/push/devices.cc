// N simulated MQTT devices in one process for bench/push.sh: bench-000000... (the names and tokens
// aloft_bench_seed gives), each a libmosquitto client with a persistent session subscribed to its
// own down/# topics, all driven by one poll(2) loop (libmosquitto without its threads).
//
// It connects them in batches, prints "ready N" once every device holds its subscription, then
// waits until every device has received an otaUpgrade command with upgrade: true, or until the
// timeout. It prints when each device had its command, as Unix times in ms ("at 1795349955123"),
// so the caller can measure from the moment it started the rollout, then a summary line:
//
//   received 1000 of 1000
//
// A libmosquitto client holds three descriptors (its socket and a socket pair), so 10,000 devices
// are several processes (FIRST: the number of the first device).
//
// Usage: aloft_bench_push_devices URL N [FIRST [TIMEOUT_S]]     URL: mqtt://127.0.0.1:PORT
#include <mosquitto.h>
#include <poll.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "mqtt/client.h"
#include "mqtt/topics.h"

namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct Device {
  std::string name, token;
  mosquitto* m = nullptr;
  bool connected = false, subscribed = false;
  int64_t command_ms = 0;  // when its otaUpgrade arrived
  int refused = 0;
};

void OnConnect(mosquitto* m, void* p, int rc) {
  auto* d = static_cast<Device*>(p);
  if (rc != 0) {
    ++d->refused;
    return;
  }
  d->connected = true;
  const std::string topic = aloft::mqtt::DownTopic(d->name, "#");
  mosquitto_subscribe(m, nullptr, topic.c_str(), 1);
}

void OnSubscribe(mosquitto*, void* p, int, int, const int*) {
  static_cast<Device*>(p)->subscribed = true;
}

void OnMessage(mosquitto*, void* p, const mosquitto_message* msg) {
  auto* d = static_cast<Device*>(p);
  if (d->command_ms) return;
  std::string payload(static_cast<const char*>(msg->payload), msg->payloadlen);
  if (payload.find("\"otaUpgrade\"") != std::string::npos &&
      payload.find("\"upgrade\":true") != std::string::npos) {
    d->command_ms = NowMs();
  }
}

// One pass of the loop: poll every connected socket for up to `timeout_ms`, then let libmosquitto
// read, write and keep alive.
void Pump(std::vector<Device>& devices, size_t upto, int timeout_ms) {
  std::vector<pollfd> fds;
  std::vector<size_t> index;
  fds.reserve(upto);
  for (size_t i = 0; i < upto; ++i) {
    int s = mosquitto_socket(devices[i].m);
    if (s < 0) continue;
    short events = POLLIN;
    if (mosquitto_want_write(devices[i].m)) events |= POLLOUT;
    fds.push_back({s, events, 0});
    index.push_back(i);
  }
  ::poll(fds.data(), fds.size(), timeout_ms);
  for (size_t k = 0; k < fds.size(); ++k) {
    mosquitto* m = devices[index[k]].m;
    if (fds[k].revents & (POLLIN | POLLHUP | POLLERR)) mosquitto_loop_read(m, 1);
    if (fds[k].revents & POLLOUT) mosquitto_loop_write(m, 1);
  }
  for (size_t i = 0; i < upto; ++i) mosquitto_loop_misc(devices[i].m);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s URL N [TIMEOUT_S]\n", argv[0]);
    return 2;
  }
  auto url = aloft::mqtt::ParseUrl(argv[1]);
  if (!url.ok() || url->tls) {
    std::fprintf(stderr, "devices: %s: expected mqtt://host:port\n", argv[1]);
    return 2;
  }
  const size_t n = std::strtoul(argv[2], nullptr, 10);
  const size_t first = argc > 3 ? std::strtoul(argv[3], nullptr, 10) : 0;
  const int timeout_s = argc > 4 ? std::atoi(argv[4]) : 300;
  mosquitto_lib_init();
  std::vector<Device> devices(n);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  constexpr size_t kBatch = 250;  // connects in flight at once (the broker's listen backlog)
  for (size_t i = 0; i < n; ++i) {
    Device& d = devices[i];
    char name[32], token[48];
    std::snprintf(name, sizeof name, "bench-%06zu", first + i);
    std::snprintf(token, sizeof token, "aloft_d_bench%06zu", first + i);
    d.name = name;
    d.token = token;
    d.m = mosquitto_new(name, /*clean_session=*/false, &d);
    if (!d.m) {
      std::fprintf(stderr, "devices: mosquitto_new failed at %zu\n", i);
      return 1;
    }
    mosquitto_int_option(d.m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    mosquitto_username_pw_set(d.m, name, token);
    mosquitto_connect_callback_set(d.m, OnConnect);
    mosquitto_subscribe_callback_set(d.m, OnSubscribe);
    mosquitto_message_callback_set(d.m, OnMessage);
    int rc = mosquitto_connect(d.m, url->host.c_str(), url->port, 300);
    if (rc != MOSQ_ERR_SUCCESS) {
      std::fprintf(stderr, "devices: %s: connect: %s (ulimit -n is too low?)\n", name,
                   mosquitto_strerror(rc));
      return 1;
    }
    if ((i + 1) % kBatch == 0 || i + 1 == n) {
      // Let this batch finish its CONNECT and SUBSCRIBE before the next one.
      for (;;) {
        size_t done = 0, refused = 0;
        for (size_t k = 0; k <= i; ++k) {
          done += devices[k].subscribed;
          refused += devices[k].refused > 0;
        }
        if (refused) {
          std::fprintf(stderr, "devices: %zu refused by the broker (passwords not loaded?)\n",
                       refused);
          return 1;
        }
        if (done == i + 1) break;
        if (std::chrono::steady_clock::now() > deadline) {
          std::fprintf(stderr, "devices: only %zu of %zu subscribed in time\n", done, i + 1);
          return 1;
        }
        Pump(devices, i + 1, 50);
      }
    }
  }
  std::printf("ready %zu\n", n);
  std::fflush(stdout);

  size_t received = 0;
  while (received < n && std::chrono::steady_clock::now() < deadline) {
    Pump(devices, n, 100);
    received = 0;
    for (const auto& d : devices) received += d.command_ms != 0;
  }
  for (const auto& d : devices) {
    if (d.command_ms) std::printf("at %lld\n", static_cast<long long>(d.command_ms));
  }
  std::printf("received %zu of %zu\n", received, n);
  for (auto& d : devices) {
    mosquitto_disconnect(d.m);
    mosquitto_loop_write(d.m, 1);
    mosquitto_destroy(d.m);
  }
  mosquitto_lib_cleanup();
  return received == n ? 0 : 1;
}
