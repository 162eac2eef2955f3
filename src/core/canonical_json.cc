#include "core/canonical_json.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "core/text.h"

namespace aloft {
namespace {

constexpr int64_t kMaxSafeInteger = (int64_t{1} << 53) - 1;

// Decodes UTF-8 into UTF-16 code units (into `out` unless it is null), checking validity: no
// overlong forms, no surrogates, nothing above U+10FFFF.
bool Utf8ToUtf16(std::string_view s, std::u16string* out) {
  if (out != nullptr) out->clear();
  for (size_t i = 0; i < s.size();) {
    uint32_t cp = 0;
    const int len = DecodeUtf8(s, i, cp);
    if (len == 0) return false;
    if (out == nullptr) {
      // validation only
    } else if (cp >= 0x10000) {
      cp -= 0x10000;
      out->push_back(char16_t(0xd800 + (cp >> 10)));
      out->push_back(char16_t(0xdc00 + (cp & 0x3ff)));
    } else {
      out->push_back(char16_t(cp));
    }
    i += static_cast<size_t>(len);
  }
  return true;
}

Status AppendString(std::string_view s, std::string* out) {
  if (!Utf8ToUtf16(s, nullptr)) {
    return Error(Code::kInvalidArgument, "string is not valid UTF-8");
  }
  out->push_back('"');
  for (char ch : s) {
    uint8_t c = static_cast<uint8_t>(ch);
    switch (c) {
      case '"':
        *out += "\\\"";
        break;
      case '\\':
        *out += "\\\\";
        break;
      case '\b':
        *out += "\\b";
        break;
      case '\f':
        *out += "\\f";
        break;
      case '\n':
        *out += "\\n";
        break;
      case '\r':
        *out += "\\r";
        break;
      case '\t':
        *out += "\\t";
        break;
      default:
        if (c < 0x20) {
          static constexpr char kHex[] = "0123456789abcdef";
          *out += "\\u00";
          out->push_back(kHex[c >> 4]);
          out->push_back(kHex[c & 0xf]);
        } else {
          out->push_back(ch);
        }
    }
  }
  out->push_back('"');
  return OkStatus();
}

// ECMAScript Number::toString (ECMA-262 7.1.12.1) over the shortest round-trip digits.
Status AppendDouble(double v, std::string* out) {
  if (!std::isfinite(v)) {
    return Error(Code::kInvalidArgument, "NaN and Infinity have no JSON form");
  }
  if (v == 0) {  // also -0
    out->push_back('0');
    return OkStatus();
  }
  if (v < 0) {
    out->push_back('-');
    v = -v;
  }
  // Shortest scientific form "d[.ddd]e[+-]x" gives the digits and the exponent.
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
  std::string_view sci(buf, res.ptr - buf);
  size_t e_pos = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, e_pos)) {
    if (c != '.') digits.push_back(c);
  }
  int exponent = 0;
  std::string_view exp_text = sci.substr(e_pos + 1);
  if (exp_text[0] == '+') exp_text.remove_prefix(1);
  std::from_chars(exp_text.data(), exp_text.data() + exp_text.size(), exponent);
  const int k = static_cast<int>(digits.size());
  const int n = exponent + 1;  // the value is 0.digits * 10^n
  if (k <= n && n <= 21) {
    *out += digits;
    out->append(n - k, '0');
  } else if (0 < n && n <= 21) {
    out->append(digits, 0, n);
    out->push_back('.');
    out->append(digits, n);
  } else if (-6 < n && n <= 0) {
    *out += "0.";
    out->append(-n, '0');
    *out += digits;
  } else {
    out->push_back(digits[0]);
    if (k > 1) {
      out->push_back('.');
      out->append(digits, 1);
    }
    out->push_back('e');
    out->push_back(n - 1 >= 0 ? '+' : '-');
    *out += std::to_string(std::abs(n - 1));
  }
  return OkStatus();
}

