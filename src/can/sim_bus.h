// A simulated CAN / CAN FD bus: a discrete-event model on an EventLoop. Each frame occupies the
// bus for its real bit count at the bus's rates (frame.h); nodes with frames ready when the bus
// falls idle arbitrate by identifier, the lowest wins and the others try again after it; a frame
// is delivered at the end of its end-of-frame field and the bus is free again after the 3-bit
// interframe space. Faults come only from injection: bit errors (an error frame, the counters of
// ISO 11898-1's fault confinement, automatic retransmission), a node alone on the bus (ACK
// errors), receive overruns, bus-off.
//
//   SimLoop loop;
//   SimBus bus(loop, {.name = "powertrain", .rates = {500'000, 2'000'000}, .fd = true});
//   auto ecu = bus.Attach("ecm");
//   auto tester = bus.Attach("tester");
//   tester->Send(Frame::Classic(0x7E0, false, {0x02, 0x10, 0x03}));
//   loop.RunUntilIdle();
#pragma once

#include <deque>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "can/bus.h"

namespace aloft::can {

struct SimBusConfig {
  std::string name = "can0";
  BitRates rates{};
  bool fd = false;           // FD frames allowed (a classic bus refuses them at Send)
  size_t tx_queue = 64;      // frames one node may have waiting
  bool auto_recover = true;  // bus-off ends after 128 x 11 recessive bits (else Recover())
  uint64_t seed = 1;         // for injected error rates
};

class SimBus;

// One node on a SimBus. Destroying it takes the node off the bus (frames still queued are lost).
class SimPort final : public CanBus {
 public:
  ~SimPort() override;
  Status Send(const Frame& frame) override;
  int AddListener(Listener listener) override { return listeners_.Add(std::move(listener)); }
  void RemoveListener(int id) override { listeners_.Remove(id); }
  NodeState state() const override { return state_; }
  BitRates rates() const override;
  bool fd() const override;
  EventLoop& loop() override;
  std::string name() const override;

  int tec() const { return tec_; }  // transmit error counter
  int rec() const { return rec_; }  // receive error counter
  size_t queued() const { return queue_.size(); }

  // Faults. A share of the frames this node receives is lost (a receive overrun: the controller
  // had no buffer); the node still acknowledges them, as a real one does.
  void SetReceiveDropRate(double rate) { rx_drop_rate_ = rate; }
  // The node's transmit counter jumps past 255: bus-off at once.
  void ForceBusOff();
  // Leaves bus-off now (as `ip link set canX type can restart` does).
  void Recover();

 private:
  friend class SimBus;
  SimPort(SimBus* bus, std::string name) : bus_(bus), name_(std::move(name)) {}
  void SetState(NodeState s, EventLoop::TimePoint at);
  void UpdateState(EventLoop::TimePoint at);

  SimBus* bus_;
  std::string name_;
  Listeners listeners_;
  std::deque<Frame> queue_;
  NodeState state_ = NodeState::kErrorActive;
  int tec_ = 0, rec_ = 0;
  double rx_drop_rate_ = 0;
  EventLoop::TimePoint not_before_{};  // suspend transmission after an error-passive send
  TimerId recovery_ = 0;
};

class SimBus {
 public:
  SimBus(EventLoop& loop, SimBusConfig config);
  ~SimBus();
  SimBus(const SimBus&) = delete;
  SimBus& operator=(const SimBus&) = delete;

  std::unique_ptr<SimPort> Attach(std::string node);

  // Faults. Each frame started on the bus is hit by a bit error with probability `rate`.
  void SetErrorRate(double rate) { error_rate_ = rate; }
  // The next `frames` frames (with identifier `id`, when given) are hit by a bit error.
  void CorruptNext(int frames, std::optional<uint32_t> id = std::nullopt);

  // Every frame and error frame on the bus, as a bus analyser sees it.
  int AddMonitor(CanBus::Listener listener) { return monitors_.Add(std::move(listener)); }
  void RemoveMonitor(int id) { monitors_.Remove(id); }

  struct Stats {
    uint64_t frames = 0;        // delivered
    uint64_t error_frames = 0;  // bit and ACK errors
    uint64_t arbitration_losses = 0;
    std::chrono::nanoseconds busy{0};  // frames and error frames, interframe spaces included
  };
  const Stats& stats() const { return stats_; }
  const SimBusConfig& config() const { return config_; }
  EventLoop& loop() { return loop_; }

 private:
  friend class SimPort;
  void Detach(SimPort* port);
  void Wake();
  void Arbitrate();
  void Finish(EventLoop::TimePoint start, std::chrono::nanoseconds duration);
  void Fail(SimPort* sender, const Frame& frame, bool ack_error, std::chrono::nanoseconds at);
  bool HitByFault(const Frame& frame);

  EventLoop& loop_;
  SimBusConfig config_;
  std::vector<SimPort*> ports_;  // in attach order: ties in arbitration go to the earlier one
  Listeners monitors_;
  std::mt19937_64 rng_;
  double error_rate_ = 0;
  int corrupt_next_ = 0;
  std::optional<uint32_t> corrupt_id_;
  bool busy_ = false;
  SimPort* sender_ = nullptr;  // of the frame or error frame on the bus now
  TimerId in_flight_ = 0;      // its end
  TimerId wake_ = 0;
  EventLoop::TimePoint idle_at_{};
  Stats stats_;
};

}  // namespace aloft::can
