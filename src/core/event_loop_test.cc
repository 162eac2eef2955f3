#include "core/event_loop.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <string>

namespace aloft {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;

TEST(SimLoop, RunsInTimeOrder_SameInstantInScheduleOrder) {
  SimLoop loop;
  std::string order;
  const auto t0 = loop.Now();
  loop.After(milliseconds(3), [&] { order += 'c'; });
  loop.After(milliseconds(1), [&] { order += 'a'; });
  loop.After(milliseconds(1), [&] { order += 'b'; });
  loop.Post([&] { order += '0'; });
  EXPECT_EQ(loop.RunUntilIdle(), 4u);
  EXPECT_EQ(order, "0abc");
  EXPECT_EQ(loop.Now() - t0, milliseconds(3));
}

TEST(SimLoop, EventsScheduleEvents_TimeIsTheirs) {
  SimLoop loop;
  std::vector<int64_t> at;
  std::function<void()> tick = [&] {
    at.push_back(std::chrono::duration_cast<microseconds>(loop.Now().time_since_epoch()).count());
    if (at.size() < 4) loop.After(microseconds(250), tick);
  };
  loop.Post(tick);
  loop.RunUntilIdle();
  EXPECT_EQ(at, (std::vector<int64_t>{0, 250, 500, 750}));
}

TEST(SimLoop, Cancel_OnlyWhatHasNotRun) {
  SimLoop loop;
  int ran = 0;
  TimerId a = loop.After(milliseconds(1), [&] { ++ran; });
  TimerId b = loop.After(milliseconds(2), [&] { ++ran; });
  EXPECT_TRUE(loop.Cancel(b));
  EXPECT_FALSE(loop.Cancel(b));
  loop.RunUntilIdle();
  EXPECT_EQ(ran, 1);
  EXPECT_FALSE(loop.Cancel(a)) << "it ran";
  EXPECT_EQ(loop.pending(), 0u);
}

TEST(SimLoop, RunUntil_StopsAtTheTime_OrWhenDone) {
  SimLoop loop;
  int ran = 0;
  for (int i = 1; i <= 10; ++i) loop.After(milliseconds(i * 10), [&] { ++ran; });
  const auto t0 = loop.Now();
  EXPECT_EQ(loop.RunFor(milliseconds(35)), 3u);
  EXPECT_EQ(loop.Now() - t0, milliseconds(35)) << "the clock stands at the end of the span";
  EXPECT_TRUE(loop.RunUntil([&] { return ran == 5; }, milliseconds(100)));
  EXPECT_EQ(loop.Now() - t0, milliseconds(50));
  EXPECT_FALSE(loop.RunUntil([&] { return ran == 100; }, milliseconds(20)));
  EXPECT_EQ(loop.Now() - t0, milliseconds(70));
  EXPECT_EQ(ran, 7);
}

TEST(SimLoop, APastTimeRunsNow) {
  SimLoop loop;
  loop.RunFor(milliseconds(10));
  bool ran = false;
  loop.At(EventLoop::TimePoint{}, [&] { ran = true; });
  loop.RunOne();
  EXPECT_TRUE(ran);
  EXPECT_EQ(loop.Now().time_since_epoch(), milliseconds(10));
}

TEST(RealLoop, RunsCallbacksOnItsThreadWhenDue) {
  RealLoop loop;
  std::promise<std::thread::id> where;
  const auto t0 = loop.Now();
  std::atomic<int64_t> waited{0};
  loop.After(milliseconds(20), [&] {
    waited = std::chrono::duration_cast<milliseconds>(loop.Now() - t0).count();
    where.set_value(std::this_thread::get_id());
  });
  EXPECT_NE(where.get_future().get(), std::this_thread::get_id());
  EXPECT_GE(waited.load(), 20);
  int value = 0;
  loop.Run([&] { value = 42; });
  EXPECT_EQ(value, 42);
  TimerId never = loop.After(std::chrono::hours(1), [] { FAIL() << "cancelled"; });
  EXPECT_TRUE(loop.Cancel(never));
}

}  // namespace
}  // namespace aloft
