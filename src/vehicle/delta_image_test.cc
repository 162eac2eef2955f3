// DeltaImage: an image rebuilt from a delta as it is read, through a buffer much smaller than the
// image; reads front to back, a read before what was produced starts the patch again; a patch
// that does not apply says so at the first read.
#include "vehicle/delta_image.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>

#include "delta/diff.h"
#include "support/matchers.h"
#include "support/package_fixture.h"

namespace aloft::vehicle {
namespace {

using ::testing::HasSubstr;

struct Images {
  std::shared_ptr<const Bytes> base, target, patch;
};

// A 1 MiB base and a target that differs in scattered places, with the patch between them.
Images Make() {
  Bytes base = testing::RandomBytes(1 << 20, 7);
  Bytes target = base;
  std::mt19937 rng(11);
  for (int i = 0; i < 300; ++i) target[rng() % target.size()] ^= static_cast<uint8_t>(rng());
  target.insert(target.begin() + 5000, 20'000, 0x5A);
  auto patch = delta::Diff(base, target, {});
  EXPECT_THAT(patch, IsOk());
  return {std::make_shared<const Bytes>(std::move(base)),
          std::make_shared<const Bytes>(std::move(target)),
          std::make_shared<const Bytes>(patch.ok() ? *patch : Bytes{})};
}

TEST(DeltaImage, FrontToBackInReadsOfAnySize_EqualsTheTarget_ThroughA4KiBBuffer) {
  const Images m = Make();
  DeltaImage image(m.base, m.patch, m.target->size(), 4096);
  ASSERT_EQ(image.size(), m.target->size());
  std::mt19937 rng(3);
  Bytes got;
  for (uint64_t at = 0; at < image.size();) {
    const uint64_t n = std::min<uint64_t>(1 + rng() % 20'000, image.size() - at);
    Bytes part(n);
    ASSERT_THAT(image.ReadAt(at, part), IsOk()) << "at " << at;
    got.insert(got.end(), part.begin(), part.end());
    at += n;
  }
  EXPECT_TRUE(got == *m.target);
  EXPECT_EQ(image.passes(), 1);
}

TEST(DeltaImage, SkipsAheadAndGoesBack_ByApplyingThePatchAgain) {
  const Images m = Make();
  DeltaImage image(m.base, m.patch, m.target->size(), 4096);
  Bytes a(4096), b(100);
  ASSERT_THAT(image.ReadAt(700'000, a), IsOk());  // skipping ahead: same pass
  EXPECT_TRUE(std::equal(a.begin(), a.end(), m.target->begin() + 700'000));
  EXPECT_EQ(image.passes(), 1);
  ASSERT_THAT(image.ReadAt(10, b), IsOk());  // behind: a second pass
  EXPECT_TRUE(std::equal(b.begin(), b.end(), m.target->begin() + 10));
  EXPECT_EQ(image.passes(), 2);
  Bytes past(2);
  EXPECT_THAT(image.ReadAt(image.size() - 1, past),
              IsError(Code::kOutOfRange, HasSubstr("beyond")));
}

TEST(DeltaImage, AWrongBaseOrACutPatch_FailsTheRead) {
  const Images m = Make();
  Bytes other = *m.base;
  other[123] ^= 0xFF;
  DeltaImage wrong(std::make_shared<const Bytes>(other), m.patch, m.target->size());
  Bytes part(1000);
  EXPECT_THAT(wrong.ReadAt(0, part), IsError(Code::kIntegrity, HasSubstr("base")));

  auto cut =
      std::make_shared<const Bytes>(m.patch->begin(), m.patch->begin() + m.patch->size() / 2);
  DeltaImage short_patch(m.base, cut, m.target->size(), 4096);
  Status last = OkStatus();
  for (uint64_t at = 0; at < m.target->size() && last.ok(); at += part.size()) {
    last = short_patch.ReadAt(
        at, std::span(part).first(std::min<uint64_t>(part.size(), m.target->size() - at)));
  }
  EXPECT_THAT(last, IsError(Code::kIntegrity, HasSubstr("delta")));
}

}  // namespace
}  // namespace aloft::vehicle
