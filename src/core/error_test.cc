#include "core/error.h"

#include <gtest/gtest.h>

#include <cerrno>

#include "support/matchers.h"

namespace aloft {
namespace {

using ::testing::HasSubstr;

Result<int> Half(int x) {
  if (x % 2 != 0) return Error(Code::kInvalidArgument, std::to_string(x) + " is odd");
  return x / 2;
}

Result<int> Quarter(int x) {
  ALOFT_ASSIGN_OR_RETURN(int half, Half(x));
  ALOFT_ASSIGN_OR_RETURN(int quarter, Half(half));
  return quarter;
}

Status CheckEven(int x) {
  ALOFT_RETURN_IF_ERROR(Half(x));
  return OkStatus();
}

TEST(Error, WithContext_PrefixesTheMessageAndKeepsTheCode) {
  Error e = Error(Code::kIo, "no space").WithContext("writing out.aloft");
  EXPECT_EQ(e.code(), Code::kIo);
  EXPECT_EQ(e.message(), "writing out.aloft: no space");
  EXPECT_EQ(e.ToString(), "io: writing out.aloft: no space");
}

TEST(Error, Macros_PropagateTheFirstError) {
  EXPECT_THAT(Quarter(8), IsOk());
  EXPECT_EQ(Quarter(8).value(), 2);
  EXPECT_THAT(Quarter(6), IsError(Code::kInvalidArgument, HasSubstr("3 is odd")));
  EXPECT_THAT(CheckEven(4), IsOk());
  EXPECT_THAT(CheckEven(5), IsError(Code::kInvalidArgument, "5 is odd"));
}

TEST(Error, ErrnoError_MapsCommonErrnos) {
  EXPECT_THAT(ErrnoError("a", ENOENT), IsError(Code::kNotFound, HasSubstr("a: ")));
  EXPECT_THAT(ErrnoError("a", EACCES), IsError(Code::kPermissionDenied, HasSubstr("a: ")));
  EXPECT_THAT(ErrnoError("a", EEXIST), IsError(Code::kAlreadyExists, HasSubstr("a: ")));
  EXPECT_THAT(ErrnoError("a", ENOSPC), IsError(Code::kIo, HasSubstr("a: ")));
}

}  // namespace
}  // namespace aloft
