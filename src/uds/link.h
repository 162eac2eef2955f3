// The Link seam: one diagnostic connection between a tester and an ECU, carrying whole UDS
// messages. ISO-TP on CAN (IsoTpLink here) and DoIP diagnostic messages (src/doip) implement it;
// the UDS client and server see only messages.
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/event_loop.h"
#include "isotp/channel.h"

namespace aloft::uds {

class Link {
 public:
  using Handler = std::function<void(const std::vector<uint8_t>& message)>;
  using Done = std::function<void(const Status& status)>;
  virtual ~Link() = default;
  // Sends one message; `done` when it is on its way (or failed).
  virtual void Send(std::vector<uint8_t> message, Done done) = 0;
  // Every message arriving; the id removes the listener.
  int AddListener(Handler handler) {
    listeners_.emplace_back(next_id_, std::move(handler));
    return next_id_++;
  }
  void RemoveListener(int id) {
    std::erase_if(listeners_, [id](const auto& l) { return l.first == id; });
  }
  virtual EventLoop& loop() = 0;
  virtual std::string name() const = 0;
  // The largest message the far end takes (what 0x14 responseTooLong guards).
  virtual size_t max_message() const { return 4095; }

 protected:
  void Deliver(const std::vector<uint8_t>& message) {
    auto copy = listeners_;  // a listener may add or remove listeners
    for (auto& [id, fn] : copy) fn(message);
  }

 private:
  std::vector<std::pair<int, Handler>> listeners_;
  int next_id_ = 1;
};

// UDS over an ISO-TP channel.
class IsoTpLink final : public Link {
 public:
  explicit IsoTpLink(isotp::Channel& channel, can::CanBus& bus) : channel_(channel), bus_(bus) {
    channel_.OnMessage([this](std::vector<uint8_t> m) { Deliver(m); });
  }
  ~IsoTpLink() override { channel_.OnMessage(nullptr); }
  void Send(std::vector<uint8_t> message, Done done) override {
    channel_.Send(std::move(message), std::move(done));
  }
  EventLoop& loop() override { return bus_.loop(); }
  std::string name() const override { return "ISO-TP " + channel_.name(); }

 private:
  isotp::Channel& channel_;
  can::CanBus& bus_;
};

}  // namespace aloft::uds
