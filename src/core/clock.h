// Time as a seam. Logic never reads the clock directly; it is handed a Clock, and tests hand it a
// ManualClock they advance by hand (schedules, timeouts, expiry, progress throttling).
#pragma once

#include <chrono>
#include <string>

namespace aloft {

class Clock {
 public:
  virtual ~Clock() = default;
  // For intervals: never goes backwards.
  virtual std::chrono::steady_clock::time_point Monotonic() const = 0;
  // Calendar time: timestamps in manifests, logs, schedules.
  virtual std::chrono::system_clock::time_point Wall() const = 0;
};

class SystemClock final : public Clock {
 public:
  std::chrono::steady_clock::time_point Monotonic() const override {
    return std::chrono::steady_clock::now();
  }
  std::chrono::system_clock::time_point Wall() const override {
    return std::chrono::system_clock::now();
  }
  // A process-wide instance for programs' main() to inject.
  static const SystemClock& Instance() {
    static const SystemClock clock;
    return clock;
  }
};

class ManualClock final : public Clock {
 public:
  explicit ManualClock(std::chrono::system_clock::time_point wall = {}) : wall_(wall) {}
  std::chrono::steady_clock::time_point Monotonic() const override { return mono_; }
  std::chrono::system_clock::time_point Wall() const override { return wall_; }
  void Advance(std::chrono::nanoseconds d) {
    mono_ += d;
    wall_ += std::chrono::duration_cast<std::chrono::system_clock::duration>(d);
  }

 private:
  std::chrono::steady_clock::time_point mono_{};
  std::chrono::system_clock::time_point wall_;
};

// "2026-11-21T21:41:50Z" (RFC 3339, UTC, whole seconds).
std::string FormatRfc3339(std::chrono::system_clock::time_point t);

}  // namespace aloft
