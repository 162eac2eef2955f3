// Canonical JSON for signing: RFC 8785, the JSON Canonicalization Scheme (JCS).
//
// Why JCS and not OLPC canonical JSON (the TUF reference implementation's): JCS is a published
// specification with test vectors, it is defined for every I-JSON value (floats, control
// characters, any Unicode), and implementations exist in many languages, so a third party can
// verify an Aloft signature without our code. See docs/package-format.md.
//
// Rules, in short: no whitespace; object members sorted by the UTF-16 code units of their names;
// strings as UTF-8 with only `"` `\` and control characters escaped (\b \f \n \r \t, else \u00xx);
// numbers as ECMAScript's Number.prototype.toString prints the IEEE-754 double.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "core/error.h"

namespace aloft {

// The JCS text of `value`. Fails (kInvalidArgument) on NaN or infinity, on an integer outside
// +-(2^53 - 1) (it would not survive a trip through a double), and on a string that is not UTF-8.
Result<std::string> CanonicalJson(const nlohmann::json& value);

inline constexpr int kMaxJsonDepth = 64;

// Parses `text` as JSON, at most kMaxJsonDepth arrays and objects deep. kMalformed, with the
// parser's position, when it is not JSON or when an object has a member name twice (I-JSON forbids
// it, and it would make signatures ambiguous).
Result<nlohmann::json> ParseJson(std::string_view text);

// `value` as compact JSON text for an answer or a log; never throws: a string that is not valid
// UTF-8 (bytes a client sent) is written with U+FFFD for each bad byte, where nlohmann's dump()
// would throw type_error 316.
std::string DumpJson(const nlohmann::json& value);

}  // namespace aloft
