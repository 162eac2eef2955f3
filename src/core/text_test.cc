#include "core/text.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>

namespace aloft {
namespace {

TEST(TextTest, SizeTextNamesExactSizes) {
  EXPECT_EQ(SizeText(1 << 20), "1 MiB");
  EXPECT_EQ(SizeText(256 << 10), "256 KiB");
  EXPECT_EQ(SizeText((1 << 20) + 1024), "1025 KiB");
  EXPECT_EQ(SizeText(1152), "1152-byte");
  EXPECT_EQ(SizeText(8), "8-byte");
}

TEST(TextTest, TrimSpace) {
  EXPECT_EQ(TrimSpace(" \tb\r\n"), "b");
  EXPECT_EQ(TrimSpace("a b"), "a b");
  EXPECT_EQ(TrimSpace(" \n "), "");
  EXPECT_EQ(TrimSpace(""), "");
}

TEST(TextTest, ShellQuoteRoundTripsThroughSh) {
  EXPECT_EQ(ShellQuote("a b"), "'a b'");
  EXPECT_EQ(ShellQuote("it's"), "'it'\\''s'");
  const std::string nasty = "x'; echo \"$HOME\" `id` \\ '";
  FILE* p = ::popen(("printf %s " + ShellQuote(nasty)).c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[256];
  while (size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  ::pclose(p);
  EXPECT_EQ(out, nasty);
}

}  // namespace
}  // namespace aloft
