// The CanBus seam: one node's attachment to a CAN bus. Protocol code (ISO-TP, UDS, the ECU
// simulator) sends frames through it and hears the bus through listeners; the bus behind it is a
// simulated one (sim_bus.h), a SocketCAN interface (socketcan.h) or a remote bus hub
// (socketcand.h). Listeners run on the EventLoop the bus was given, one at a time.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "can/frame.h"
#include "core/error.h"
#include "core/event_loop.h"

namespace aloft::can {

// ISO 11898-1's fault confinement: error active (counters up to 127), error passive (above 127;
// passive error flags, suspend transmission), bus off (transmit counter above 255: the node takes
// no part until it recovers).
enum class NodeState { kErrorActive, kErrorPassive, kBusOff };
const char* ToString(NodeState s);

struct CanEvent {
  enum class Kind {
    kFrame,  // a frame another node sent, valid at the end of its end-of-frame field
    kSent,   // one of this node's frames went out (transmit confirmation), at the same instant
    kError,  // an error frame on the bus; `frame` is the frame it destroyed, `detail` why
    kState,  // this node's error state changed to `state`
  };
  Kind kind = Kind::kFrame;
  Frame frame;
  EventLoop::TimePoint at;
  NodeState state = NodeState::kErrorActive;
  std::string detail;
};

class CanBus {
 public:
  using Listener = std::function<void(const CanEvent&)>;
  virtual ~CanBus() = default;

  // Queues `frame` for transmission. Errors: kInvalidArgument for a frame Validate refuses or an
  // FD frame on a classic bus; kUnavailable when the node's transmit queue is full;
  // kUnavailable while the node is bus-off.
  virtual Status Send(const Frame& frame) = 0;
  // Listeners hear every event of this node until removed; the id removes it. A listener may add
  // and remove listeners, itself included.
  virtual int AddListener(Listener listener) = 0;
  virtual void RemoveListener(int id) = 0;

  virtual NodeState state() const = 0;
  virtual BitRates rates() const = 0;
  virtual bool fd() const = 0;  // whether the bus carries CAN FD frames
  virtual EventLoop& loop() = 0;
  virtual std::string name() const = 0;  // "powertrain/ecm": bus and node
};

// Listeners by id, safe against changes while an event is being delivered.
class Listeners {
 public:
  int Add(CanBus::Listener listener);
  void Remove(int id);
  void Notify(const CanEvent& event);
  bool empty() const;

 private:
  std::vector<std::pair<int, CanBus::Listener>> list_;
  int next_id_ = 1;
  int depth_ = 0;
  bool removed_ = false;
};

}  // namespace aloft::can
