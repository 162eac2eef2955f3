#include "core/error.h"

#include <cerrno>
#include <cstring>

namespace aloft {

std::string_view CodeName(Code code) {
  switch (code) {
    case Code::kInvalidArgument:
      return "invalid-argument";
    case Code::kNotFound:
      return "not-found";
    case Code::kAlreadyExists:
      return "already-exists";
    case Code::kPermissionDenied:
      return "permission-denied";
    case Code::kIo:
      return "io";
    case Code::kMalformed:
      return "malformed";
    case Code::kUnsupported:
      return "unsupported";
    case Code::kIntegrity:
      return "integrity";
    case Code::kUntrusted:
      return "untrusted";
    case Code::kOutOfRange:
      return "out-of-range";
    case Code::kUnavailable:
      return "unavailable";
    case Code::kInternal:
      return "internal";
  }
  return "unknown";
}

Error Error::WithContext(std::string_view context) const& {
  Error copy = *this;
  return std::move(copy).WithContext(context);
}

Error Error::WithContext(std::string_view context) && {
  message_ = std::string(context) + ": " + message_;
  return std::move(*this);
}

std::string Error::ToString() const { return std::string(CodeName(code_)) + ": " + message_; }

Error ErrnoError(std::string_view what, int errno_value) {
  Code code = Code::kIo;
  switch (errno_value) {
    case ENOENT:
    case ENOTDIR:
      code = Code::kNotFound;
      break;
    case EACCES:
    case EPERM:
      code = Code::kPermissionDenied;
      break;
    case EEXIST:
      code = Code::kAlreadyExists;
      break;
    default:
      break;
  }
  return Error(code, std::string(what) + ": " + std::strerror(errno_value));
}

}  // namespace aloft
