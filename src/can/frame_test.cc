// Frame lengths against a separate, deliberately plain implementation of ISO 11898-1: the frame
// written out as a string of '0' and '1' field by field, the CRC by polynomial long division, the
// stuff bits by inserting them into the string.
#include "can/frame.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "support/matchers.h"

namespace aloft::can {
namespace {

std::string Bits(uint32_t value, int width) {
  std::string s;
  for (int i = width - 1; i >= 0; --i) s += ((value >> i) & 1) ? '1' : '0';
  return s;
}

// The remainder of head * x^15 divided by x^15 + x^14 + x^10 + x^8 + x^7 + x^4 + x^3 + 1.
std::string ReferenceCrc(const std::string& head) {
  const std::string generator = "1100010110011001";
  std::string r = head + std::string(15, '0');
  for (size_t i = 0; i + 15 < r.size(); ++i) {
    if (r[i] != '1') continue;
    for (size_t k = 0; k < generator.size(); ++k) r[i + k] = r[i + k] == generator[k] ? '0' : '1';
  }
  return r.substr(r.size() - 15);
}

std::string ReferenceStuff(const std::string& bits) {
  std::string out;
  int run = 0;
  char last = 'x';
  for (char b : bits) {
    out += b;
    run = b == last ? run + 1 : 1;
    last = b;
    if (run == 5) {
      const char stuff = b == '1' ? '0' : '1';
      out += stuff;
      last = stuff;
      run = 1;
    }
  }
  return out;
}

int ReferenceWireBits(const Frame& f) {
  std::string head = "0";  // SOF
  if (f.extended) {
    head +=
        Bits(f.id >> 18, 11) + "1" + "1" + Bits(f.id & 0x3FFFF, 18) + (f.remote ? "1" : "0") + "00";
  } else {
    head += Bits(f.id, 11) + (f.remote ? "1" : "0") + "0" + "0";
  }
  head += Bits(f.dlc, 4);
  const int bytes = f.remote ? 0 : std::min<int>(f.dlc, 8);
  for (int i = 0; i < bytes; ++i) head += Bits(f.data[i], 8);
  const std::string stuffed = ReferenceStuff(head + ReferenceCrc(head));
  return static_cast<int>(stuffed.size()) + 1 + 2 + 7 + 3;  // CRC delim, ACK, EOF, IFS
}

TEST(CanFrame, Crc15_MatchesLongDivision) {
  std::mt19937 rng(7);
  for (int n = 1; n < 150; ++n) {
    std::array<uint8_t, 160> bits{};
    std::string text;
    for (int i = 0; i < n; ++i) {
      bits[i] = rng() & 1;
      text += bits[i] ? '1' : '0';
    }
    EXPECT_EQ(Bits(Crc15(bits.data(), n), 15), ReferenceCrc(text)) << n << " bits";
  }
}

// Must show 1 (classic frames): every DLC, 11- and 29-bit, data and remote, random contents.
TEST(CanFrame, WireBits_MatchTheReference_EveryDlcBothFormats) {
  std::mt19937 rng(2026);
  for (int round = 0; round < 400; ++round) {
    for (bool extended : {false, true}) {
      for (uint8_t dlc = 0; dlc <= 15; ++dlc) {
        Frame f;
        f.extended = extended;
        f.id = rng() & (extended ? 0x1FFFFFFF : 0x7FF);
        f.remote = rng() % 8 == 0;
        f.dlc = dlc;
        // Runs of equal bytes make long runs of equal bits: the stuffing's worst cases.
        const uint8_t fill = static_cast<uint8_t>(rng());
        for (auto& b : f.data) b = rng() % 3 == 0 ? fill : static_cast<uint8_t>(rng());
        ASSERT_THAT(Validate(f), IsOk());
        ASSERT_EQ(WireBits(f), ReferenceWireBits(f))
            << "id " << f.id << (extended ? " ext" : " base") << " dlc " << int(dlc);
      }
    }
  }
}

TEST(CanFrame, WireBits_KnownBounds) {
  // 8 data bytes without a stuff bit: 111 bits (base) and 131 (extended), IFS included; the
  // worst case of the base format is 135 (8n + 47 + floor((34 + 8n - 1) / 4)).
  std::mt19937 rng(1);
  int least = 1000, most = 0;
  for (int i = 0; i < 20000; ++i) {
    Frame f;
    f.id = rng() & 0x7FF;
    f.dlc = 8;
    for (auto& b : f.data) b = static_cast<uint8_t>(rng() % 2 ? 0x00 : rng());
    least = std::min(least, WireBits(f));
    most = std::max(most, WireBits(f));
  }
  EXPECT_GE(least, 111);
  EXPECT_LE(most, 135);
  Frame all_zero = Frame::Classic(0x000, false, {0, 0, 0, 0, 0, 0, 0, 0});
  EXPECT_EQ(WireBits(all_zero), ReferenceWireBits(all_zero));
  EXPECT_GT(WireBits(all_zero), 111) << "zeros are stuffed";
}

TEST(CanFrame, Duration_IsBitsAtTheRate) {
  Frame f = Frame::Classic(0x7E0, false, {0x02, 0x10, 0x03});
  for (uint32_t rate : {125'000u, 250'000u, 500'000u, 1'000'000u}) {
    EXPECT_EQ(Duration(f, rate).count(),
              static_cast<int64_t>(WireBits(f)) * (1'000'000'000 / rate));
  }
}

TEST(CanFrame, Validate_NamesTheField) {
  Frame f;
  f.id = 0x800;
  EXPECT_THAT(Validate(f),
              IsError(Code::kInvalidArgument, ::testing::HasSubstr("0x800 does not fit 11 bits")));
  f.extended = true;
  EXPECT_THAT(Validate(f), IsOk());
  f.id = 0x20000000;
  EXPECT_THAT(Validate(f), IsError(Code::kInvalidArgument, ::testing::HasSubstr("29 bits")));
  f.id = 1;
  f.dlc = 16;
  EXPECT_THAT(Validate(f), IsError(Code::kInvalidArgument, ::testing::HasSubstr("DLC 16")));
}

}  // namespace
}  // namespace aloft::can
