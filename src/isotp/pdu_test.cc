#include "isotp/pdu.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "support/matchers.h"

namespace aloft::isotp {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(IsoTpPdu, SingleFrames_ShortAndEscaped) {
  std::vector<uint8_t> m = {0x22, 0xF1, 0x90};
  EXPECT_THAT(EncodeSingle(m, 8, 0), ElementsAre(0x03, 0x22, 0xF1, 0x90));
  std::vector<uint8_t> long_msg(40, 0xAB);
  std::vector<uint8_t> sf = EncodeSingle(long_msg, 64, 0);
  EXPECT_EQ(sf[0], 0x00);
  EXPECT_EQ(sf[1], 40);
  Result<Pdu> pdu = Decode(sf, 48, 0);
  ASSERT_THAT(pdu, IsOk());
  EXPECT_EQ(pdu->type, PduType::kSingle);
  EXPECT_EQ(pdu->length, 40u);
  EXPECT_EQ(SingleFrameCapacity(8, 0), 7);
  EXPECT_EQ(SingleFrameCapacity(8, 1), 6);
  EXPECT_EQ(SingleFrameCapacity(64, 0), 62);
  EXPECT_EQ(SingleFrameCapacity(64, 1), 61);
}

TEST(IsoTpPdu, FirstFrames_TwelveBitAndEscape) {
  std::vector<uint8_t> m(4095, 1);
  EXPECT_THAT(std::vector<uint8_t>(EncodeFirst(m, 8, 0)),
              ElementsAre(0x1F, 0xFF, 1, 1, 1, 1, 1, 1));
  std::vector<uint8_t> big(70000, 2);
  std::vector<uint8_t> ff = EncodeFirst(big, 64, 0);
  EXPECT_THAT(std::vector<uint8_t>(ff.begin(), ff.begin() + 6),
              ElementsAre(0x10, 0x00, 0x00, 0x01, 0x11, 0x70));
  EXPECT_EQ(ff.size(), 64u);
  Result<Pdu> pdu = Decode(ff, 64, 0);
  ASSERT_THAT(pdu, IsOk());
  EXPECT_EQ(pdu->length, 70000u);
  EXPECT_EQ(pdu->data.size(), 58u);
}

TEST(IsoTpPdu, StMin_Values) {
  EXPECT_EQ(StMin(0x00).count(), 0);
  EXPECT_EQ(StMin(0x7F).count(), 127000);
  EXPECT_EQ(StMin(0xF1).count(), 100);
  EXPECT_EQ(StMin(0xF9).count(), 900);
  EXPECT_EQ(StMin(0x80).count(), 127000) << "reserved: the longest";
  EXPECT_EQ(StMin(0xFA).count(), 127000);
  EXPECT_EQ(StMinByte(std::chrono::microseconds(500)), 0xF5);
  EXPECT_EQ(StMinByte(std::chrono::microseconds(1500)), 0x02);
}

// What a receiver ignores, each with its reason.
TEST(IsoTpPdu, Decode_IgnoresWhatTheStandardSaysToIgnore) {
  struct Case {
    std::vector<uint8_t> bytes;
    int can_dl;
    const char* why;
  };
  const std::vector<Case> cases = {
      {{}, 8, "without an N_PCI byte"},
      {{0x00, 1, 2}, 8, "SF_DL 0"},
      {{0x08, 1, 2, 3, 4, 5, 6, 7}, 8, "SF_DL 8 but 7"},
      {{0x05, 1, 2}, 8, "SF_DL 5 but 2"},
      {{0x00, 0x05, 1, 2, 3, 4, 5}, 12, "fits the short form"},
      {{0x03, 1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 0}, 12, "without the escape"},
      {{0x10, 0x05, 1, 2, 3, 4, 5, 6}, 8, "FF_DL 5 (below 8)"},
      {{0x10, 0x00, 0x00, 0x00, 0x0F, 0xFF, 1, 2}, 8, "escape with FF_DL 4095"},
      {{0x10, 0x20, 1, 2, 3}, 5, "CAN_DL 5"},
      {{0x30, 0x00}, 8, "shorter than 3"},
      {{0x40}, 8, "unknown N_PCI type 4"},
      {{0xF0}, 8, "unknown N_PCI type 15"},
  };
  for (const Case& c : cases) {
    EXPECT_THAT(Decode(c.bytes, c.can_dl, 0), IsError(Code::kMalformed, HasSubstr(c.why))) << c.why;
  }
  EXPECT_THAT(Decode(std::vector<uint8_t>{0x07, 1, 2, 3, 4, 5, 6}, 8, 1),
              IsError(Code::kMalformed, HasSubstr("SF_DL 7 but 6")))
      << "with an address byte, 6 at most";
}

}  // namespace
}  // namespace aloft::isotp
