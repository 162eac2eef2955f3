#include "boot/boot_model.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/hash.h"
#include "flash/sim_flash.h"
#include "support/matchers.h"
#include "support/package_fixture.h"
#include "support/temp_dir.h"

namespace aloft::boot {
namespace {

using ::testing::HasSubstr;

constexpr flash::FlashGeometry kGeometry{128 * 1024, 4096, 8};

ImageSlot SlotOf(const Bytes& image, const std::string& version) {
  ImageSlot s{image.size(), {}, version};
  Bytes d = Sha256(image);
  std::copy(d.begin(), d.end(), s.sha256.begin());
  return s;
}

class BootModelTest : public ::testing::TestWithParam<LayoutKind> {
 protected:
  void SetUp() override {
    auto f = flash::SimFlash::Create(dir_ / "flash", kGeometry);
    ASSERT_THAT(f, IsOk());
    flash_.emplace(std::move(f).value());
    auto l = Layout::Compute(GetParam(), kGeometry);
    ASSERT_THAT(l, IsOk());
    layout_ = *l;
    ASSERT_THAT(Provision(*flash_, layout_, old_, "1.0.0"), IsOk());
  }
  BootRecord Load() {
    RecordStore store(*flash_, layout_.control);
    return store.Load().value();
  }
  void Save(BootRecord& r) {
    RecordStore store(*flash_, layout_.control);
    ASSERT_THAT(store.Save(r), IsOk());
  }
  // Writes `new_` where the layout puts a new image and records it on trial with `tries`.
  void StageTrial(uint8_t tries) {
    BootRecord r = Load();
    if (GetParam() == LayoutKind::kAb) {
      RegionWriter w(*flash_, layout_.slots[1]);
      ASSERT_THAT(w.Write(new_), IsOk());
      ASSERT_THAT(w.Finish(), IsOk());
      r.slots[1] = SlotOf(new_, "2.0.0");
      r.pending = 1;
    } else {
      ASSERT_THAT(CopyImage(*flash_, layout_.slots[0], layout_.slots[1], r.slots[0]), IsOk());
      r.slots[1] = r.slots[0];
      RegionWriter w(*flash_, layout_.slots[0]);
      ASSERT_THAT(w.Write(new_), IsOk());
      ASSERT_THAT(w.Finish(), IsOk());
      r.slots[0] = SlotOf(new_, "2.0.0");
      r.state = UpdateState::kTrial;
      r.confirmed = false;
    }
    r.tries_left = tries;
    Save(r);
  }

  testing::TempDir dir_;
  std::optional<flash::SimFlash> flash_;
  Layout layout_;
  Bytes old_ = testing::RandomBytes(30000, 1), new_ = testing::RandomBytes(25000, 2);
};

TEST_P(BootModelTest, Provisioned_BootsTheConfirmedImage) {
  auto b = Boot(*flash_, layout_);
  ASSERT_THAT(b, IsOk());
  EXPECT_EQ(b->image, SlotOf(old_, "1.0.0"));
  EXPECT_FALSE(b->trial);
}

TEST_P(BootModelTest, Trial_CountsTries_ThenFallsBackToTheOldImage) {
  StageTrial(2);
  for (int i = 0; i < 2; ++i) {
    auto b = Boot(*flash_, layout_);
    ASSERT_THAT(b, IsOk());
    EXPECT_TRUE(b->trial);
    EXPECT_EQ(b->image, SlotOf(new_, "2.0.0"));
  }
  auto b = Boot(*flash_, layout_);
  ASSERT_THAT(b, IsOk());
  EXPECT_FALSE(b->trial);
  EXPECT_EQ(b->image, SlotOf(old_, "1.0.0")) << b->log;
  EXPECT_THAT(b->log, HasSubstr("no tries left"));
}

TEST_P(BootModelTest, CorruptImageOnTrial_IsNeverStarted) {
  StageTrial(3);
  const Region& target = GetParam() == LayoutKind::kAb ? layout_.slots[1] : layout_.slots[0];
  ASSERT_THAT(flash_->Program(target.offset, Bytes(8, 0)), IsOk());  // clears bits
  auto b = Boot(*flash_, layout_);
  ASSERT_THAT(b, IsOk());
  EXPECT_EQ(b->image, SlotOf(old_, "1.0.0")) << b->log;
  EXPECT_THAT(b->log, HasSubstr("does not match"));
}

TEST_P(BootModelTest, ErasedRecord_IsABrick) {
  ASSERT_THAT(flash_->Erase(layout_.control[0], kGeometry.erase_block), IsOk());
  ASSERT_THAT(flash_->Erase(layout_.control[1], kGeometry.erase_block), IsOk());
  EXPECT_THAT(Boot(*flash_, layout_), IsError(Code::kIntegrity, HasSubstr("no bootable image")));
}

INSTANTIATE_TEST_SUITE_P(Layouts, BootModelTest,
                         ::testing::Values(LayoutKind::kAb, LayoutKind::kBackup),
                         [](const auto& p) { return std::string(LayoutName(p.param)); });

TEST(LayoutTest, Compute_SplitsTheFlashIntoWholeBlocks) {
  auto ab = Layout::Compute(LayoutKind::kAb, kGeometry);
  ASSERT_THAT(ab, IsOk());
  EXPECT_EQ(ab->slots[0].offset, 8192u);
  EXPECT_EQ(ab->slots[0].size, 15u * 4096);
  EXPECT_EQ(ab->slots[1].offset, 8192u + 15 * 4096);
  auto bk = Layout::Compute(LayoutKind::kBackup, kGeometry);
  ASSERT_THAT(bk, IsOk());
  EXPECT_EQ(bk->control[1], 8192u);
  EXPECT_EQ(bk->slots[0].offset, 12288u);
  EXPECT_EQ(bk->download.offset + bk->download.size, kGeometry.size);
  EXPECT_THAT(bk->Describe(), HasSubstr("download"));
  EXPECT_THAT(Layout::Compute(LayoutKind::kAb, {8192, 4096, 8}),
              IsError(Code::kInvalidArgument, HasSubstr("at least 4 erase blocks")));
}

}  // namespace
}  // namespace aloft::boot
