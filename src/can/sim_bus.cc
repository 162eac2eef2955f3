#include "can/sim_bus.h"

#include <algorithm>

namespace aloft::can {

namespace {

using std::chrono::nanoseconds;

// The arbitration field as the bus sees it, dominant (0) bits winning: the smaller key wins.
// Base identifier, then RTR / SRR / RRS, IDE, the identifier extension, RTR / RRS, FDF.
uint64_t ArbitrationKey(const Frame& f) {
  if (f.extended) {
    return (uint64_t{f.id >> 18} << 23) | (1ull << 22) | (1ull << 21) |
           (uint64_t{f.id & 0x3FFFF} << 3) | (uint64_t{f.remote} << 2) | (uint64_t{f.fd} << 1);
  }
  return (uint64_t{f.id} << 23) | (uint64_t{f.remote} << 22) | (uint64_t{f.fd} << 20);
}

// Error flag, error delimiter, interframe space (error active; all nodes flag at once).
constexpr int kErrorFlag = 6, kErrorDelimiter = 8, kInterframe = 3, kSuspend = 8;
constexpr int kEndOfFrame = 7;

}  // namespace

SimPort::~SimPort() {
  if (bus_) bus_->Detach(this);
}

BitRates SimPort::rates() const { return bus_ ? bus_->config_.rates : BitRates{}; }
bool SimPort::fd() const { return bus_ && bus_->config_.fd; }
EventLoop& SimPort::loop() { return bus_->loop_; }
std::string SimPort::name() const { return (bus_ ? bus_->config_.name : "?") + "/" + name_; }

Status SimPort::Send(const Frame& frame) {
  if (!bus_) return Error(Code::kUnavailable, name_ + ": the bus is gone");
  ALOFT_RETURN_IF_ERROR(Validate(frame));
  if (frame.fd && !bus_->config_.fd) {
    return Error(Code::kInvalidArgument, name() + ": bus " + bus_->config_.name +
                                             " is classic CAN; refused the CAN FD frame " +
                                             ToString(frame));
  }
  if (state_ == NodeState::kBusOff) {
    return Error(Code::kUnavailable, name() + " is bus-off");
  }
  if (queue_.size() >= bus_->config_.tx_queue) {
    return Error(Code::kUnavailable,
                 name() + ": transmit queue full (" + std::to_string(queue_.size()) + " frames)");
  }
  queue_.push_back(frame);
  bus_->Wake();
  return OkStatus();
}

void SimPort::SetState(NodeState s, EventLoop::TimePoint at) {
  if (s == state_) return;
  state_ = s;
  CanEvent e;
  e.kind = CanEvent::Kind::kState;
  e.at = at;
  e.state = s;
  e.detail = "TEC " + std::to_string(tec_) + ", REC " + std::to_string(rec_);
  listeners_.Notify(e);
}

void SimPort::UpdateState(EventLoop::TimePoint at) {
  if (state_ == NodeState::kBusOff) return;  // only recovery leaves it
  if (tec_ > 255) {
    SetState(NodeState::kBusOff, at);
    if (bus_ && bus_->config_.auto_recover) {
      // 128 occurrences of 11 recessive bits.
      recovery_ =
          bus_->loop_.After(BitTime(bus_->config_.rates.nominal, 128 * 11), [this] { Recover(); });
    }
    return;
  }
  SetState(tec_ > 127 || rec_ > 127 ? NodeState::kErrorPassive : NodeState::kErrorActive, at);
}

void SimPort::ForceBusOff() {
  tec_ = 256;
  UpdateState(bus_ ? bus_->loop_.Now() : EventLoop::TimePoint{});
}

void SimPort::Recover() {
  if (state_ != NodeState::kBusOff || !bus_) return;
  if (recovery_) bus_->loop_.Cancel(recovery_);
  recovery_ = 0;
  tec_ = rec_ = 0;
  SetState(NodeState::kErrorActive, bus_->loop_.Now());
  bus_->Wake();
}

SimBus::SimBus(EventLoop& loop, SimBusConfig config)
    : loop_(loop), config_(std::move(config)), rng_(config_.seed) {}

SimBus::~SimBus() {
  if (wake_) loop_.Cancel(wake_);
  if (in_flight_) loop_.Cancel(in_flight_);
  for (SimPort* p : ports_) {
    if (p->recovery_) loop_.Cancel(p->recovery_);
    p->bus_ = nullptr;
  }
}

std::unique_ptr<SimPort> SimBus::Attach(std::string node) {
  std::unique_ptr<SimPort> port(new SimPort(this, std::move(node)));
  ports_.push_back(port.get());
  return port;
}

void SimBus::Detach(SimPort* port) {
  if (port->recovery_) loop_.Cancel(port->recovery_);
  std::erase(ports_, port);
  if (sender_ == port) {
    // Taken off the bus mid-frame: the frame is cut short.
    loop_.Cancel(in_flight_);
    in_flight_ = 0;
    sender_ = nullptr;
    busy_ = false;
    idle_at_ =
        loop_.Now() + BitTime(config_.rates.nominal, kErrorFlag + kErrorDelimiter + kInterframe);
    Wake();
  }
}

void SimBus::CorruptNext(int frames, std::optional<uint32_t> id) {
  corrupt_next_ = frames;
  corrupt_id_ = id;
}

void SimBus::Wake() {
  if (wake_ || busy_) return;
  wake_ = loop_.At(std::max(idle_at_, loop_.Now()), [this] {
    wake_ = 0;
    Arbitrate();
  });
}

bool SimBus::HitByFault(const Frame& frame) {
  if (corrupt_next_ > 0 && (!corrupt_id_ || *corrupt_id_ == frame.id)) {
    --corrupt_next_;
    return true;
  }
  return error_rate_ > 0 && std::uniform_real_distribution<double>(0, 1)(rng_) < error_rate_;
}

void SimBus::Arbitrate() {
  if (busy_) return;
  const EventLoop::TimePoint now = loop_.Now();
  if (now < idle_at_) {
    Wake();
    return;
  }
  SimPort* winner = nullptr;
  int contenders = 0;
  std::optional<EventLoop::TimePoint> later;
  for (SimPort* p : ports_) {
    if (p->state_ == NodeState::kBusOff || p->queue_.empty()) continue;
    if (p->not_before_ > now) {
      later = later ? std::min(*later, p->not_before_) : p->not_before_;
      continue;
    }
    ++contenders;
    if (!winner || ArbitrationKey(p->queue_.front()) < ArbitrationKey(winner->queue_.front())) {
      winner = p;
    }
  }
  if (!winner) {
    if (later)
      wake_ = loop_.At(*later, [this] {
        wake_ = 0;
        Arbitrate();
      });
    return;
  }
  stats_.arbitration_losses += static_cast<uint64_t>(contenders - 1);
  const Frame& frame = winner->queue_.front();
  const WireLength len = Measure(frame);
  const nanoseconds duration = Duration(len, config_.rates);
  busy_ = true;
  sender_ = winner;
  const EventLoop::TimePoint start = now;

  // The time from the start of frame to the start of bit `p` (0-based).
  const nanoseconds tn = BitTime(config_.rates.nominal);
  const nanoseconds td = BitTime(config_.rates.data_rate());
  const int head =
      len.data_bits ? len.nominal_bits - (1 + 1 + kEndOfFrame + kInterframe) : len.nominal_bits;
  auto at_bit = [&](int p) {
    if (p <= head) return p * tn;
    if (p <= head + len.data_bits) return head * tn + (p - head) * td;
    return head * tn + len.data_bits * td + (p - head - len.data_bits) * tn;
  };
  const int ack_delimiter = len.total() - kInterframe - kEndOfFrame - 1;

  const bool acknowledged = std::any_of(ports_.begin(), ports_.end(), [&](SimPort* p) {
    return p != winner && p->state_ != NodeState::kBusOff;
  });
  if (!acknowledged) {
    Fail(winner, frame, /*ack_error=*/true, at_bit(ack_delimiter));
    return;
  }
  if (HitByFault(frame)) {
    const int bit = std::uniform_int_distribution<int>(1, ack_delimiter - 1)(rng_);
    Fail(winner, frame, /*ack_error=*/false, at_bit(bit + 1));
    return;
  }
  in_flight_ = loop_.At(start + duration - kInterframe * tn,
                        [this, start, duration] { Finish(start, duration); });
}

void SimBus::Finish(EventLoop::TimePoint start, nanoseconds duration) {
  in_flight_ = 0;
  SimPort* sender = sender_;
  sender_ = nullptr;
  const EventLoop::TimePoint now = loop_.Now();
  const nanoseconds tn = BitTime(config_.rates.nominal);
  busy_ = false;
  idle_at_ = start + duration;
  ++stats_.frames;
  stats_.busy += duration;

  const Frame frame = sender->queue_.front();
  sender->queue_.pop_front();
  if (sender->tec_ > 0) --sender->tec_;
  if (sender->state_ == NodeState::kErrorPassive) sender->not_before_ = idle_at_ + kSuspend * tn;
  std::vector<SimPort*> receivers;
  for (SimPort* p : ports_) {
    if (p == sender || p->state_ == NodeState::kBusOff) continue;
    if (p->rec_ > 127) {
      p->rec_ = 127;
    } else if (p->rec_ > 0) {
      --p->rec_;
    }
    receivers.push_back(p);
  }
  CanEvent e;
  e.frame = frame;
  e.at = now;
  // Receivers hear it first, the sender's confirmation after (both at this instant). The ports
  // are looked up again before each delivery: a listener may take a node off the bus.
  for (SimPort* p : receivers) {
    if (std::find(ports_.begin(), ports_.end(), p) == ports_.end()) continue;
    p->UpdateState(now);
    if (p->rx_drop_rate_ > 0 &&
        std::uniform_real_distribution<double>(0, 1)(rng_) < p->rx_drop_rate_) {
      continue;
    }
    e.kind = CanEvent::Kind::kFrame;
    p->listeners_.Notify(e);
  }
  if (std::find(ports_.begin(), ports_.end(), sender) != ports_.end()) {
    sender->UpdateState(now);
    e.kind = CanEvent::Kind::kSent;
    sender->listeners_.Notify(e);
  }
  e.kind = CanEvent::Kind::kFrame;
  monitors_.Notify(e);
  Wake();
}

void SimBus::Fail(SimPort* sender, const Frame& frame, bool ack_error, nanoseconds at) {
  const nanoseconds tn = BitTime(config_.rates.nominal);
  const EventLoop::TimePoint start = loop_.Now();
  const nanoseconds flagged = at + (kErrorFlag + kErrorDelimiter) * tn;
  in_flight_ = loop_.At(start + flagged, [this, sender, frame, ack_error, start, flagged, tn] {
    in_flight_ = 0;
    sender_ = nullptr;
    busy_ = false;
    idle_at_ = start + flagged + kInterframe * tn;
    ++stats_.error_frames;
    stats_.busy += flagged + kInterframe * tn;
    const EventLoop::TimePoint now = loop_.Now();
    // An error-passive transmitter's ACK error leaves its counter as it is (ISO 11898-1's
    // exception), so a node alone on the bus stays error passive and keeps trying.
    if (!(ack_error && sender->state_ == NodeState::kErrorPassive)) sender->tec_ += 8;
    if (sender->state_ == NodeState::kErrorPassive) sender->not_before_ = idle_at_ + kSuspend * tn;
    CanEvent e;
    e.kind = CanEvent::Kind::kError;
    e.frame = frame;
    e.at = now;
    e.detail = ack_error ? "ACK error: no other node acknowledged the frame"
                         : "bit error (injected fault)";
    std::vector<SimPort*> ports = ports_;
    for (SimPort* p : ports) {
      if (p != sender && p->state_ != NodeState::kBusOff) ++p->rec_;
    }
    for (SimPort* p : ports) {
      if (std::find(ports_.begin(), ports_.end(), p) == ports_.end()) continue;
      p->UpdateState(now);
      if (p->state_ != NodeState::kBusOff || p == sender) p->listeners_.Notify(e);
    }
    monitors_.Notify(e);
    Wake();
  });
}

}  // namespace aloft::can
