// Timed work as a seam. Protocol code (the CAN bus model, ISO-TP, UDS, DoIP, the ECU simulator)
// never sleeps and never starts threads: it schedules callbacks on an EventLoop and runs inside
// them, one at a time. Hand it a SimLoop and a whole car runs on simulated time, deterministic and
// as fast as the CPU allows; hand it a RealLoop and the same code runs in real time beside sockets.
//
//   SimLoop loop;
//   loop.After(std::chrono::milliseconds(50), [&] { ... });
//   loop.RunFor(std::chrono::seconds(1));   // runs what falls due; the clock stands 1 s later
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/clock.h"

namespace aloft {

using TimerId = uint64_t;

class EventLoop {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  virtual ~EventLoop() = default;
  virtual const Clock& clock() const = 0;
  TimePoint Now() const { return clock().Monotonic(); }
  // Runs `fn` on the loop at `when` (at once if that has passed). Callbacks due at the same
  // instant run in the order they were scheduled.
  virtual TimerId At(TimePoint when, std::function<void()> fn) = 0;
  TimerId After(std::chrono::nanoseconds delay, std::function<void()> fn) {
    return At(Now() + std::chrono::duration_cast<std::chrono::steady_clock::duration>(delay),
              std::move(fn));
  }
  // Runs `fn` on the loop after what is due now.
  TimerId Post(std::function<void()> fn) { return At(Now(), std::move(fn)); }
  // False when the timer already ran, was cancelled, or never existed.
  virtual bool Cancel(TimerId id) = 0;
};

// The schedule both loops keep: a heap of (time, id) and the callbacks still live by id (a
// cancelled timer leaves its heap entry behind, skipped when it comes up).
class TimerQueue {
 public:
  TimerId Add(EventLoop::TimePoint when, std::function<void()> fn);
  bool Cancel(TimerId id) { return live_.erase(id) > 0; }
  // The earliest live timer's time; false when none is left.
  bool Next(EventLoop::TimePoint* when);
  // Removes and returns the earliest live timer's callback.
  std::function<void()> Pop();
  size_t size() const { return live_.size(); }

 private:
  struct Entry {
    int64_t at;
    TimerId id;
    bool operator>(const Entry& o) const { return at != o.at ? at > o.at : id > o.id; }
  };
  void Skim();
  std::vector<Entry> heap_;
  std::unordered_map<TimerId, std::function<void()>> live_;
  TimerId next_id_ = 1;
};

// Simulated time: the clock moves only from one scheduled event to the next. Single-threaded: the
// caller's thread runs the events inside Run*.
class SimLoop final : public EventLoop {
 public:
  // The wall clock starts at `wall` (monotonic time at 0).
  explicit SimLoop(std::chrono::system_clock::time_point wall = {});
  const Clock& clock() const override { return clock_; }
  TimerId At(TimePoint when, std::function<void()> fn) override;
  bool Cancel(TimerId id) override { return queue_.Cancel(id); }

  // Runs the earliest event, moving the clock to its time; false when none is left.
  bool RunOne();
  // Runs events due up to `until`; the clock then stands at `until`. Returns how many ran.
  size_t RunUntil(TimePoint until);
  size_t RunFor(std::chrono::nanoseconds d);
  // Runs events until `done()` holds (checked before each one) or `limit` of simulated time has
  // passed; returns done().
  bool RunUntil(const std::function<bool()>& done, std::chrono::nanoseconds limit);
  // Runs until nothing is scheduled (or `limit` passes: periodic timers never stop).
  size_t RunUntilIdle(std::chrono::nanoseconds limit = std::chrono::hours(24));
  size_t pending() const { return queue_.size(); }
  uint64_t events_run() const { return events_run_; }

 private:
  void MoveTo(TimePoint t);
  ManualClock clock_;
  TimerQueue queue_;
  uint64_t events_run_ = 0;
};

// Real time: a thread of its own runs the callbacks as they fall due. At, Post and Cancel may be
// called from any thread; the callbacks run one at a time on the loop's thread.
class RealLoop final : public EventLoop {
 public:
  explicit RealLoop(const Clock& clock = SystemClock::Instance());
  ~RealLoop() override;  // stops the thread; callbacks not yet due never run
  const Clock& clock() const override { return clock_; }
  TimerId At(TimePoint when, std::function<void()> fn) override;
  bool Cancel(TimerId id) override;
  // Runs `fn` on the loop and waits for it (not from the loop's own thread).
  void Run(const std::function<void()>& fn);
  bool on_loop_thread() const { return std::this_thread::get_id() == thread_.get_id(); }

 private:
  void Loop();
  const Clock& clock_;
  std::mutex mu_;
  std::condition_variable cv_;
  TimerQueue queue_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace aloft
