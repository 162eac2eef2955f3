// Two Links joined in memory: what one end sends, the other receives on the loop, after
// `latency`. For tests of UDS itself, without a bus in between.
#pragma once

#include <memory>

#include "uds/link.h"

namespace aloft::uds {

class MemoryLink final : public Link {
 public:
  // A connected pair.
  static std::pair<std::unique_ptr<MemoryLink>, std::unique_ptr<MemoryLink>> Pair(
      EventLoop& loop, std::chrono::nanoseconds latency = std::chrono::microseconds(100)) {
    auto a = std::unique_ptr<MemoryLink>(new MemoryLink(loop, latency, "a"));
    auto b = std::unique_ptr<MemoryLink>(new MemoryLink(loop, latency, "b"));
    a->peer_ = b.get();
    b->peer_ = a.get();
    a->alive_ = b->alive_ = std::make_shared<bool>(true);
    return {std::move(a), std::move(b)};
  }
  ~MemoryLink() override {
    *alive_ = false;
    if (peer_) peer_->peer_ = nullptr;
  }
  void Send(std::vector<uint8_t> message, Done done) override {
    std::weak_ptr<bool> alive = alive_;
    loop_.After(latency_, [this, alive, message = std::move(message), done = std::move(done)] {
      if (alive.expired() || !*alive.lock() || !peer_) {
        if (done) done(Error(Code::kUnavailable, "memory link closed"));
        return;
      }
      if (done) done(OkStatus());
      peer_->Deliver(message);
    });
  }
  EventLoop& loop() override { return loop_; }
  std::string name() const override { return "memory link " + name_; }

 private:
  MemoryLink(EventLoop& loop, std::chrono::nanoseconds latency, std::string name)
      : loop_(loop), latency_(latency), name_(std::move(name)) {}
  EventLoop& loop_;
  std::chrono::nanoseconds latency_;
  std::string name_;
  MemoryLink* peer_ = nullptr;
  std::shared_ptr<bool> alive_;
};

}  // namespace aloft::uds
