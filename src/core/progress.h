// A progress bar for long work on a terminal (packing or verifying a large image):
//
//   packing main   [#############...........]  54%  553.2/1024.0 MiB  212.4 MiB/s
//
// Draws only when its stream is a terminal (or when forced, for tests), at most every 100 ms of the
// injected Clock, and erases itself at Finish() so that later output starts on a clean line.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

#include "core/clock.h"

namespace aloft {

class Progress {
 public:
  enum class Mode { kAuto, kAlways, kNever };
  Progress(std::string label, uint64_t total, const Clock& clock, std::FILE* out = stderr,
           Mode mode = Mode::kAuto);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  // Adds `n` bytes done; redraws if 100 ms have passed since the last draw.
  void Add(uint64_t n);
  // Erases the bar.
  void Finish();

  bool enabled() const { return enabled_; }
  // The line as it would be drawn now (without the leading carriage return).
  std::string Render() const;

 private:
  std::string label_;
  uint64_t total_;
  uint64_t done_ = 0;
  const Clock& clock_;
  std::FILE* out_;
  bool enabled_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace aloft
