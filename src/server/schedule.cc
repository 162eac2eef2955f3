#include "server/schedule.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "core/file.h"
#include "core/text.h"

namespace aloft::server {
namespace {

using std::chrono::seconds;
using std::chrono::system_clock;

Error Invalid(std::string message) { return Error(Code::kInvalidArgument, std::move(message)); }

// Floor division, for negative times.
int64_t FloorDiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

bool ParseInt(std::string_view s, int& out) {
  if (s.empty() || s.size() > 9) return false;
  int v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  out = v;
  return true;
}

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (;;) {
    size_t at = s.find(sep, start);
    out.push_back(s.substr(start, at == std::string_view::npos ? at : at - start));
    if (at == std::string_view::npos) return out;
    start = at + 1;
  }
}

// ±HH:MM -> seconds east of UTC.
bool ParseFixedOffset(std::string_view s, int32_t& out) {
  if (s.size() != 6 || (s[0] != '+' && s[0] != '-') || s[3] != ':') return false;
  int h = 0, m = 0;
  if (!ParseInt(s.substr(1, 2), h) || !ParseInt(s.substr(4, 2), m) || h > 14 || m > 59) {
    return false;
  }
  out = (s[0] == '-' ? -1 : 1) * (h * 3600 + m * 60);
  return true;
}

uint32_t Be32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}

struct FieldSpec {
  const char* name;
  int min, max;
  const char* const* names;  // for min..min+count-1, or nullptr
  int name_count;
};

constexpr const char* kMonthNames[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                       "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
constexpr const char* kDayNames[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};

bool ParseValue(std::string_view s, const FieldSpec& f, int& out) {
  if (ParseInt(s, out)) return true;
  if (f.names == nullptr) return false;
  std::string upper(s);
  for (auto& c : upper) c = static_cast<char>(toupper(static_cast<unsigned char>(c)));
  for (int i = 0; i < f.name_count; ++i) {
    if (upper == f.names[i]) {
      out = f.min + i;
      return true;
    }
  }
  return false;
}

// One cron field as a bit set over f.min..f.max; `any` when it is `*` or `?`.
Result<uint64_t> ParseField(std::string_view text, const FieldSpec& f, bool& any) {
  auto bad = [&](const std::string& why) {
    return Invalid(std::string(f.name) + " field '" + std::string(text) + "': " + why);
  };
  any = text == "*" || text == "?";
  uint64_t bits = 0;
  for (std::string_view part : Split(text, ',')) {
    if (part.empty()) return bad("empty list item");
    int step = 1;
    if (auto slash = part.find('/'); slash != std::string_view::npos) {
      if (!ParseInt(part.substr(slash + 1), step) || step == 0) {
        return bad("the step after '/' must be a positive number");
      }
      part = part.substr(0, slash);
    }
    int lo = f.min, hi = f.max;
    if (part == "*" || part == "?") {
      // all values
    } else if (auto dash = part.find('-'); dash != std::string_view::npos) {
      if (!ParseValue(part.substr(0, dash), f, lo) || !ParseValue(part.substr(dash + 1), f, hi)) {
        return bad(std::string("'").append(part).append("' is not a range of two values"));
      }
    } else {
      if (part.find_first_of("LW#") != std::string_view::npos) {
        return bad("L, W and # are not supported");
      }
      if (!ParseValue(part, f, lo))
        return bad(std::string("'").append(part).append("' is not a value"));
      hi = step > 1 ? f.max : lo;  // "5/15": from 5 on, every 15
    }
    if (lo < f.min || hi > f.max || lo > hi) {
      return bad("values must be within " + std::to_string(f.min) + "-" + std::to_string(f.max));
    }
    for (int v = lo; v <= hi; v += step) bits |= uint64_t{1} << v;
  }
  return bits;
}

struct Civil {
  int minute, hour, day, month, weekday;
};

Civil CivilOf(int64_t local_s) {
  int64_t days = FloorDiv(local_s, 86400);
  int64_t secs = local_s - days * 86400;
  std::chrono::sys_days sd{std::chrono::days(days)};
  std::chrono::year_month_day ymd(sd);
  return {static_cast<int>(secs / 60 % 60), static_cast<int>(secs / 3600),
          static_cast<int>(static_cast<unsigned>(ymd.day())),
          static_cast<int>(static_cast<unsigned>(ymd.month())),
          static_cast<int>(std::chrono::weekday(sd).c_encoding())};
}

}  // namespace

TimeZone TimeZone::Utc() {
  TimeZone z;
  z.name_ = "UTC";
  return z;
}

