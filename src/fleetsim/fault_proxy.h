// The fleet simulator's fault proxy (docs/fleet-sim.md): a TCP relay on loopback between the
// simulated devices and each real server (aloftd, the MQTT broker), on its own thread, that can
// cut the network for a while. A cut resets every connection through it; connections opened
// during the cut are taken but get nothing, as behind a dead link, and are reset when it ends.
// Management calls of the simulator go to the servers directly.
//
//   ALOFT_ASSIGN_OR_RETURN(auto proxy, FaultProxy::Start({8080, 1883}));
//   proxy->port(0);                            // where devices reach the first upstream
//   proxy->Cut(std::chrono::seconds(10));
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/error.h"

namespace aloft::fleetsim {

class FaultProxy {
 public:
  struct Counters {
    uint64_t connections = 0;  // relayed
    uint64_t bytes = 0;        // both ways
    uint64_t reset = 0;        // by cuts: live ones, and those opened during a cut
    uint64_t refused = 0;      // the upstream did not take the connection (it was down)
  };
  // One listening port per upstream port, all on 127.0.0.1.
  static Result<std::unique_ptr<FaultProxy>> Start(const std::vector<uint16_t>& upstreams);
  ~FaultProxy();
  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;

  uint16_t port(size_t k) const { return listen_ports_[k]; }
  // Cuts the network from now for `duration` (a later cut may extend it).
  void Cut(std::chrono::milliseconds duration);
  Counters counters() const;

 private:
  struct Conn;
  FaultProxy() = default;
  void Loop();
  void Accept(size_t k, bool cutting);
  void Pump(Conn& c);
  void Close(uint64_t id, bool reset);
  void Watch(Conn& c);
  void ResetAll(bool held);

  std::vector<uint16_t> upstreams_, listen_ports_;
  std::vector<int> listen_fds_;
  int epoll_ = -1, wake_ = -1;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> cut_until_ms_{0};
  std::unordered_map<uint64_t, std::unique_ptr<Conn>> conns_;  // by id (epoll's data)
  uint64_t next_id_ = 1;
  mutable std::mutex mu_;  // counters_
  Counters counters_;
};

}  // namespace aloft::fleetsim
