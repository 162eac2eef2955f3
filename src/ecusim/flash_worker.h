// A flash controller on simulated time: erase and program operations run one at a time, each
// taking the time the SimFlash's timing model charges for it, and report when they finish. The
// bytes change when an operation starts (a power cut then leaves it partial, as SimFlash models);
// the caller hears of it when its time is up.
#pragma once

#include <deque>
#include <functional>

#include "core/encoding.h"
#include "core/event_loop.h"
#include "flash/sim_flash.h"

namespace aloft::ecusim {

class FlashWorker {
 public:
  using Done = std::function<void(const Status& status)>;
  FlashWorker(EventLoop& loop, flash::SimFlash& flash) : loop_(loop), flash_(flash) {}
  ~FlashWorker() { Clear(); }

  void Erase(uint64_t offset, uint64_t length, Done done);
  void Program(uint64_t offset, Bytes data, Done done);
  bool idle() const { return !running_ && queue_.empty(); }
  // Called whenever the queue runs dry (what erase-ahead fills).
  void OnIdle(std::function<void()> fn) { on_idle_ = std::move(fn); }
  // Drops what is queued and forgets the running operation (a reset or power loss).
  void Clear();
  // Time the flash has been busy.
  std::chrono::nanoseconds busy() const { return busy_; }

 private:
  struct Op {
    bool erase;
    uint64_t offset;
    uint64_t length;
    Bytes data;
    Done done;
  };
  void Next();

  EventLoop& loop_;
  flash::SimFlash& flash_;
  std::deque<Op> queue_;
  bool running_ = false;
  TimerId timer_ = 0;
  std::function<void()> on_idle_;
  std::chrono::nanoseconds busy_{0};
};

}  // namespace aloft::ecusim
