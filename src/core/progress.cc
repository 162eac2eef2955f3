#include "core/progress.h"

#include <unistd.h>

#include <algorithm>

namespace aloft {

Progress::Progress(std::string label, uint64_t total, const Clock& clock, std::FILE* out, Mode mode)
    : label_(std::move(label)),
      total_(total),
      clock_(clock),
      out_(out),
      enabled_(mode == Mode::kAlways || (mode == Mode::kAuto && ::isatty(::fileno(out)))),
      start_(clock.Monotonic()),
      last_draw_(start_) {}

Progress::~Progress() { Finish(); }

void Progress::Add(uint64_t n) {
  done_ += n;
  if (!enabled_) return;
  auto now = clock_.Monotonic();
  if (drawn_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  drawn_ = true;
  std::fprintf(out_, "\r%s", Render().c_str());
  std::fflush(out_);
}

void Progress::Finish() {
  if (!enabled_ || !drawn_) return;
  std::fprintf(out_, "\r\033[K");
  std::fflush(out_);
  drawn_ = false;
}

std::string Progress::Render() const {
  constexpr int kWidth = 24;
  double fraction = total_ == 0 ? 1.0 : std::min(1.0, double(done_) / double(total_));
  int filled = int(fraction * kWidth);
  std::string bar(filled, '#');
  bar.append(kWidth - filled, '.');
  double secs = std::chrono::duration<double>(clock_.Monotonic() - start_).count();
  constexpr double kMiB = 1024.0 * 1024.0;
  char line[256];
  std::snprintf(line, sizeof line, "%-14s [%s] %3d%%  %.1f/%.1f MiB  %.1f MiB/s", label_.c_str(),
                bar.c_str(), int(fraction * 100), double(done_) / kMiB, double(total_) / kMiB,
                secs > 0 ? double(done_) / kMiB / secs : 0.0);
  return line;
}

}  // namespace aloft
