// A node on a real CAN interface through Linux SocketCAN (an AF_CAN raw socket): hardware (can0)
// or a virtual bus (vcan0). CAN FD frames when the interface's MTU allows them, transmit
// confirmations from the kernel's loopback of our own frames (MSG_CONFIRM), and error frames
// reported as events (bus-off and error-passive as state changes). A thread of its own reads the
// socket and posts to the loop; destroy it on the loop's thread.
//
//   auto bus = can::SocketCanBus::Open(loop, "vcan0");   // kUnavailable where there is no CAN
//
// These machines' kernels have no CAN (socket(PF_CAN) fails), so its test skips there; see
// docs/vehicle-network.md for running it on vcan.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "can/bus.h"
#include "net/socket.h"

namespace aloft::can {

class SocketCanBus final : public CanBus {
 public:
  // kUnavailable when the kernel has no CAN or the interface does not exist, naming which.
  static Result<std::unique_ptr<SocketCanBus>> Open(EventLoop& loop, const std::string& ifname,
                                                    BitRates rates = {});
  ~SocketCanBus() override;

  Status Send(const Frame& frame) override;
  int AddListener(Listener listener) override { return listeners_.Add(std::move(listener)); }
  void RemoveListener(int id) override { listeners_.Remove(id); }
  NodeState state() const override { return state_.load(); }
  BitRates rates() const override { return rates_; }
  bool fd() const override { return fd_frames_; }
  EventLoop& loop() override { return loop_; }
  std::string name() const override { return ifname_; }

 private:
  SocketCanBus(EventLoop& loop, net::Fd socket, std::string ifname, BitRates rates, bool fd);
  void ReadLoop();

  EventLoop& loop_;
  net::Fd socket_;
  std::string ifname_;
  BitRates rates_;
  bool fd_frames_;
  Listeners listeners_;
  std::atomic<NodeState> state_{NodeState::kErrorActive};
  std::shared_ptr<std::atomic<bool>> alive_ = std::make_shared<std::atomic<bool>>(true);
  std::thread reader_;
};

}  // namespace aloft::can
