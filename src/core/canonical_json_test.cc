#include "core/canonical_json.h"

#include <gtest/gtest.h>

#include <bit>
#include <cstring>

#include "support/matchers.h"

namespace aloft {
namespace {

using ::testing::HasSubstr;

std::string Canon(std::string_view json_text) {
  auto parsed = ParseJson(json_text);
  EXPECT_THAT(parsed, IsOk());
  auto canon = CanonicalJson(*parsed);
  EXPECT_THAT(canon, IsOk());
  return canon.ok() ? *canon : "";
}

// RFC 8785 section 3.2.2: the combined sample and its published output.
TEST(CanonicalJson, Rfc8785Section322Sample) {
  const char* input = R"({
    "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
    "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
    "literals": [null, true, false]
  })";
  EXPECT_EQ(Canon(input),
            "{\"literals\":[null,true,false],\"numbers\":[333333333.3333333,1e+30,4.5,0.002,1e-27],"
            "\"string\":\"\xe2\x82\xac$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\"}");
}

// RFC 8785 section 3.2.3: members sorted by UTF-16 code units (the emoji, a surrogate pair, sorts
// before U+FB33 though its code point is larger).
TEST(CanonicalJson, Rfc8785Section323Sorting) {
  const char* input = R"({
    "\u20ac": "Euro Sign", "\r": "Carriage Return", "\ufb33": "Hebrew Letter Dalet With Dagesh",
    "1": "One", "\ud83d\ude00": "Emoji: Grinning Face", "\u0080": "Control",
    "\u00f6": "Latin Small Letter O With Diaeresis"
  })";
  EXPECT_EQ(Canon(input),
            "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\xc2\x80\":\"Control\","
            "\"\xc3\xb6\":\"Latin Small Letter O With Diaeresis\",\"\xe2\x82\xac\":\"Euro Sign\","
            "\"\xf0\x9f\x98\x80\":\"Emoji: Grinning Face\","
            "\"\xef\xac\xb3\":\"Hebrew Letter Dalet With Dagesh\"}");
}

struct NumberVector {
  uint64_t bits;
  const char* text;
};

// RFC 8785 appendix B: IEEE-754 bit patterns and their canonical text.
const NumberVector kNumbers[] = {
    {0x0000000000000000, "0"},
    {0x8000000000000000, "0"},
    {0x0000000000000001, "5e-324"},
    {0x8000000000000001, "-5e-324"},
    {0x7fefffffffffffff, "1.7976931348623157e+308"},
    {0xffefffffffffffff, "-1.7976931348623157e+308"},
    {0x4340000000000000, "9007199254740992"},
    {0xc340000000000000, "-9007199254740992"},
    {0x4430000000000000, "295147905179352830000"},
    {0x44b52d02c7e14af5, "9.999999999999997e+22"},
    {0x44b52d02c7e14af6, "1e+23"},
    {0x44b52d02c7e14af7, "1.0000000000000001e+23"},
    {0x444b1ae4d6e2ef4e, "999999999999999700000"},
    {0x444b1ae4d6e2ef4f, "999999999999999900000"},
    {0x444b1ae4d6e2ef50, "1e+21"},
    {0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"},
    {0x3eb0c6f7a0b5ed8d, "0.000001"},
    {0x41b3de4355555553, "333333333.3333332"},
    {0x41b3de4355555554, "333333333.33333325"},
    {0x41b3de4355555555, "333333333.3333333"},
    {0x41b3de4355555556, "333333333.3333334"},
    {0x41b3de4355555557, "333333333.33333343"},
    {0xbecbf647612f3696, "-0.0000033333333333333333"},
    {0x43143ff3c1cb0959, "1424953923781206.2"},
};

TEST(CanonicalJson, Rfc8785AppendixBNumbers) {
  for (const NumberVector& v : kNumbers) {
    double d = std::bit_cast<double>(v.bits);
    auto canon = CanonicalJson(nlohmann::json(d));
    ASSERT_THAT(canon, IsOk()) << std::hex << v.bits;
    EXPECT_EQ(*canon, v.text) << std::hex << v.bits;
  }
}

TEST(CanonicalJson, RejectsWhatHasNoCanonicalForm) {
  EXPECT_THAT(CanonicalJson(nlohmann::json(std::bit_cast<double>(0x7fffffffffffffffULL))),
              IsError(Code::kInvalidArgument, HasSubstr("NaN")));
  EXPECT_THAT(CanonicalJson(nlohmann::json(std::bit_cast<double>(0x7ff0000000000000ULL))),
              IsError(Code::kInvalidArgument, HasSubstr("Infinity")));
  EXPECT_THAT(CanonicalJson(nlohmann::json::parse(R"({"size": 9007199254740993})")),
              IsError(Code::kInvalidArgument, HasSubstr("in member \"size\"")));
  EXPECT_THAT(CanonicalJson(nlohmann::json(std::string("\xc0\xaf"))),
              IsError(Code::kInvalidArgument, HasSubstr("UTF-8")));
  EXPECT_THAT(CanonicalJson(nlohmann::json(int64_t{9007199254740991})), IsOk());
}

TEST(CanonicalJson, IntegersPrintAsIntegers) {
  EXPECT_EQ(Canon(R"([0, -1, 42, 1073741824000, 9007199254740991, -9007199254740991])"),
            "[0,-1,42,1073741824000,9007199254740991,-9007199254740991]");
}

TEST(ParseJson, RejectsDuplicateMemberNames) {
  EXPECT_THAT(ParseJson(R"({"a": 1, "b": {"a": 2, "a": 3}})"),
              IsError(Code::kMalformed, HasSubstr("\"a\" appears twice")));
  EXPECT_THAT(ParseJson(R"({"a": {"x": 1}, "b": {"x": 1}})"), IsOk());
}

TEST(ParseJson, RejectsNonJsonWithAPosition) {
  EXPECT_THAT(ParseJson("{\"a\": }"), IsError(Code::kMalformed, HasSubstr("column")));
  EXPECT_THAT(ParseJson(""), IsError(Code::kMalformed, HasSubstr("not JSON")));
}

TEST(ParseJson, RejectsDeepNesting) {
  std::string deep(kMaxJsonDepth + 1, '[');
  deep += std::string(kMaxJsonDepth + 1, ']');
  EXPECT_THAT(ParseJson(deep), IsError(Code::kMalformed, HasSubstr("nested deeper")));
  std::string ok(kMaxJsonDepth, '[');
  ok += std::string(kMaxJsonDepth, ']');
  EXPECT_THAT(ParseJson(ok), IsOk());
  // Brackets inside strings do not count.
  EXPECT_THAT(ParseJson("\"" + deep + "\""), IsOk());
}

}  // namespace
}  // namespace aloft
