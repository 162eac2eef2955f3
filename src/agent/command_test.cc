#include "agent/command.h"

#include <gtest/gtest.h>

#include "support/matchers.h"

namespace aloft::agent {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

TEST(RunCommandTest, ReturnsOutputAndSeesTheExtraEnvironment) {
  auto out = RunCommand("printf '%s\\n' \"$ALOFT_SLOT\"", 10s, {"ALOFT_SLOT=1"});
  ASSERT_THAT(out, IsOk());
  EXPECT_EQ(*out, "1\n");
  out = RunCommand("read x; echo \"[$x]\"", 10s);  // standard input is empty
  ASSERT_THAT(out, IsOk());
  EXPECT_EQ(*out, "[]\n");
}

TEST(RunCommandTest, FailureNamesTheCommandStatusAndLastLine) {
  EXPECT_THAT(RunCommand("echo first; echo 'disk not found'; exit 3", 10s),
              IsError(Code::kUnavailable,
                      HasSubstr("'echo first; echo 'disk not found'; exit 3' exited with status "
                                "3 (disk not found)")));
  EXPECT_THAT(RunCommand("kill -9 $$", 10s), IsError(Code::kUnavailable, HasSubstr("signal 9")));
}

TEST(RunCommandTest, TimeoutKillsTheCommandAndWhatItStarted) {
  auto start = std::chrono::steady_clock::now();
  EXPECT_THAT(RunCommand("sleep 30 & sleep 30", 1s),
              IsError(Code::kUnavailable, HasSubstr("timed out after 1 s")));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
}

TEST(RunCommandTest, ABackgroundChildKeepingTheOutputOpenIsNotWaitedFor) {
  auto start = std::chrono::steady_clock::now();
  auto out = RunCommand("echo started; sleep 5 & exit 0", 10s);
  ASSERT_THAT(out, IsOk());
  EXPECT_EQ(*out, "started\n");
  EXPECT_LT(std::chrono::steady_clock::now() - start, 4s);
}

TEST(RunCommandTest, OutputIsBounded) {
  auto out = RunCommand("head -c 100000 /dev/zero", 10s);
  ASSERT_THAT(out, IsOk());
  EXPECT_EQ(out->size(), kMaxCommandOutput);
}

}  // namespace
}  // namespace aloft::agent
