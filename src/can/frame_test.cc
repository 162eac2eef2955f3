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

#include "support/matchers.h"

namespace aloft::can {
namespace {

std::string Bits(uint32_t value, int width) {
  std::string s;
  for (int i = width - 1; i >= 0; --i) s += ((value >> i) & 1) ? '1' : '0';
  return s;
}

// The remainder of (message * x^k + init * x^n) divided by the generator (k + 1 bits, MSB first):
// a CRC register preset to `init` and fed the n message bits.
std::string ReferenceCrc(const std::string& message, const std::string& generator,
                         const std::string& init) {
  const size_t k = generator.size() - 1;
  std::string r = message + std::string(k, '0');
  for (size_t i = 0; i < k; ++i) r[i] = r[i] == init[i] ? '0' : '1';
  for (size_t i = 0; i + k < r.size(); ++i) {
    if (r[i] != '1') continue;
    for (size_t j = 0; j < generator.size(); ++j) r[i + j] = r[i + j] == generator[j] ? '0' : '1';
  }
  return r.substr(r.size() - k);
}

// x^15 + x^14 + x^10 + x^8 + x^7 + x^4 + x^3 + 1
std::string ReferenceCrc(const std::string& head) {
  return ReferenceCrc(head, "1100010110011001", std::string(15, '0'));
}
// x^17 + x^16 + x^14 + x^13 + x^11 + x^6 + x^4 + x^3 + x + 1, preset 1 followed by 16 zeros
const char kGen17[] = "110110100001011011";
const char kInit17[] = "10000000000000000";
// x^21 + x^20 + x^13 + x^11 + x^7 + x^4 + x^3 + 1, preset 1 followed by 20 zeros
const char kGen21[] = "1100000010100010011001";
const char kInit21[] = "100000000000000000000";

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

struct ReferenceLength {
  int nominal, data;
};

// CAN FD: dynamic stuffing from SOF to the end of the data (none after the last data bit: the
// fixed stuff bit stands there), the stuff count Gray-coded with even parity, the CRC over the
// dynamically stuffed bits and the stuff count, fixed stuff bits before the CRC field and after
// every fourth bit of it. With BRS, the bits after BRS through the CRC delimiter are data phase.
ReferenceLength ReferenceFd(const Frame& f) {
  std::string head = "0";
  if (f.extended) {
    head += Bits(f.id >> 18, 11) + "1" + "1" + Bits(f.id & 0x3FFFF, 18) + "0" + "1" + "0";
  } else {
    head += Bits(f.id, 11) + "0" + "0" + "1" + "0";  // RRS, IDE, FDF, res
  }
  const size_t brs = head.size();
  head += std::string(f.brs ? "1" : "0") + (f.esi ? "1" : "0") + Bits(f.dlc, 4);
  static const int kLengths[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 20, 24, 32, 48, 64};
  const int bytes = kLengths[f.dlc];
  for (int i = 0; i < bytes; ++i) head += Bits(f.data[i], 8);

  std::string stuffed, phase;  // phase: 'n' nominal, 'd' data
  int run = 0, dynamic = 0;
  char last = 'x';
  for (size_t i = 0; i < head.size(); ++i) {
    const char p = f.brs && i > brs ? 'd' : 'n';
    stuffed += head[i];
    phase += p;
    run = head[i] == last ? run + 1 : 1;
    last = head[i];
    if (run == 5 && i + 1 < head.size()) {
      last = head[i] == '1' ? '0' : '1';
      stuffed += last;
      phase += f.brs && i >= brs ? 'd' : 'n';
      ++dynamic;
      run = 1;
    }
  }
  static const char* kGray[] = {"000", "001", "011", "010", "110", "111", "101", "100"};
  std::string count = kGray[dynamic % 8];
  count += std::count(count.begin(), count.end(), '1') % 2 ? "1" : "0";
  const std::string crc = bytes > 16 ? ReferenceCrc(stuffed + count, kGen21, kInit21)
                                     : ReferenceCrc(stuffed + count, kGen17, kInit17);
  const std::string field = count + crc;
  std::string fixed;
  char prev = stuffed.back();
  for (size_t i = 0; i < field.size(); ++i) {
    if (i % 4 == 0) fixed += prev == '1' ? '0' : '1';
    fixed += field[i];
    prev = field[i];
  }
  phase += std::string(fixed.size() + 1, f.brs ? 'd' : 'n');  // CRC field, CRC delimiter
  phase += std::string(1 + 1 + 7 + 3, 'n');                   // ACK, ACK delimiter, EOF, IFS
  const int data = static_cast<int>(std::count(phase.begin(), phase.end(), 'd'));
  return {static_cast<int>(phase.size()) - data, data};
}

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
