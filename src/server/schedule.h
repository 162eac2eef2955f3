// Maintenance windows: when a rollout lets devices install (docs/rollouts.md).
//
// A window is a cron schedule of start times, a duration and a time zone:
//
//   ALOFT_ASSIGN_OR_RETURN(MaintenanceWindow w,
//                          MaintenanceWindow::Parse("0 2 * * *", "02:00:00", "Europe/Berlin"));
//   bool now_open = w.IsOpen(clock.Wall());
//   auto next = w.NextStart(clock.Wall());   // when it opens next, within a year
//
// Schedules: standard cron's five fields (minute hour day-of-month month day-of-week), or
// Quartz's six or seven (hawkBit's form: seconds first, `?` for "any", an optional year) whose
// seconds must be 0. Fields take `*`, numbers, `a-b` ranges, `/step` and comma lists; months and
// days of week also JAN..DEC and SUN..SAT. Day-of-week 0 and 7 are Sunday (Quartz: 1 is Sunday).
// As in cron, when both day fields are restricted a day matching either one matches.
//
// Durations: "HH:MM:SS" (hawkBit) or a number with a unit: "90m", "2h", "3600s".
// Time zones: an IANA name read from the system's TZif files ($TZDIR or /usr/share/zoneinfo),
// "UTC", or a fixed offset "+02:00" / "-05:30" (hawkBit). Beyond the last transition in the file
// (2037 in Debian's tzdata) the last offset holds.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace aloft::server {

class TimeZone {
 public:
  static TimeZone Utc();
  // kInvalidArgument naming the zone when it is neither an offset nor a readable TZif file.
  static Result<TimeZone> Load(std::string_view name);

  // Seconds east of UTC in effect at `utc_s` (seconds since the epoch).
  int32_t OffsetAt(int64_t utc_s) const;
  const std::string& name() const { return name_; }

 private:
  std::string name_;
  std::vector<int64_t> transitions_;  // ascending, seconds since the epoch
  std::vector<int32_t> offsets_;      // offsets_[i] from transitions_[i]; offsets_.back() if none
  int32_t initial_ = 0;               // before the first transition
};

class CronSchedule {
 public:
  // kInvalidArgument naming the field and what is wrong with it.
  static Result<CronSchedule> Parse(std::string_view text);

  // Whether a start falls on this local minute (fields of the civil time in the zone).
  bool Matches(int minute, int hour, int day, int month, int weekday /*0 = Sunday*/) const;
  bool DayMatches(int day, int month, int weekday) const;
  bool HourMatches(int hour) const;
  const std::string& text() const { return text_; }

 private:
  std::string text_;
  uint64_t minutes_ = 0;  // bit i: minute i
  uint32_t hours_ = 0, days_ = 0, months_ = 0, weekdays_ = 0;
  bool any_day_ = true, any_weekday_ = true;
};

// "HH:MM:SS", "90m", "2h", "45s", "1d": a positive duration of at most 7 days.
Result<std::chrono::seconds> ParseDuration(std::string_view text);
// "HH:MM:SS" (hours may exceed 23).
std::string FormatDuration(std::chrono::seconds d);

class MaintenanceWindow {
 public:
  static Result<MaintenanceWindow> Parse(std::string_view schedule, std::string_view duration,
                                         std::string_view time_zone);

  bool IsOpen(std::chrono::system_clock::time_point t) const;
  // The first start at or after `t` (within 366 days), or nullopt.
  std::optional<std::chrono::system_clock::time_point> NextStart(
      std::chrono::system_clock::time_point t) const;

  const CronSchedule& schedule() const { return schedule_; }
  std::chrono::seconds duration() const { return duration_; }
  const TimeZone& zone() const { return zone_; }

 private:
  bool StartsAt(int64_t utc_minute) const;

  CronSchedule schedule_;
  std::chrono::seconds duration_{0};
  TimeZone zone_;
};

}  // namespace aloft::server
