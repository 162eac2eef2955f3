#include "core/event_loop.h"

#include <algorithm>
#include <future>

namespace aloft {

namespace {

int64_t Ticks(EventLoop::TimePoint t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

EventLoop::TimePoint FromTicks(int64_t ns) {
  return EventLoop::TimePoint(
      std::chrono::duration_cast<EventLoop::TimePoint::duration>(std::chrono::nanoseconds(ns)));
}

}  // namespace

TimerId TimerQueue::Add(EventLoop::TimePoint when, std::function<void()> fn) {
  const TimerId id = next_id_++;
  heap_.push_back({Ticks(when), id});
  std::push_heap(heap_.begin(), heap_.end(), std::greater<>());
  live_.emplace(id, std::move(fn));
  return id;
}

void TimerQueue::Skim() {
  while (!heap_.empty() && !live_.count(heap_.front().id)) {
    std::pop_heap(heap_.begin(), heap_.end(), std::greater<>());
    heap_.pop_back();
  }
}

bool TimerQueue::Next(EventLoop::TimePoint* when) {
  Skim();
  if (heap_.empty()) return false;
  *when = FromTicks(heap_.front().at);
  return true;
}

std::function<void()> TimerQueue::Pop() {
  Skim();
  std::pop_heap(heap_.begin(), heap_.end(), std::greater<>());
  const TimerId id = heap_.back().id;
  heap_.pop_back();
  auto it = live_.find(id);
  std::function<void()> fn = std::move(it->second);
  live_.erase(it);
  return fn;
}

SimLoop::SimLoop(std::chrono::system_clock::time_point wall) : clock_(wall) {}

TimerId SimLoop::At(TimePoint when, std::function<void()> fn) {
  return queue_.Add(std::max(when, Now()), std::move(fn));
}

void SimLoop::MoveTo(TimePoint t) {
  if (t > Now()) clock_.Advance(t - Now());
}

bool SimLoop::RunOne() {
  TimePoint when;
  if (!queue_.Next(&when)) return false;
  MoveTo(when);
  std::function<void()> fn = queue_.Pop();
  ++events_run_;
  fn();
  return true;
}

size_t SimLoop::RunUntil(TimePoint until) {
  size_t ran = 0;
  TimePoint when;
  while (queue_.Next(&when) && when <= until) {
    RunOne();
    ++ran;
  }
  MoveTo(until);
  return ran;
}

size_t SimLoop::RunFor(std::chrono::nanoseconds d) {
  return RunUntil(Now() + std::chrono::duration_cast<TimePoint::duration>(d));
}

bool SimLoop::RunUntil(const std::function<bool()>& done, std::chrono::nanoseconds limit) {
  const TimePoint until = Now() + std::chrono::duration_cast<TimePoint::duration>(limit);
  TimePoint when;
  while (!done()) {
    if (!queue_.Next(&when) || when > until) {
      MoveTo(until);
      return done();
    }
    RunOne();
  }
  return true;
}

size_t SimLoop::RunUntilIdle(std::chrono::nanoseconds limit) {
  const TimePoint until = Now() + std::chrono::duration_cast<TimePoint::duration>(limit);
  size_t ran = 0;
  TimePoint when;
  while (queue_.Next(&when) && when <= until) {
    RunOne();
    ++ran;
  }
  return ran;
}

RealLoop::RealLoop(const Clock& clock) : clock_(clock), thread_([this] { Loop(); }) {}

RealLoop::~RealLoop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

TimerId RealLoop::At(TimePoint when, std::function<void()> fn) {
  TimerId id;
  {
    std::lock_guard<std::mutex> lock(mu_);
    id = queue_.Add(when, std::move(fn));
  }
  cv_.notify_all();
  return id;
}

bool RealLoop::Cancel(TimerId id) {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.Cancel(id);
}

void RealLoop::Run(const std::function<void()>& fn) {
  std::promise<void> done;
  Post([&] {
    fn();
    done.set_value();
  });
  done.get_future().wait();
}

void RealLoop::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    TimePoint when;
    if (!queue_.Next(&when)) {
      cv_.wait(lock);
      continue;
    }
    const TimePoint now = clock_.Monotonic();
    if (when > now) {
      // The clock may be a ManualClock in tests: wait in slices rather than until a deadline
      // on the system's steady clock.
      cv_.wait_for(lock,
                   std::min<std::chrono::nanoseconds>(when - now, std::chrono::milliseconds(5)));
      continue;
    }
    std::function<void()> fn = queue_.Pop();
    lock.unlock();
    fn();
    lock.lock();
  }
}

}  // namespace aloft
