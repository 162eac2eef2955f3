#include "server/schedule.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "support/matchers.h"

namespace aloft::server {
namespace {

using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::seconds;
using std::chrono::system_clock;
using ::testing::_;
using ::testing::HasSubstr;

// 2026-11-21 (a Saturday) at HH:MM:SS UTC.
system_clock::time_point Nov21(int h, int m, int s = 0) {
  return system_clock::time_point(
             std::chrono::sys_days(std::chrono::year(2026) / std::chrono::November / 21)
                 .time_since_epoch()) +
         hours(h) + minutes(m) + seconds(s);
}

TEST(TimeZone, OffsetsFromTheSystemsZoneFilesAndFixedOffsets) {
  auto berlin = TimeZone::Load("Europe/Berlin");
  ASSERT_THAT(berlin, IsOk());
  int64_t winter = system_clock::to_time_t(Nov21(12, 0));
  int64_t summer = winter - 150 * 86400;  // late June
  EXPECT_EQ(berlin->OffsetAt(winter), 3600);
  EXPECT_EQ(berlin->OffsetAt(summer), 7200);
  auto ny = TimeZone::Load("America/New_York");
  ASSERT_THAT(ny, IsOk());
  EXPECT_EQ(ny->OffsetAt(winter), -5 * 3600);
  auto fixed = TimeZone::Load("+05:30");
  ASSERT_THAT(fixed, IsOk());
  EXPECT_EQ(fixed->OffsetAt(winter), 5 * 3600 + 1800);
  EXPECT_EQ(TimeZone::Utc().OffsetAt(winter), 0);
}

TEST(TimeZone, UnknownOrUnsafeNamesAreRefusedByName) {
  EXPECT_THAT(TimeZone::Load("Mars/Olympus"), IsError(Code::kInvalidArgument, HasSubstr("Mars")));
  EXPECT_THAT(TimeZone::Load("../../etc/passwd"),
              IsError(Code::kInvalidArgument, HasSubstr("not an IANA name")));
  EXPECT_THAT(TimeZone::Load("+25:00"), IsError(Code::kInvalidArgument, _));
}

TEST(CronSchedule, ParsesCronAndQuartzForms) {
  auto nightly = CronSchedule::Parse("30 2 * * *");
  ASSERT_THAT(nightly, IsOk());
  EXPECT_TRUE(nightly->Matches(30, 2, 21, 11, 6));
  EXPECT_FALSE(nightly->Matches(31, 2, 21, 11, 6));
  auto weekdays = CronSchedule::Parse("0 */6 * * MON-FRI");
  ASSERT_THAT(weekdays, IsOk());
  EXPECT_TRUE(weekdays->Matches(0, 18, 20, 11, 5));
  EXPECT_FALSE(weekdays->Matches(0, 18, 21, 11, 6));  // Saturday
  EXPECT_FALSE(weekdays->Matches(0, 5, 20, 11, 5));
  // hawkBit's Quartz form: seconds first, ? for any, 1 = Sunday.
  auto quartz = CronSchedule::Parse("0 0 3 ? * 1");
  ASSERT_THAT(quartz, IsOk());
  EXPECT_TRUE(quartz->Matches(0, 3, 22, 11, 0));
  EXPECT_FALSE(quartz->Matches(0, 3, 21, 11, 6));
  // Both day fields restricted: either matches.
  auto either = CronSchedule::Parse("0 0 1 * 0");
  ASSERT_THAT(either, IsOk());
  EXPECT_TRUE(either->Matches(0, 0, 1, 12, 2));
  EXPECT_TRUE(either->Matches(0, 0, 22, 11, 0));
  EXPECT_FALSE(either->Matches(0, 0, 21, 11, 6));
}

TEST(CronSchedule, BadFieldsAreNamed) {
  EXPECT_THAT(CronSchedule::Parse("61 * * * *"),
              IsError(Code::kInvalidArgument, HasSubstr("minute field '61'")));
  EXPECT_THAT(CronSchedule::Parse("* * * *"),
              IsError(Code::kInvalidArgument, HasSubstr("expected 5 cron fields")));
  EXPECT_THAT(CronSchedule::Parse("0 0 L * ?"),
              IsError(Code::kInvalidArgument, HasSubstr("day-of-month")));
  EXPECT_THAT(CronSchedule::Parse("5 0 0 * * ?"),
              IsError(Code::kInvalidArgument, HasSubstr("seconds field must be 0")));
  EXPECT_THAT(CronSchedule::Parse("0 0 * FOO *"),
              IsError(Code::kInvalidArgument, HasSubstr("month field")));
  EXPECT_THAT(CronSchedule::Parse("*/0 * * * *"),
              IsError(Code::kInvalidArgument, HasSubstr("step")));
}

TEST(Duration, ParsesAndFormats) {
  EXPECT_EQ(*ParseDuration("02:30:00"), seconds(9000));
  EXPECT_EQ(*ParseDuration("90m"), seconds(5400));
  EXPECT_EQ(*ParseDuration("1d"), seconds(86400));
  EXPECT_EQ(FormatDuration(seconds(9000)), "02:30:00");
  EXPECT_THAT(ParseDuration("0s"), IsError(Code::kInvalidArgument, _));
  EXPECT_THAT(ParseDuration("8d"), IsError(Code::kInvalidArgument, HasSubstr("7 days")));
  EXPECT_THAT(ParseDuration("soon"), IsError(Code::kInvalidArgument, HasSubstr("'soon'")));
}

TEST(MaintenanceWindow, OpenOnlyWithinDurationOfAStartInItsZone) {
  // 02:00 to 04:00 in Berlin = 01:00 to 03:00 UTC in November.
  auto w = MaintenanceWindow::Parse("0 2 * * *", "02:00:00", "Europe/Berlin");
  ASSERT_THAT(w, IsOk());
  EXPECT_FALSE(w->IsOpen(Nov21(0, 59, 59)));
  EXPECT_TRUE(w->IsOpen(Nov21(1, 0)));
  EXPECT_TRUE(w->IsOpen(Nov21(2, 59, 59)));
  EXPECT_FALSE(w->IsOpen(Nov21(3, 0)));
  EXPECT_EQ(w->NextStart(Nov21(3, 0)), Nov21(1, 0) + hours(24));
  EXPECT_EQ(w->NextStart(Nov21(1, 0)), Nov21(1, 0));
  // A window across midnight.
  auto late = MaintenanceWindow::Parse("0 23 * * *", "3h", "UTC");
  ASSERT_THAT(late, IsOk());
  EXPECT_TRUE(late->IsOpen(Nov21(1, 30)));
  EXPECT_FALSE(late->IsOpen(Nov21(2, 0)));
  // Sundays only: the next start is tomorrow.
  auto sunday = MaintenanceWindow::Parse("0 3 * * SUN", "1h", "UTC");
  ASSERT_THAT(sunday, IsOk());
  EXPECT_EQ(sunday->NextStart(Nov21(12, 0)), Nov21(3, 0) + hours(24));
  // February 30th never comes.
  auto never = MaintenanceWindow::Parse("0 0 30 2 *", "1h", "UTC");
  ASSERT_THAT(never, IsOk());
  EXPECT_EQ(never->NextStart(Nov21(0, 0)), std::nullopt);
}

}  // namespace
}  // namespace aloft::server
