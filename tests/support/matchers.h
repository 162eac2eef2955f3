// GoogleTest matchers for Result<T> and Status, in the style of abseil's StatusIs:
//
//   EXPECT_THAT(Verify(pkg), IsError(Code::kUntrusted, HasSubstr("below threshold")));
//   ASSERT_THAT(result, IsOk());
#pragma once

#include <gmock/gmock.h>

#include <ostream>

#include "core/error.h"

namespace aloft {

inline void PrintTo(const Error& e, std::ostream* os) { *os << e.ToString(); }
template <typename T>
void PrintTo(const Result<T>& r, std::ostream* os) {
  if (r.ok()) {
    *os << "ok";
  } else {
    *os << r.error().ToString();
  }
}

namespace testing_internal {
template <typename R>
const Error* ErrorOf(const R& r) {
  return r.ok() ? nullptr : &r.error();
}
inline const Error* ErrorOf(const Error& e) { return &e; }
}  // namespace testing_internal

MATCHER(IsOk, "is ok") {
  const Error* e = testing_internal::ErrorOf(arg);
  if (e != nullptr) *result_listener << "error: " << e->ToString();
  return e == nullptr;
}

// A Result that is ok and whose value matches `value_matcher`.
MATCHER_P(IsOkAndHolds, value_matcher, "is ok and holds a matching value") {
  const Error* e = testing_internal::ErrorOf(arg);
  if (e != nullptr) {
    *result_listener << "error: " << e->ToString();
    return false;
  }
  return ::testing::ExplainMatchResult(value_matcher, *arg, result_listener);
}

MATCHER_P2(IsError, code, message_matcher,
           std::string("is an error with code ") + std::string(CodeName(code))) {
  const Error* e = testing_internal::ErrorOf(arg);
  if (e == nullptr) {
    *result_listener << "is ok";
    return false;
  }
  *result_listener << "error: " << e->ToString();
  return e->code() == code &&
         ::testing::ExplainMatchResult(message_matcher, e->message(), result_listener);
}

}  // namespace aloft
