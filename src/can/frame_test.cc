// Frame lengths against a separate, deliberately plain implementation of ISO 11898-1:2015: the
// frame written out as a string of '0' and '1' field by field, the CRCs by polynomial long
// division, the stuff bits by inserting them into the string.
#include "can/frame.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "can/frame_reference.h"
#include "support/matchers.h"

namespace aloft::can {
namespace {

using namespace reference;

TEST(CanFrame, Crcs_MatchLongDivision) {
  std::mt19937 rng(7);
  for (int n = 1; n < 150; ++n) {
    std::array<uint8_t, 160> bits{};
    std::string text;
    for (int i = 0; i < n; ++i) {
      bits[i] = rng() & 1;
      text += bits[i] ? '1' : '0';
    }
    EXPECT_EQ(Bits(Crc15(bits.data(), n), 15), ReferenceCrc(text)) << n << " bits";
    EXPECT_EQ(Bits(Crc17(bits.data(), n), 17), ReferenceCrc(text, kGen17, kInit17)) << n;
    EXPECT_EQ(Bits(Crc21(bits.data(), n), 21), ReferenceCrc(text, kGen21, kInit21)) << n;
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

// Must show 1 (FD frames): every DLC, both formats, with and without BRS, ESI either way.
TEST(CanFrame, FdWireBits_MatchTheReference_EveryDlcBothFormatsBothPhases) {
  std::mt19937 rng(11898);
  for (int round = 0; round < 300; ++round) {
    for (bool extended : {false, true}) {
      for (uint8_t dlc = 0; dlc <= 15; ++dlc) {
        Frame f;
        f.fd = true;
        f.extended = extended;
        f.id = rng() & (extended ? 0x1FFFFFFF : 0x7FF);
        f.brs = rng() % 4 != 0;
        f.esi = rng() % 8 == 0;
        f.dlc = dlc;
        const uint8_t fill = static_cast<uint8_t>(rng() % 2 ? 0x00 : 0xFF);
        for (auto& b : f.data) b = rng() % 3 == 0 ? fill : static_cast<uint8_t>(rng());
        ASSERT_THAT(Validate(f), IsOk());
        const WireLength got = Measure(f);
        const ReferenceLength want = ReferenceFd(f);
        ASSERT_EQ(got.nominal_bits, want.nominal)
            << ToString(f) << (extended ? " ext" : " base") << " dlc " << int(dlc);
        ASSERT_EQ(got.data_bits, want.data) << ToString(f);
      }
    }
  }
}

// A stuff condition at the very last data bit: only the fixed stuff bit is sent.
TEST(CanFrame, FdStuffConditionAtTheEndOfData_OnlyTheFixedStuffBit) {
  Frame f = Frame::Fd(0x555, false, std::vector<uint8_t>{0x55, 0x5F}, false);  // ...0101 1111
  // Data ends in 5 ones after a 0: a classic transmitter would stuff; FD does not.
  EXPECT_EQ(Measure(f).total(), ReferenceFd(f).nominal + ReferenceFd(f).data);
  Frame g = f;
  g.data[1] = 0x5E;  // ...1110: no run at all
  EXPECT_EQ(Measure(f).stuff_bits, Measure(g).stuff_bits)
      << "the run of five at the end adds no dynamic stuff bit";
}

// Known lengths: an 11-bit FD frame of 64 bytes without dynamic stuff bits is 29 bits at the
// nominal rate and 550 at the data rate (ESI, DLC, 512 data, stuff count 4, CRC-21, 7 fixed stuff
// bits, CRC delimiter); 12 bytes (CRC-17, 6 fixed stuff bits) is 29 + 128.
TEST(CanFrame, FdKnownLengths) {
  std::vector<uint8_t> bytes(64, 0x55);
  Frame f = Frame::Fd(0x555, false, bytes);
  EXPECT_EQ(f.dlc, 15);
  WireLength len = Measure(f);
  EXPECT_EQ(len.nominal_bits, 29);
  EXPECT_EQ(len.data_bits, 550);
  EXPECT_EQ(len.stuff_bits, 7);
  Frame g = Frame::Fd(0x555, false, std::vector<uint8_t>(12, 0x55));
  EXPECT_EQ(Measure(g).data_bits, 1 + 4 + 96 + 4 + 17 + 6 + 1);
  // Without BRS everything runs at the nominal rate.
  f.brs = false;
  EXPECT_EQ(Measure(f).nominal_bits, 29 + 550);
  EXPECT_EQ(Measure(f).data_bits, 0);
  // 500k / 2M: 29 bits of 2 us and 550 of 0.5 us.
  EXPECT_EQ(Duration(Frame::Fd(0x555, false, bytes), {500'000, 2'000'000}).count(),
            29 * 2000 + 550 * 500);
}

TEST(CanFrame, FdPaddingAndLengths) {
  Frame f = Frame::Fd(0x7E0, false, std::vector<uint8_t>{1, 2, 3, 4, 5, 6, 7, 8, 9});
  EXPECT_EQ(f.dlc, 9);
  EXPECT_EQ(f.length(), 12);
  EXPECT_EQ(f.data[9], 0xCC);
  EXPECT_EQ(ToString(f), "7E0##1010203040506070809CCCCCC");
  EXPECT_EQ(LengthToDlc(0), 0);
  EXPECT_EQ(LengthToDlc(8), 8);
  EXPECT_EQ(LengthToDlc(13), 10);
  EXPECT_EQ(LengthToDlc(64), 15);
  EXPECT_EQ(DlcToLength(12, false), 8);
  EXPECT_EQ(DlcToLength(12, true), 24);
  EXPECT_EQ(ToString(Frame::Classic(0x18DA10F1, true, {0x02, 0x10})), "18DA10F1#0210");
}

TEST(CanFrame, Duration_IsBitsAtTheRate) {
  Frame f = Frame::Classic(0x7E0, false, {0x02, 0x10, 0x03});
  for (uint32_t rate : {125'000u, 250'000u, 500'000u, 1'000'000u}) {
    EXPECT_EQ(Duration(f, {rate}).count(),
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
  f.dlc = 8;
  f.fd = true;
  f.remote = true;
  EXPECT_THAT(Validate(f), IsError(Code::kInvalidArgument, ::testing::HasSubstr("no remote")));
  f.fd = false;
  f.remote = false;
  f.brs = true;
  EXPECT_THAT(Validate(f), IsError(Code::kInvalidArgument, ::testing::HasSubstr("BRS and ESI")));
}

}  // namespace
}  // namespace aloft::can