Status Append(const nlohmann::json& value, std::string* out) {
  using T = nlohmann::json::value_t;
  switch (value.type()) {
    case T::null:
      *out += "null";
      return OkStatus();
    case T::boolean:
      *out += value.get<bool>() ? "true" : "false";
      return OkStatus();
    case T::number_integer: {
      int64_t i = value.get<int64_t>();
      if (i > kMaxSafeInteger || i < -kMaxSafeInteger) {
        return Error(Code::kInvalidArgument,
                     "integer " + std::to_string(i) + " is outside the exact range of I-JSON");
      }
      *out += std::to_string(i);
      return OkStatus();
    }
    case T::number_unsigned: {
      uint64_t u = value.get<uint64_t>();
      if (u > uint64_t(kMaxSafeInteger)) {
        return Error(Code::kInvalidArgument,
                     "integer " + std::to_string(u) + " is outside the exact range of I-JSON");
      }
      *out += std::to_string(u);
      return OkStatus();
    }
    case T::number_float:
      return AppendDouble(value.get<double>(), out);
    case T::string:
      return AppendString(value.get_ref<const std::string&>(), out);
    case T::array: {
      out->push_back('[');
      bool first = true;
      for (const auto& item : value) {
        if (!first) out->push_back(',');
        first = false;
        ALOFT_RETURN_IF_ERROR(Append(item, out));
      }
      out->push_back(']');
      return OkStatus();
    }
    case T::object: {
      struct Member {
        std::u16string key16;
        const std::string* key;
        const nlohmann::json* value;
      };
      std::vector<Member> members;
      members.reserve(value.size());
      for (auto it = value.begin(); it != value.end(); ++it) {
        Member m{{}, &it.key(), &it.value()};
        if (!Utf8ToUtf16(it.key(), &m.key16)) {
          return Error(Code::kInvalidArgument, "member name is not valid UTF-8");
        }
        members.push_back(std::move(m));
      }
      std::sort(members.begin(), members.end(),
                [](const Member& a, const Member& b) { return a.key16 < b.key16; });
      out->push_back('{');
      bool first = true;
      for (const Member& m : members) {
        if (!first) out->push_back(',');
        first = false;
        ALOFT_RETURN_IF_ERROR(AppendString(*m.key, out));
        out->push_back(':');
        Status appended = Append(*m.value, out);
        if (!appended.ok()) {
          return std::move(appended).error().WithContext("in member \"" + *m.key + "\"");
        }
      }
      out->push_back('}');
      return OkStatus();
    }
    case T::binary:
    case T::discarded:
      break;
  }
  return Error(Code::kInvalidArgument, "value has no JSON form");
}

// Deepest nesting of arrays and objects in `text`, strings skipped. Checked before parsing so that
// hostile input cannot exhaust the stack of the recursive walks over the parsed value.
int MaxNesting(std::string_view text) {
  int depth = 0, max_depth = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      max_depth = std::max(max_depth, ++depth);
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return max_depth;
}

}  // namespace

Result<std::string> CanonicalJson(const nlohmann::json& value) {
  std::string out;
  ALOFT_RETURN_IF_ERROR(Append(value, &out));
  return out;
}

Result<nlohmann::json> ParseJson(std::string_view text) {
  if (MaxNesting(text) > kMaxJsonDepth) {
    return Error(Code::kMalformed,
                 "JSON nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  }
  std::string duplicate;
  // The callback sees each member name as it is parsed; the set of names of each open object lives
  // on a stack so a repeated name is caught before nlohmann silently keeps the last one.
  std::vector<std::unordered_set<std::string>> open_objects;
  auto callback = [&](int /*depth*/, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    using E = nlohmann::json::parse_event_t;
    switch (event) {
      case E::object_start:
        open_objects.emplace_back();
        break;
      case E::object_end:
        if (!open_objects.empty()) open_objects.pop_back();
        break;
      case E::key: {
        auto& names = open_objects.back();
        const auto& name = parsed.get_ref<const std::string&>();
        if (!names.insert(name).second && duplicate.empty()) duplicate = name;
        break;
      }
      default:
        break;
    }
    return true;
  };
  nlohmann::json value =
      nlohmann::json::parse(text.begin(), text.end(), callback, /*allow_exceptions=*/false);
  if (value.is_discarded()) {
    // Parse again with exceptions only to obtain the parser's message with its byte position.
    try {
      auto unused = nlohmann::json::parse(text.begin(), text.end());
      (void)unused;
    } catch (const nlohmann::json::exception& e) {
      std::string what = e.what();
      // "[json.exception.parse_error.101] parse error at line 1, column 2: ..." -> from "parse
      // error"
      size_t pos = what.find("] ");
      return Error(Code::kMalformed,
                   "not JSON: " + (pos == std::string::npos ? what : what.substr(pos + 2)));
    }
    return Error(Code::kMalformed, "not JSON");
  }
  if (!duplicate.empty()) {
    return Error(Code::kMalformed, "not I-JSON: member name \"" + duplicate + "\" appears twice");
  }
  return value;
}

std::string DumpJson(const nlohmann::json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace aloft
