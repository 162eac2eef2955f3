#include "flash/sim_flash.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>

#include "support/matchers.h"
#include "support/temp_dir.h"

namespace aloft::flash {
namespace {

using ::testing::HasSubstr;

constexpr FlashGeometry kGeometry{64 * 1024, 4096, 8};

class SimFlashTest : public ::testing::Test {
 protected:
  SimFlash Make(uint64_t seed = 1) {
    auto f = SimFlash::Create(dir_ / ("flash-" + std::to_string(++n_)), kGeometry, {}, seed);
    EXPECT_THAT(f, IsOk());
    return std::move(f).value();
  }
  static Bytes ReadAll(SimFlash& f, uint64_t offset, size_t n) {
    Bytes out(n);
    EXPECT_THAT(f.Read(offset, out), IsOk());
    return out;
  }
  static Bytes Pattern(size_t n, uint8_t seed) {
    Bytes b(n);
    for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(i * 31 + seed);
    return b;
  }
  testing::TempDir dir_;
  int n_ = 0;
};

TEST(FlashGeometryTest, Validate_NamesTheBrokenRule) {
  EXPECT_THAT(kGeometry.Validate(), IsOk());
  EXPECT_EQ(kGeometry.Describe(), "64 KiB, 4 KiB erase blocks, 8-byte write unit");
  EXPECT_THAT((FlashGeometry{65536, 3000, 8}.Validate()),
              IsError(Code::kInvalidArgument, HasSubstr("erase block must be a power of two")));
  EXPECT_THAT((FlashGeometry{65536, 4096, 8192}.Validate()),
              IsError(Code::kInvalidArgument, HasSubstr("write unit")));
  EXPECT_THAT((FlashGeometry{5000, 4096, 8}.Validate()),
              IsError(Code::kInvalidArgument, HasSubstr("multiple of the erase block")));
}

TEST_F(SimFlashTest, New_IsErased_AndProgramOnlyClearsBits) {
  SimFlash f = Make();
  EXPECT_EQ(ReadAll(f, 0, kGeometry.size), Bytes(kGeometry.size, 0xFF));
  Bytes data = Pattern(64, 7);
  ASSERT_THAT(f.Program(4096, data), IsOk());
  EXPECT_EQ(ReadAll(f, 4096, 64), data);
  // Clearing more bits of the same bytes is allowed (NOR); setting any back is not.
  Bytes zeros(8, 0);
  EXPECT_THAT(f.Program(4096, zeros), IsOk());
  EXPECT_THAT(f.Program(4096, Bytes(8, 0x01)),
              IsError(Code::kInvalidArgument, HasSubstr("would set bits that are 0; erase first")));
  ASSERT_THAT(f.Erase(4096, 4096), IsOk());
  EXPECT_EQ(ReadAll(f, 4096, 4096), Bytes(4096, 0xFF));
  EXPECT_EQ(f.erase_count(1), 1u);
  EXPECT_EQ(f.operations(), 3u);  // two programs and one erase; the refused one does not count
}

TEST_F(SimFlashTest, MisalignedOrOutOfRange_IsRefusedAndChangesNothing) {
  SimFlash f = Make();
  EXPECT_THAT(f.Program(3, Bytes(8, 0)),
              IsError(Code::kInvalidArgument, HasSubstr("not whole 8-byte write units")));
  EXPECT_THAT(f.Program(0, Bytes(12, 0)), IsError(Code::kInvalidArgument, HasSubstr("write unit")));
  EXPECT_THAT(f.Erase(100, 4096), IsError(Code::kInvalidArgument, HasSubstr("erase block")));
  EXPECT_THAT(f.Erase(61440, 8192), IsError(Code::kOutOfRange, HasSubstr("beyond the flash")));
  Bytes out(16);
  EXPECT_THAT(f.Read(kGeometry.size - 8, out), IsError(Code::kOutOfRange, HasSubstr("Read")));
  EXPECT_EQ(f.operations(), 0u);
  EXPECT_EQ(ReadAll(f, 0, kGeometry.size), Bytes(kGeometry.size, 0xFF));
}

TEST_F(SimFlashTest, Timing_FollowsTheC55Model) {
  SimFlash f = Make();
  ASSERT_THAT(f.Erase(0, 64 * 1024), IsOk());  // 16 blocks of 4 KiB = a quarter of 256 KiB
  EXPECT_EQ(f.elapsed(), std::chrono::milliseconds(884) / 4);
  ASSERT_THAT(f.Program(0, Bytes(64 * 1024, 0)), IsOk());
  EXPECT_EQ(f.elapsed(), std::chrono::milliseconds(884 + 552) / 4);
}

TEST_F(SimFlashTest, PowerCut_LeavesThatProgramPartialAndEverythingAfterFails) {
  Bytes data = Pattern(4096, 3);
  int partial_runs = 0;
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    SimFlash f = Make(seed);
    f.CutPowerAfter(2);
    ASSERT_THAT(f.Program(0, data), IsOk());
    EXPECT_THAT(f.Program(4096, data), IsError(Code::kUnavailable, HasSubstr("power cut")));
    EXPECT_FALSE(f.powered());
    Bytes out(8);
    EXPECT_THAT(f.Read(0, out), IsError(Code::kUnavailable, HasSubstr("no power")));
    EXPECT_THAT(f.Erase(0, 4096), IsError(Code::kUnavailable, HasSubstr("no power")));
    f.PowerOn();
    EXPECT_EQ(ReadAll(f, 0, 4096), data);  // the operation before the cut is whole
    Bytes cut = ReadAll(f, 4096, 4096);
    // A prefix of whole write units, then bytes that are neither old nor new, then untouched.
    size_t same = 0;
    while (same < cut.size() && cut[same] == data[same]) ++same;
    EXPECT_LT(same, cut.size()) << "seed " << seed << ": the cut operation completed";
    for (size_t i = 0; i < cut.size(); ++i) {
      EXPECT_EQ(cut[i] & data[i], data[i]) << "a bit the program never clears is 0 at " << i;
    }
    size_t unit_end = (same / 8 + 1) * 8;
    EXPECT_EQ(Bytes(cut.begin() + unit_end, cut.end()), Bytes(cut.size() - unit_end, 0xFF));
    if (same % 8 != 0 || std::any_of(cut.begin() + same, cut.begin() + unit_end,
                                     [](uint8_t b) { return b != 0xFF; })) {
      ++partial_runs;
    }
    EXPECT_THAT(f.Erase(4096, 4096), IsOk());  // power is back
  }
  EXPECT_GT(partial_runs, 0) << "no cut ever left a write unit half programmed";
}

TEST_F(SimFlashTest, PowerCut_DuringErase_LeavesAnIndeterminateBlock) {
  SimFlash f = Make(5);
  Bytes zeros(kGeometry.size, 0);
  ASSERT_THAT(f.Program(0, zeros), IsOk());
  f.CutPowerAfter(2);
  EXPECT_THAT(f.Erase(0, 4 * 4096), IsError(Code::kUnavailable, HasSubstr("power cut")));
  f.PowerOn();
  Bytes after = ReadAll(f, 0, 4 * 4096);
  size_t erased_blocks = 0;
  while (erased_blocks < 4 && std::all_of(after.begin() + erased_blocks * 4096,
                                          after.begin() + (erased_blocks + 1) * 4096,
                                          [](uint8_t b) { return b == 0xFF; })) {
    ++erased_blocks;
  }
  ASSERT_LT(erased_blocks, 4u) << "the cut erase completed";
  auto torn =
      Bytes(after.begin() + erased_blocks * 4096, after.begin() + (erased_blocks + 1) * 4096);
  EXPECT_NE(torn, Bytes(4096, 0xFF));
  EXPECT_NE(torn, Bytes(4096, 0x00));
  EXPECT_EQ(Bytes(after.begin() + (erased_blocks + 1) * 4096, after.end()),
            Bytes((3 - erased_blocks) * 4096, 0x00));
}

TEST_F(SimFlashTest, InjectedFailureAndWornBlock_ReturnIoAndKeepPower) {
  SimFlash f = Make();
  f.FailOperation(1);
  EXPECT_THAT(f.Program(0, Bytes(4096, 0)), IsError(Code::kIo, HasSubstr("operation 1 failed")));
  EXPECT_TRUE(f.powered());
  f.WearOut(3);
  EXPECT_THAT(f.Erase(2 * 4096, 2 * 4096), IsError(Code::kIo, HasSubstr("block 3 is worn out")));
  EXPECT_THAT(f.Program(3 * 4096, Bytes(8, 0)), IsError(Code::kIo, HasSubstr("worn out")));
  EXPECT_THAT(f.Erase(0, 4096), IsOk());
}

TEST_F(SimFlashTest, Reopen_KeepsTheBytes_AndChecksTheSize) {
  const std::string path = dir_ / "persist";
  Bytes data = Pattern(256, 9);
  {
    auto f = SimFlash::Create(path, kGeometry);
    ASSERT_THAT(f, IsOk());
    ASSERT_THAT(f->Program(8192, data), IsOk());
  }
  EXPECT_THAT(SimFlash::Create(path, kGeometry), IsError(Code::kAlreadyExists, HasSubstr(path)));
  auto again = SimFlash::Open(path, kGeometry);
  ASSERT_THAT(again, IsOk());
  EXPECT_EQ(ReadAll(*again, 8192, 256), data);
  EXPECT_THAT(SimFlash::Open(path, FlashGeometry{128 * 1024, 4096, 8}),
              IsError(Code::kInvalidArgument, HasSubstr("the geometry says 131072")));
}

}  // namespace
}  // namespace aloft::flash
