#include "core/semver.h"

#include <gtest/gtest.h>

#include "support/matchers.h"

namespace aloft {
namespace {

using ::testing::HasSubstr;

SemVer V(std::string_view s) {
  auto v = SemVer::Parse(s);
  EXPECT_THAT(v, IsOk()) << s;
  return v.ok() ? *v : SemVer();
}

// semver.org, item 11: "Example: 1.0.0-alpha < 1.0.0-alpha.1 < 1.0.0-alpha.beta < 1.0.0-beta <
// 1.0.0-beta.2 < 1.0.0-beta.11 < 1.0.0-rc.1 < 1.0.0" and "1.0.0 < 2.0.0 < 2.1.0 < 2.1.1".
TEST(SemVer, SpecPrecedenceExamples) {
  const std::vector<std::vector<const char*>> chains = {
      {"1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
       "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0"},
      {"1.0.0", "2.0.0", "2.1.0", "2.1.1"},
  };
  for (const auto& chain : chains) {
    for (size_t i = 0; i < chain.size(); ++i) {
      for (size_t j = 0; j < chain.size(); ++j) {
        EXPECT_EQ(V(chain[i]) <=> V(chain[j]), i <=> j) << chain[i] << " vs " << chain[j];
      }
    }
  }
}

TEST(SemVer, BuildMetadataIsKeptButIgnoredByPrecedence) {
  // semver.org item 10 examples.
  SemVer a = V("1.0.0-alpha+001"), b = V("1.0.0+20130313144700"),
         c = V("1.0.0-beta+exp.sha.5114f85");
  EXPECT_EQ(a.ToString(), "1.0.0-alpha+001");
  EXPECT_EQ(c.build(), (std::vector<std::string>{"exp", "sha", "5114f85"}));
  EXPECT_EQ(b, V("1.0.0"));
  EXPECT_LT(a, c);
  EXPECT_LT(c, b);
}

TEST(SemVer, ParsesLargeNumbersAndHyphens) {
  SemVer v = V("10.20.30-x-y-z.--+build-1");
  EXPECT_EQ(v.major(), 10u);
  EXPECT_EQ(v.minor(), 20u);
  EXPECT_EQ(v.patch(), 30u);
  EXPECT_EQ(v.prerelease(), (std::vector<std::string>{"x-y-z", "--"}));
  EXPECT_EQ(V("18446744073709551615.0.0").major(), 18446744073709551615u);
  // Build identifiers may have leading zeros; pre-release numeric ones may not.
  EXPECT_THAT(SemVer::Parse("1.0.0+001"), IsOk());
  EXPECT_THAT(SemVer::Parse("1.0.0-0A.is.legal"), IsOk());
}

struct Invalid {
  const char* text;
  const char* why;
};

TEST(SemVer, RejectsInvalidVersionsWithTheReason) {
  const Invalid kInvalid[] = {
      {"", "empty"},
      {"1", "MAJOR.MINOR.PATCH"},
      {"1.2", "MAJOR.MINOR.PATCH"},
      {"1.2.3.4", "MAJOR.MINOR.PATCH"},
      {"01.1.1", "leading zero"},
      {"1.01.1", "leading zero"},
      {"1.1.01", "leading zero"},
      {"1.2.3-0123", "leading zero"},
      {"1.2.3-", "empty identifier"},
      {"1.2.3-alpha..1", "empty identifier"},
      {"1.2.3+", "empty identifier"},
      {"1.2.3-alpha_beta", "[0-9A-Za-z-]"},
      {"v1.2.3", "not a number"},
      {"1.2.-3", "not a number"},
      {" 1.2.3", "not a number"},
      {"99999999999999999999.0.0", "too large"},
  };
  for (const Invalid& c : kInvalid) {
    EXPECT_THAT(SemVer::Parse(c.text), IsError(Code::kMalformed, HasSubstr(c.why))) << c.text;
  }
}

}  // namespace
}  // namespace aloft