Result<TimeZone> TimeZone::Load(std::string_view name) {
  if (name.empty() || name == "UTC" || name == "Z" || name == "Etc/UTC") return Utc();
  TimeZone z;
  z.name_ = std::string(name);
  if (ParseFixedOffset(name, z.initial_)) return z;
  auto bad = [&](const std::string& why) {
    return Invalid("time zone '" + std::string(name) + "': " + why);
  };
  bool safe = name.front() != '/' && name.find("..") == std::string_view::npos;
  for (char c : name) {
    safe = safe && (isalnum(static_cast<unsigned char>(c)) || strchr("/_-+", c) != nullptr);
  }
  if (!safe) return bad("not an IANA name (e.g. Europe/Berlin) or an offset (e.g. +02:00)");
  const char* dir = std::getenv("TZDIR");
  std::string path = std::string(dir && *dir ? dir : "/usr/share/zoneinfo") + "/" + z.name_;
  auto text = ReadFile(path, 1 << 20);
  if (!text.ok()) return bad("unknown (no " + path + ")");
  const auto* p = reinterpret_cast<const uint8_t*>(text->data());
  size_t n = text->size();
  // RFC 8536. Version 2+ files repeat the data with 64-bit times after the version 1 block.
  auto header = [&](size_t at, uint32_t c[6]) {
    if (at + 44 > n || std::memcmp(p + at, "TZif", 4) != 0) return false;
    for (int i = 0; i < 6; ++i) c[i] = Be32(p + at + 20 + 4 * i);
    return true;
  };
  uint32_t c[6];  // isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt
  if (!header(0, c)) return bad(path + " is not a TZif file");
  size_t at = 44;
  size_t time_size = 4;
  if (p[4] >= '2') {
    at += size_t{c[3]} * 5 + size_t{c[4]} * 6 + c[5] + size_t{c[2]} * 8 + c[1] + c[0];
    if (!header(at, c)) return bad(path + " has a damaged version 2 header");
    at += 44;
    time_size = 8;
  }
  size_t need = size_t{c[3]} * (time_size + 1) + size_t{c[4]} * 6;
  if (c[4] == 0 || c[4] > 256 || at + need > n) return bad(path + " is truncated or damaged");
  const uint8_t* times = p + at;
  const uint8_t* idx = times + size_t{c[3]} * time_size;
  const uint8_t* types = idx + c[3];
  auto utoff = [&](uint8_t type) { return static_cast<int32_t>(Be32(types + 6 * size_t{type})); };
  z.initial_ = utoff(0);
  for (uint32_t i = 0; i < c[3]; ++i) {
    int64_t t =
        time_size == 8
            ? static_cast<int64_t>(uint64_t{Be32(times + 8 * i)} << 32 | Be32(times + 8 * i + 4))
            : static_cast<int32_t>(Be32(times + 4 * i));
    if (idx[i] >= c[4]) return bad(path + " is damaged (a transition to an unknown type)");
    z.transitions_.push_back(t);
    z.offsets_.push_back(utoff(idx[i]));
  }
  return z;
}

int32_t TimeZone::OffsetAt(int64_t utc_s) const {
  auto it = std::upper_bound(transitions_.begin(), transitions_.end(), utc_s);
  if (it == transitions_.begin()) return initial_;
  return offsets_[static_cast<size_t>(it - transitions_.begin()) - 1];
}

Result<CronSchedule> CronSchedule::Parse(std::string_view text) {
  std::vector<std::string_view> fields;
  for (std::string_view f : Split(TrimSpace(text), ' ')) {
    if (!f.empty()) fields.push_back(f);
  }
  if (fields.size() < 5 || fields.size() > 7) {
    return Invalid("schedule '" + std::string(text) +
                   "': expected 5 cron fields (minute hour day month weekday) or Quartz's 6 or 7 "
                   "(second first), got " +
                   std::to_string(fields.size()));
  }
  bool quartz = fields.size() > 5;
  if (quartz) {
    if (fields[0] != "0") {
      return Invalid("schedule '" + std::string(text) + "': the seconds field must be 0");
    }
    if (fields.size() == 7 && fields[6] != "*" && fields[6] != "?") {
      return Invalid("schedule '" + std::string(text) + "': a year field must be * or ?");
    }
    fields.erase(fields.begin());
  }
  CronSchedule s;
  s.text_ = std::string(TrimSpace(text));
  bool any = false;
  ALOFT_ASSIGN_OR_RETURN(s.minutes_, ParseField(fields[0], {"minute", 0, 59, nullptr, 0}, any));
  ALOFT_ASSIGN_OR_RETURN(uint64_t hours, ParseField(fields[1], {"hour", 0, 23, nullptr, 0}, any));
  ALOFT_ASSIGN_OR_RETURN(uint64_t days,
                         ParseField(fields[2], {"day-of-month", 1, 31, nullptr, 0}, s.any_day_));
  ALOFT_ASSIGN_OR_RETURN(uint64_t months,
                         ParseField(fields[3], {"month", 1, 12, kMonthNames, 12}, any));
  uint64_t weekdays = 0;
  if (quartz) {  // 1 = Sunday .. 7 = Saturday
    ALOFT_ASSIGN_OR_RETURN(
        uint64_t q, ParseField(fields[4], {"day-of-week", 1, 7, kDayNames, 7}, s.any_weekday_));
    weekdays = q >> 1;
  } else {  // 0 or 7 = Sunday
    ALOFT_ASSIGN_OR_RETURN(
        weekdays, ParseField(fields[4], {"day-of-week", 0, 7, kDayNames, 7}, s.any_weekday_));
    if (weekdays & (1u << 7)) weekdays = (weekdays | 1) & 0x7f;
  }
  s.hours_ = static_cast<uint32_t>(hours);
  s.days_ = static_cast<uint32_t>(days);
  s.months_ = static_cast<uint32_t>(months);
  s.weekdays_ = static_cast<uint32_t>(weekdays);
  return s;
}

