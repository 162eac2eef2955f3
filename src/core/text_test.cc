#include "core/text.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace aloft
