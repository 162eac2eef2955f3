// A node on a remote bus: the CanBus seam over a socketcand connection (to Aloft's bus hub or to
// linux-can's socketcand on a machine with real CAN). Classic frames only, as rawmode carries;
// a frame counts as sent once it is written to the connection.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <thread>

#include "can/bus.h"
#include "net/socket.h"

namespace aloft::can {

class SocketcandBus final : public CanBus {
 public:
  // Connects, opens `bus` and enters rawmode; kUnavailable when the hub is not there, with its
  // "< error ... >" when it refuses.
  static Result<std::unique_ptr<SocketcandBus>> Connect(EventLoop& loop, const net::Endpoint& hub,
                                                        const std::string& bus,
                                                        BitRates rates = {});
  ~SocketcandBus() override;

  Status Send(const Frame& frame) override;
  int AddListener(Listener listener) override { return listeners_.Add(std::move(listener)); }
  void RemoveListener(int id) override { listeners_.Remove(id); }
  NodeState state() const override { return NodeState::kErrorActive; }
  BitRates rates() const override { return rates_; }
  bool fd() const override { return false; }
  EventLoop& loop() override { return loop_; }
  std::string name() const override { return bus_ + "@" + hub_.ToString(); }
  bool connected() const { return !closed_; }

 private:
  SocketcandBus(EventLoop& loop, net::Fd fd, net::Endpoint hub, std::string bus, BitRates rates);
  void ReadLoop();

  EventLoop& loop_;
  EventLoop::TimePoint sent_until_{};  // when the frames sent so far are off the bus
  net::Fd fd_;
  net::Endpoint hub_;
  std::string bus_;
  BitRates rates_;
  Listeners listeners_;  // touched on the loop's thread only
  std::mutex write_mu_;
  std::atomic<bool> closed_{false};
  std::shared_ptr<std::atomic<bool>> alive_ = std::make_shared<std::atomic<bool>>(true);
  std::thread reader_;
};

}  // namespace aloft::can