bool CronSchedule::Matches(int minute, int hour, int day, int month, int weekday) const {
  return (minutes_ >> minute & 1) && HourMatches(hour) && DayMatches(day, month, weekday);
}

bool CronSchedule::HourMatches(int hour) const { return hours_ >> hour & 1; }

bool CronSchedule::DayMatches(int day, int month, int weekday) const {
  if (!(months_ >> month & 1)) return false;
  bool day_ok = days_ >> day & 1, weekday_ok = weekdays_ >> weekday & 1;
  if (any_day_ || any_weekday_) return day_ok && weekday_ok;
  return day_ok || weekday_ok;  // cron: either restricted day field
}

Result<seconds> ParseDuration(std::string_view text) {
  auto bad = [&] {
    return Invalid("duration '" + std::string(text) +
                   "': expected HH:MM:SS or a number with s, m, h or d (e.g. 90m)");
  };
  int64_t total = 0;
  if (text.find(':') != std::string_view::npos) {
    auto parts = Split(text, ':');
    int h = 0, m = 0, s = 0;
    if (parts.size() != 3 || !ParseInt(parts[0], h) || !ParseInt(parts[1], m) ||
        !ParseInt(parts[2], s) || m > 59 || s > 59) {
      return bad();
    }
    total = int64_t{h} * 3600 + m * 60 + s;
  } else {
    if (text.size() < 2) return bad();
    int v = 0;
    if (!ParseInt(text.substr(0, text.size() - 1), v)) return bad();
    switch (text.back()) {
      case 's':
        total = v;
        break;
      case 'm':
        total = int64_t{v} * 60;
        break;
      case 'h':
        total = int64_t{v} * 3600;
        break;
      case 'd':
        total = int64_t{v} * 86400;
        break;
      default:
        return bad();
    }
  }
  if (total <= 0 || total > 7 * 86400) {
    return Invalid("duration '" + std::string(text) + "' must be above 0 and at most 7 days");
  }
  return seconds(total);
}

std::string FormatDuration(seconds d) {
  int64_t s = d.count();
  char buf[32];
  std::snprintf(buf, sizeof buf, "%02lld:%02lld:%02lld", static_cast<long long>(s / 3600),
                static_cast<long long>(s / 60 % 60), static_cast<long long>(s % 60));
  return buf;
}

Result<MaintenanceWindow> MaintenanceWindow::Parse(std::string_view schedule,
                                                   std::string_view duration,
                                                   std::string_view time_zone) {
  MaintenanceWindow w;
  ALOFT_ASSIGN_OR_RETURN(w.schedule_, CronSchedule::Parse(schedule));
  ALOFT_ASSIGN_OR_RETURN(w.duration_, ParseDuration(duration));
  ALOFT_ASSIGN_OR_RETURN(w.zone_, TimeZone::Load(time_zone));
  return w;
}

bool MaintenanceWindow::StartsAt(int64_t utc_minute) const {
  int64_t utc_s = utc_minute * 60;
  Civil c = CivilOf(utc_s + zone_.OffsetAt(utc_s));
  return schedule_.Matches(c.minute, c.hour, c.day, c.month, c.weekday);
}

bool MaintenanceWindow::IsOpen(system_clock::time_point t) const {
  int64_t now_s = std::chrono::floor<seconds>(t.time_since_epoch()).count();
  // A start s (on a whole minute) with s <= now < s + duration.
  for (int64_t m = FloorDiv(now_s, 60); m * 60 > now_s - duration_.count(); --m) {
    if (StartsAt(m)) return true;
  }
  return false;
}

std::optional<system_clock::time_point> MaintenanceWindow::NextStart(
    system_clock::time_point t) const {
  int64_t now_s = std::chrono::ceil<seconds>(t.time_since_epoch()).count();
  int64_t m = FloorDiv(now_s + 59, 60);
  const int64_t end = m + 366 * 24 * 60;
  while (m < end) {
    int64_t utc_s = m * 60;
    int64_t local_s = utc_s + zone_.OffsetAt(utc_s);
    Civil c = CivilOf(local_s);
    if (schedule_.Matches(c.minute, c.hour, c.day, c.month, c.weekday)) {
      return system_clock::time_point(seconds(utc_s));
    }
    // Skip what cannot match: the rest of the local day when the day does not, the rest of the
    // hour when the hour does not. (Across a DST change a start may be skipped or repeated, as in
    // cron.)
    if (!schedule_.DayMatches(c.day, c.month, c.weekday)) {
      int64_t into_day = local_s - FloorDiv(local_s, 86400) * 86400;
      m += std::max<int64_t>(1, (86400 - into_day) / 60);
    } else if (!schedule_.HourMatches(c.hour)) {
      m += 60 - c.minute;
    } else {
      ++m;
    }
  }
  return std::nullopt;
}

}  // namespace aloft::server
