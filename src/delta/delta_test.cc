#include <gtest/gtest.h>

#include <random>

#include "delta/apply.h"
#include "delta/diff.h"
#include "support/matchers.h"
#include "support/package_fixture.h"

namespace aloft::delta {
namespace {

using ::testing::_;
using ::testing::HasSubstr;

// Applies `patch` to `base`, feeding it in `chunk`-byte writes.
Result<Bytes> Apply(const Bytes& base, const Bytes& patch, size_t chunk = 4096,
                    ApplyOptions options = {}) {
  MemoryBase b(base);
  MemorySink out;
  Patcher p(b, out, options);
  for (size_t i = 0; i < patch.size(); i += chunk) {
    ALOFT_RETURN_IF_ERROR(p.Write(ByteSpan(patch.data() + i, std::min(chunk, patch.size() - i))));
  }
  ALOFT_RETURN_IF_ERROR(p.Finish());
  return out.Take();
}

Bytes MustDiff(const Bytes& base, const Bytes& target, DiffOptions options = {}) {
  Result<Bytes> patch = Diff(base, target, options);
  EXPECT_THAT(patch, IsOk());
  return patch.ok() ? *patch : Bytes{};
}

// A base with structure: text, random runs and repeated blocks, like an image's sections.
Bytes MakeBase(std::mt19937& rng, size_t n) {
  Bytes text = testing::TextBytes(n);
  Bytes out;
  while (out.size() < n) {
    size_t len = 1 + rng() % 5000;
    switch (rng() % 3) {
      case 0:
        out.insert(out.end(), text.begin(), text.begin() + std::min(len, text.size()));
        break;
      case 1:
        for (size_t i = 0; i < len; ++i) out.push_back(static_cast<uint8_t>(rng()));
        break;
      default:
        if (!out.empty()) {
          size_t from = rng() % out.size();
          len = std::min(len, out.size() - from);
          Bytes copy(out.begin() + from, out.begin() + from + len);
          out.insert(out.end(), copy.begin(), copy.end());
        }
    }
  }
  out.resize(n);
  return out;
}

// The target: the base edited by inserts, deletes, moved blocks, repeats and scattered changes
// (a constant added to 32-bit words, the way a relinked binary's pointers move).
Bytes Mutate(std::mt19937& rng, Bytes t, int edits, size_t* fresh_bytes = nullptr) {
  size_t fresh_count = 0;
  for (int e = 0; e < edits; ++e) {
    size_t at = t.empty() ? 0 : rng() % t.size();
    size_t len = 1 + rng() % 3000;
    switch (rng() % 6) {
      case 0: {  // insert new bytes
        Bytes fresh(len);
        for (auto& b : fresh) b = static_cast<uint8_t>(rng());
        fresh_count += len;
        t.insert(t.begin() + at, fresh.begin(), fresh.end());
        break;
      }
      case 1:  // delete
        t.erase(t.begin() + at, t.begin() + std::min(t.size(), at + len));
        break;
      case 2: {  // move a block
        len = std::min(len, t.size() - at);
        Bytes block(t.begin() + at, t.begin() + at + len);
        t.erase(t.begin() + at, t.begin() + at + len);
        size_t to = t.empty() ? 0 : rng() % t.size();
        t.insert(t.begin() + to, block.begin(), block.end());
        break;
      }
      case 3: {  // repeat a block
        len = std::min(len, t.size() - at);
        Bytes block(t.begin() + at, t.begin() + at + len);
        for (int r = 0; r < 3; ++r) t.insert(t.begin() + at, block.begin(), block.end());
        break;
      }
      case 4: {  // pointers shift by a constant
        uint32_t delta = rng() % 64 + 1;
        for (size_t i = at; i + 4 <= std::min(t.size(), at + len * 4); i += 16) {
          uint32_t w;
          std::memcpy(&w, &t[i], 4);
          w += delta;
          std::memcpy(&t[i], &w, 4);
        }
        break;
      }
      default:  // scattered byte changes
        for (size_t i = at; i < std::min(t.size(), at + len); i += 1 + rng() % 97) {
          t[i] = static_cast<uint8_t>(rng());
          ++fresh_count;
        }
    }
  }
  if (fresh_bytes) *fresh_bytes = fresh_count;
  return t;
}

TEST(Delta, EdgeCasesRoundTrip) {
  std::mt19937 rng(1);
  Bytes some = MakeBase(rng, 20000);
  const std::pair<Bytes, Bytes> cases[] = {
      {{}, {}},                              // both empty
      {{}, some},                            // a 0-byte base
      {some, {}},                            // an empty target
      {some, some},                          // identical
      {{'a'}, {'b'}},                        // one byte each
      {Bytes(100000, 0), Bytes(100001, 0)},  // a run
      {some, Bytes(some.rbegin(), some.rend())},
  };
  for (const auto& [base, target] : cases) {
    SCOPED_TRACE(std::to_string(base.size()) + " -> " + std::to_string(target.size()));
    Bytes patch = MustDiff(base, target);
    EXPECT_THAT(Apply(base, patch), IsOkAndHolds(target));
    EXPECT_THAT(Apply(base, patch, 1), IsOkAndHolds(target));
  }
}

TEST(Delta, IdenticalImagesMakeATinyPatch) {
  std::mt19937 rng(2);
  Bytes base = MakeBase(rng, 2'000'000);
  Bytes patch = MustDiff(base, base);
  EXPECT_LT(patch.size(), 400u);
  EXPECT_THAT(Apply(base, patch), IsOkAndHolds(base));
}

TEST(Delta, GeneratedEditsRoundTrip) {
  for (uint32_t seed = 0; seed < 40; ++seed) {
    std::mt19937 rng(seed);
    size_t n = seed % 8 == 0 ? rng() % 64 : 1000 + rng() % 300'000;
    Bytes base = MakeBase(rng, n);
    size_t fresh = 0;
    Bytes target = Mutate(rng, base, 1 + static_cast<int>(rng() % 40), &fresh);
    SCOPED_TRACE("seed " + std::to_string(seed) + ": " + std::to_string(base.size()) + " -> " +
                 std::to_string(target.size()));
    // Small segments exercise operations spanning segment boundaries.
    DiffOptions options;
    options.segment = seed % 2 ? 1024 : kDefaultSegment;
    options.window = seed % 3 ? kDefaultWindow : 4096;
    Bytes patch = MustDiff(base, target, options);
    EXPECT_THAT(Apply(base, patch, 1 + rng() % 9000), IsOkAndHolds(target));
    // Random new bytes cannot compress; everything else the edits did should cost little (given
    // a window that reaches the repeats).
    if (options.window == kDefaultWindow) {
      EXPECT_LT(patch.size(), fresh + target.size() / 10 + 500);
    }
  }
}

TEST(Delta, MemoryLimitsAreEnforced) {
  std::mt19937 rng(3);
  Bytes base = MakeBase(rng, 400'000);
  Bytes target = Mutate(rng, base, 30);
  Bytes patch = MustDiff(base, target, {.window = 1 << 20, .segment = kDefaultSegment});
  ApplyOptions tight;
  tight.max_window = 64 << 10;
  Result<Bytes> r = Apply(base, patch, 4096, tight);
  EXPECT_THAT(r, IsError(Code::kOutOfRange, _));
  EXPECT_THAT(r.error().message(), HasSubstr("the limit is 64 KiB"));
  // A patch made for a small window applies within it.
  Bytes small = MustDiff(base, target, {.window = 64 << 10, .segment = 16 << 10});
  EXPECT_THAT(Apply(base, small, 4096, {.max_window = 64 << 10, .max_segment = 64 << 10}),
              IsOkAndHolds(target));
}

TEST(Delta, SmallWindowImpliesSmallSegments) {
  std::mt19937 rng(6);
  Bytes base = MakeBase(rng, 1'500'000);
  size_t fresh = 0;
  Bytes target = Mutate(rng, base, 400, &fresh);
  DiffStats wide, narrow;
  ASSERT_THAT(Diff(base, target, {.window = 1 << 20}, &wide), IsOk());
  Result<Bytes> small = Diff(base, target, {.window = 16 << 10}, &narrow);
  ASSERT_THAT(small, IsOk());
  // The default segment is the smaller of 128 KiB and 4 x the window: 64 KiB here.
  EXPECT_GT(narrow.segments, wide.segments) << narrow.max_segment << " " << wide.max_segment;
  EXPECT_LE(narrow.max_segment, 64u << 10);
  EXPECT_THAT(Apply(base, *small, 4096, {.max_window = 16 << 10, .max_segment = 64 << 10}),
              IsOkAndHolds(target));
}

class BadPatch : public ::testing::Test {
 protected:
  void SetUp() override {
    std::mt19937 rng(4);
    base_ = MakeBase(rng, 200'000);
    target_ = Mutate(rng, base_, 25);
    patch_ = MustDiff(base_, target_, {.window = kDefaultWindow, .segment = 4096});
    ASSERT_THAT(Apply(base_, patch_), IsOkAndHolds(target_));
  }
  Bytes base_, target_, patch_;
};

TEST_F(BadPatch, WrongBaseIsRefusedBeforeAnyOutput) {
  Bytes other = base_;
  other[1234] ^= 1;
  MemoryBase b(other);
  MemorySink out;
  Patcher p(b, out);
  Status s = p.Write(patch_);
  EXPECT_THAT(s, IsError(Code::kIntegrity, _));
  EXPECT_THAT(s.error().message(), HasSubstr("wrong base"));
  EXPECT_TRUE(out.bytes().empty());

  Bytes shorter(base_.begin(), base_.end() - 1);
  EXPECT_THAT(Apply(shorter, patch_), IsError(Code::kIntegrity, _));
  // Without the up-front check, the target's hash still catches it.
  ApplyOptions unchecked;
  unchecked.check_base = false;
  EXPECT_THAT(Apply(other, patch_, 4096, unchecked), ::testing::Not(IsOkAndHolds(::testing::_)));
}

TEST_F(BadPatch, TruncatedPatchFails) {
  for (size_t len = 0; len < patch_.size(); len += 1 + len / 7) {
    Bytes cut(patch_.begin(), patch_.begin() + len);
    Result<Bytes> r = Apply(base_, cut);
    ASSERT_FALSE(r.ok()) << len;
    EXPECT_EQ(r.error().code(), Code::kMalformed) << len << ": " << r.error().ToString();
  }
  Result<Bytes> r = Apply(base_, Bytes(patch_.begin(), patch_.end() - 1));
  EXPECT_THAT(r.error().message(), HasSubstr("truncated"));
}

TEST_F(BadPatch, CorruptedPatchNeverYieldsAWrongImage) {
  std::mt19937 rng(5);
  int failed = 0, total = 0;
  for (size_t at = 0; at < patch_.size(); at += 1 + rng() % 13) {
    Bytes bad = patch_;
    bad[at] ^= static_cast<uint8_t>(1 + rng() % 255);
    Result<Bytes> r = Apply(base_, bad);
    ++total;
    if (r.ok()) {
      EXPECT_EQ(*r, target_) << "byte " << at << ": a corrupt patch passed with a wrong image";
    } else {
      ++failed;
      EXPECT_NE(r.error().code(), Code::kInternal) << r.error().ToString();
    }
  }
  EXPECT_GT(failed, total * 9 / 10);
  Bytes longer = patch_;
  longer.push_back(0);
  EXPECT_THAT(Apply(base_, longer), IsError(Code::kMalformed, _));
  Bytes not_a_patch = testing::TextBytes(500);
  EXPECT_THAT(Apply(base_, not_a_patch).error().message(), HasSubstr("not an Aloft delta"));
}

}  // namespace
}  // namespace aloft::delta
