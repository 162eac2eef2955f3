#include "core/clock.h"

#include <ctime>

namespace aloft {

std::string FormatRfc3339(std::chrono::system_clock::time_point t) {
  std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string FormatRfc3339Ms(int64_t unix_ms) {
  return FormatRfc3339(std::chrono::system_clock::time_point(std::chrono::milliseconds(unix_ms)));
}

std::optional<std::chrono::system_clock::time_point> ParseRfc3339(std::string_view s) {
  size_t i = 0;
  auto digits = [&](size_t n) -> std::optional<int> {
    if (i + n > s.size()) return std::nullopt;
    int v = 0;
    for (size_t k = 0; k < n; ++k) {
      char c = s[i + k];
      if (c < '0' || c > '9') return std::nullopt;
      v = v * 10 + (c - '0');
    }
    i += n;
    return v;
  };
  auto expect = [&](char a, char b = 0) {
    if (i < s.size() && (s[i] == a || (b && s[i] == b))) return ++i, true;
    return false;
  };
  auto year = digits(4);
  if (!year || !expect('-')) return std::nullopt;
  auto month = digits(2);
  if (!month || !expect('-')) return std::nullopt;
  auto day = digits(2);
  if (!day || !expect('T', 't')) return std::nullopt;
  auto hour = digits(2);
  if (!hour || !expect(':')) return std::nullopt;
  auto minute = digits(2);
  if (!minute || !expect(':')) return std::nullopt;
  auto second = digits(2);
  if (!second) return std::nullopt;
  std::chrono::nanoseconds frac{0};
  if (expect('.')) {
    int64_t scale = 100000000, n = 0;
    size_t start = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      n += (s[i] - '0') * scale;
      scale /= 10;
      ++i;
    }
    if (i == start) return std::nullopt;
    frac = std::chrono::nanoseconds(n);
  }
  int offset_min = 0;
  if (!expect('Z', 'z')) {
    if (i >= s.size() || (s[i] != '+' && s[i] != '-')) return std::nullopt;
    int sign = s[i++] == '-' ? -1 : 1;
    auto oh = digits(2);
    if (!oh || !expect(':')) return std::nullopt;
    auto om = digits(2);
    if (!om || *oh > 23 || *om > 59) return std::nullopt;
    offset_min = sign * (*oh * 60 + *om);
  }
  if (i != s.size()) return std::nullopt;
  std::chrono::year_month_day ymd{std::chrono::year(*year), std::chrono::month(*month),
                                  std::chrono::day(*day)};
  if (!ymd.ok() || *hour > 23 || *minute > 59 || *second > 60) return std::nullopt;
  auto t = std::chrono::sys_days(ymd) + std::chrono::hours(*hour) +
           std::chrono::minutes(*minute - offset_min) + std::chrono::seconds(*second);
  return std::chrono::time_point_cast<std::chrono::system_clock::duration>(t + frac);
}

}  // namespace aloft
