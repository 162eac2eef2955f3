// Time as a seam. Logic never reads the clock directly; it is handed a Clock, and tests hand it a
// ManualClock they advance by hand (schedules, timeouts, expiry, progress throttling).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

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

// Safe to read from several threads while one advances it (servers under test).
class ManualClock final : public Clock {
 public:
  explicit ManualClock(std::chrono::system_clock::time_point wall = {})
      : wall_ns_(
            std::chrono::duration_cast<std::chrono::nanoseconds>(wall.time_since_epoch()).count()) {
  }
  std::chrono::steady_clock::time_point Monotonic() const override {
    return std::chrono::steady_clock::time_point(
        std::chrono::duration_cast<std::chrono::steady_clock::duration>(
            std::chrono::nanoseconds(mono_ns_.load(std::memory_order_acquire))));
  }
  std::chrono::system_clock::time_point Wall() const override {
    return std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(
            std::chrono::nanoseconds(wall_ns_.load(std::memory_order_acquire))));
  }
  void Advance(std::chrono::nanoseconds d) {
    mono_ns_.fetch_add(d.count(), std::memory_order_acq_rel);
    wall_ns_.fetch_add(d.count(), std::memory_order_acq_rel);
  }

 private:
  std::atomic<int64_t> mono_ns_{0};
  std::atomic<int64_t> wall_ns_;
};

// "2026-11-21T21:41:50Z" (RFC 3339, UTC, whole seconds).
std::string FormatRfc3339(std::chrono::system_clock::time_point t);
// The same for milliseconds since the epoch (how the server stores times).
std::string FormatRfc3339Ms(int64_t unix_ms);
// "2026-11-22T02:00:00Z", "2026-11-22T03:00:00.5+01:00": nullopt when it is not RFC 3339.
std::optional<std::chrono::system_clock::time_point> ParseRfc3339(std::string_view text);

}  // namespace aloft
