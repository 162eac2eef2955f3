#include "boot/record.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/crc32.h"
#include "flash/sim_flash.h"
#include "support/matchers.h"
#include "support/temp_dir.h"

namespace aloft::boot {
namespace {

using ::testing::HasSubstr;

constexpr flash::FlashGeometry kGeometry{64 * 1024, 4096, 8};

TEST(Crc32Test, MatchesTheStandardCheckValue) {
  EXPECT_EQ(Crc32(AsBytes("123456789")), 0xCBF43926u);
  EXPECT_EQ(Crc32(AsBytes("")), 0u);
}

BootRecord Sample() {
  BootRecord r;
  r.layout = LayoutKind::kAb;
  r.active = 1;
  r.pending = 0;
  r.tries_left = 3;
  r.confirmed = false;
  r.security_counter = 0x0102030405060708;
  r.slots[0] = {4096, {}, "1.2.0"};
  r.slots[0].sha256.fill(0xAB);
  r.slots[1] = {100, {}, "1.1.0"};
  return r;
}

TEST(RecordTest, EncodeDecode_RoundTrips_AndPadsWithErasedBytes) {
  BootRecord r = Sample();
  r.seq = 7;
  Bytes b = EncodeRecord(r, 176);
  ASSERT_EQ(b.size(), 176u);
  EXPECT_EQ(b[172], 0xFF);
  EXPECT_EQ(b[8], 7);  // sequence number, little-endian at offset 8
  auto back = DecodeRecord(b);
  ASSERT_THAT(back, IsOk());
  EXPECT_EQ(*back, r);
}

TEST(RecordTest, Decode_RefusesErasedAndTornCopies) {
  EXPECT_THAT(DecodeRecord(Bytes(176, 0xFF)), IsError(Code::kMalformed, HasSubstr("no magic")));
  Bytes b = EncodeRecord(Sample(), 176);
  b[16] &= 0xF0;  // a half-programmed unit: some bits cleared
  EXPECT_THAT(DecodeRecord(b), IsError(Code::kMalformed, HasSubstr("CRC mismatch")));
}

class RecordStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto f = flash::SimFlash::Create(dir_ / "flash", kGeometry);
    ASSERT_THAT(f, IsOk());
    flash_.emplace(std::move(f).value());
  }
  testing::TempDir dir_;
  std::optional<flash::SimFlash> flash_;
};

TEST_F(RecordStoreTest, Save_AlternatesCopies_AndLoadTakesTheNewest) {
  RecordStore store(*flash_, {0, 4096});
  EXPECT_THAT(store.Load(), IsError(Code::kNotFound, HasSubstr("neither copy")));
  BootRecord r = Sample();
  ASSERT_THAT(store.Format(r), IsOk());
  EXPECT_EQ(r.seq, 2u);
  for (uint8_t tries = 2; tries > 0; --tries) {
    r.tries_left = tries;
    ASSERT_THAT(store.Save(r), IsOk());
    auto loaded = store.Load();
    ASSERT_THAT(loaded, IsOk());
    EXPECT_EQ(*loaded, r);
  }
  EXPECT_EQ(r.seq, 4u);
}

TEST_F(RecordStoreTest, TornSave_FallsBackToThePreviousRecord_AtEveryCut) {
  // Cut the power in the erase and in the program of a save: the previous record survives.
  for (uint64_t cut = 1; cut <= 2; ++cut) {
    RecordStore store(*flash_, {0, 4096});
    BootRecord r = Sample();
    ASSERT_THAT(store.Format(r), IsOk());
    BootRecord before = r;
    flash_->CutPowerAfter(flash_->operations() + cut);
    BootRecord next = r;
    next.tries_left = 0;
    EXPECT_THAT(store.Save(next), IsError(Code::kUnavailable, HasSubstr("boot record copy")));
    flash_->PowerOn();
    auto loaded = store.Load();
    ASSERT_THAT(loaded, IsOk());
    EXPECT_EQ(*loaded, before) << "cut " << cut;
    // The next save goes to the torn copy again and succeeds.
    ASSERT_THAT(store.Save(next), IsOk());
    EXPECT_EQ(store.Load()->tries_left, 0);
  }
}

}  // namespace
}  // namespace aloft::boot
