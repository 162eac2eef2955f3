#include "core/progress.h"

#include <gtest/gtest.h>

#include <cstdio>

namespace aloft {
namespace {

TEST(Progress, RendersFractionSizeAndRate) {
  ManualClock clock;
  Progress p("packing main", 100 << 20, clock, stderr, Progress::Mode::kNever);
  clock.Advance(std::chrono::seconds(2));
  p.Add(50 << 20);
  std::string line = p.Render();
  EXPECT_NE(line.find("packing main"), std::string::npos) << line;
  EXPECT_NE(line.find(" 50%"), std::string::npos) << line;
  EXPECT_NE(line.find("50.0/100.0 MiB"), std::string::npos) << line;
  EXPECT_NE(line.find("25.0 MiB/s"), std::string::npos) << line;
  EXPECT_NE(line.find("[############............]"), std::string::npos) << line;
}

TEST(Progress, DrawsAtMostEveryHundredMillisecondsAndErasesAtFinish) {
  ManualClock clock;
  char* buf = nullptr;
  size_t len = 0;
  std::FILE* out = open_memstream(&buf, &len);
  {
    Progress p("verify", 1000, clock, out, Progress::Mode::kAlways);
    p.Add(1);  // first update draws
    p.Add(1);  // too soon
    clock.Advance(std::chrono::milliseconds(150));
    p.Add(1);    // draws
    p.Finish();  // erases
  }
  std::fclose(out);
  std::string text(buf, len);
  free(buf);
  EXPECT_EQ(std::count(text.begin(), text.end(), '\r'), 3) << text;
  EXPECT_NE(text.find("\033[K"), std::string::npos);
}

TEST(Progress, NeverModeWritesNothing) {
  ManualClock clock;
  char* buf = nullptr;
  size_t len = 0;
  std::FILE* out = open_memstream(&buf, &len);
  {
    Progress p("x", 10, clock, out, Progress::Mode::kNever);
    p.Add(5);
  }
  std::fclose(out);
  EXPECT_EQ(len, 0u);
  free(buf);
}

}  // namespace
}  // namespace aloft
