#include "core/encoding.h"

#include <gtest/gtest.h>

#include "support/matchers.h"

namespace aloft {
namespace {

using ::testing::HasSubstr;

TEST(Hex, RoundTripsAllByteValues) {
  Bytes all(256);
  for (int i = 0; i < 256; ++i) all[i] = uint8_t(i);
  std::string hex = HexEncode(all);
  EXPECT_EQ(hex.substr(0, 8), "00010203");
  EXPECT_EQ(hex.substr(hex.size() - 4), "feff");
  auto back = HexDecode(hex);
  ASSERT_THAT(back, IsOk());
  EXPECT_EQ(*back, all);
  EXPECT_EQ(*HexDecode("ABcd"), (Bytes{0xab, 0xcd}));
}

TEST(Hex, RejectsOddLengthAndNonDigits) {
  EXPECT_THAT(HexDecode("abc"), IsError(Code::kMalformed, HasSubstr("odd length")));
  EXPECT_THAT(HexDecode("abzz"), IsError(Code::kMalformed, HasSubstr("offset 2")));
}

// RFC 4648 section 10.
TEST(Base64, Rfc4648Vectors) {
  const std::pair<std::string, std::string> kVectors[] = {
      {"", ""},
      {"f", "Zg=="},
      {"fo", "Zm8="},
      {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="},
      {"fooba", "Zm9vYmE="},
      {"foobar", "Zm9vYmFy"},
  };
  for (const auto& [plain, encoded] : kVectors) {
    EXPECT_EQ(Base64Encode(AsBytes(plain)), encoded);
    auto decoded = Base64Decode(encoded);
    ASSERT_THAT(decoded, IsOk());
    EXPECT_EQ(AsChars(*decoded), plain);
  }
}

TEST(Base64, RejectsMalformedText) {
  EXPECT_THAT(Base64Decode("Zg="), IsError(Code::kMalformed, HasSubstr("multiple of 4")));
  EXPECT_THAT(Base64Decode("Z!=="), IsError(Code::kMalformed, HasSubstr("offset 1")));
  EXPECT_THAT(Base64Decode("Zh=="), IsError(Code::kMalformed, HasSubstr("padding")));
  EXPECT_THAT(Base64Decode("Zg==Zg=="), IsError(Code::kMalformed, HasSubstr("offset 2")));
}

}  // namespace
}  // namespace aloft
