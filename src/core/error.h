// Errors as values: aloft::Error, aloft::Result<T> and the macros that keep call sites flat.
//
// Every fallible function in Aloft returns Result<T> (or Status = Result<void>). An Error carries a
// Code for programs (tests, exit codes, HTTP statuses) and a message for people that names the
// input and the problem, e.g. "fw.aloft: payload 'main' sha256 mismatch (manifest 3fa2…, got
// 91c0…)".
//
//   Result<Manifest> ParseManifest(std::string_view text);
//   Status Check() {
//     ALOFT_ASSIGN_OR_RETURN(Manifest m, ParseManifest(text));
//     ALOFT_RETURN_IF_ERROR(Validate(m));
//     return OkStatus();
//   }
//
// No exceptions cross a library boundary; throwing third-party code is wrapped at the edge.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

namespace aloft {

// What kind of failure: stable, used by callers to decide what to do (exit code, HTTP status).
enum class Code {
  kInvalidArgument = 1,  // the caller's input is wrong (bad flag, bad field value)
  kNotFound,             // a named thing does not exist
  kAlreadyExists,        // creating something that exists
  kPermissionDenied,     // not allowed
  kIo,                   // the operating system failed a read, write, open, ...
  kMalformed,            // input does not follow its format (tar, JSON, manifest, ...)
  kUnsupported,          // well-formed but of a version or kind this build does not handle
  kIntegrity,            // content does not match its recorded hash or size
  kUntrusted,            // signatures do not satisfy the trust set
  kOutOfRange,           // a value or size beyond a limit
  kUnavailable,          // a peer or resource is temporarily unavailable
  kInternal,             // a bug or an unexpected library failure
};

// "invalid-argument", "malformed", ...
std::string_view CodeName(Code code);

class [[nodiscard]] Error {
 public:
  Error(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  Code code() const { return code_; }
  const std::string& message() const { return message_; }

  // Prefixes the message: Error(kIo, "no space").WithContext("writing out.aloft")
  // -> "writing out.aloft: no space".
  Error WithContext(std::string_view context) const&;
  Error WithContext(std::string_view context) &&;

  // "malformed: writing out.aloft: ..."
  std::string ToString() const;

 private:
  Code code_;
  std::string message_;
};

// Error from errno: "<what>: <strerror(errno_value)>", with kNotFound / kPermissionDenied /
// kAlreadyExists where errno says so and kIo otherwise.
Error ErrnoError(std::string_view what, int errno_value);

template <typename T>
class [[nodiscard]] Result {
 public:
  static_assert(!std::is_same_v<std::decay_t<T>, Error>, "Result<Error> makes no sense");

  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT
  template <typename U>
  requires(std::is_constructible_v<T, U&&> && !std::is_same_v<std::decay_t<U>, Error> &&
           !std::is_same_v<std::decay_t<U>, T> && !std::is_same_v<std::decay_t<U>, Result>)
      Result(U&& value)
      : v_(std::in_place_index<0>, T(std::forward<U>(value))) {}  // NOLINT

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & {
    assert(ok());
    return std::get<0>(v_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<0>(v_);
  }
  T&& value() && {
    assert(ok());
    return std::get<0>(std::move(v_));
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Error& error() const& {
    assert(!ok());
    return std::get<1>(v_);
  }
  Error&& error() && {
    assert(!ok());
    return std::get<1>(std::move(v_));
  }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)) {}  // NOLINT: implicit by design

  bool ok() const { return !error_.has_value(); }
  explicit operator bool() const { return ok(); }
  const Error& error() const& {
    assert(!ok());
    return *error_;
  }
  Error&& error() && {
    assert(!ok());
    return *std::move(error_);
  }

 private:
  std::optional<Error> error_;
};

using Status = Result<void>;
inline Status OkStatus() { return Status(); }

}  // namespace aloft

#define ALOFT_CONCAT_INNER_(a, b) a##b
#define ALOFT_CONCAT_(a, b) ALOFT_CONCAT_INNER_(a, b)

// Returns the error of `expr` (a Result<T> or Status) from the current function.
#define ALOFT_RETURN_IF_ERROR(expr) \
  ALOFT_RETURN_IF_ERROR_IMPL_(ALOFT_CONCAT_(aloft_status_, __COUNTER__), expr)
#define ALOFT_RETURN_IF_ERROR_IMPL_(tmp, expr)    \
  do {                                            \
    auto&& tmp = (expr);                          \
    if (!tmp.ok()) return std::move(tmp).error(); \
  } while (false)

// Declares or assigns `lhs` from the value of `expr` (a Result<T>), or returns its error.
#define ALOFT_ASSIGN_OR_RETURN(lhs, expr) \
  ALOFT_ASSIGN_OR_RETURN_IMPL_(ALOFT_CONCAT_(aloft_result_, __LINE__), lhs, expr)
#define ALOFT_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                 \
  if (!tmp.ok()) return std::move(tmp).error();      \
  lhs = std::move(tmp).value()
