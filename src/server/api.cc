#include "server/api.h"

#include <strings.h>

#include <charconv>
#include <cstdlib>

#include "core/canonical_json.h"
#include "pkg/manifest.h"

namespace aloft::server {

void RouteTable::Add(std::string method, std::string pattern, Access access, BodyKind body,
                     Handler fn) {
  router_.Add(method, pattern, static_cast<int>(routes_.size()));
  int metric = metrics_.AddRoute(pattern, method);
  routes_.push_back({std::move(method), std::move(pattern), access, body, std::move(fn), metric});
}

// ---- responses ----

int HttpStatus(Code c) {
  switch (c) {
    case Code::kInvalidArgument:
    case Code::kMalformed:
      return 400;
    case Code::kPermissionDenied:
      return 403;
    case Code::kNotFound:
      return 404;
    case Code::kAlreadyExists:
      return 409;
    case Code::kOutOfRange:
      return 413;
    case Code::kIntegrity:
    case Code::kUntrusted:
    case Code::kUnsupported:
      return 422;
    case Code::kUnavailable:
      return 503;
    case Code::kIo:
    case Code::kInternal:
      return 500;
  }
  return 500;
}

Response ErrorResponse(const Error& e) {
  return Response::Error(HttpStatus(e.code()), CodeName(e.code()), e.message());
}

Response Empty(int status) {
  Response r;
  r.status = status;
  return r;
}

Response AuthErrorResponse(const Error& e, Access access) {
  Response res = ErrorResponse(e);
  if (e.code() == Code::kPermissionDenied) {
    res.status = 401;
    res.headers.Set("WWW-Authenticate", access == Access::kDdi ? "TargetToken" : "Bearer");
  }
  return res;
}

Caller SessionCaller(const Session& s) {
  Caller c;
  c.kind = Caller::kOperator;
  c.actor = s.actor;
  c.role = s.role;
  c.session = true;
  c.csrf = s.csrf;
  return c;
}

std::string_view CookieValue(const Request& req, std::string_view name) {
  for (const auto& [field, value] : req.headers.fields()) {
    if (field.size() != 6 || strncasecmp(field.c_str(), "cookie", 6) != 0) continue;
    std::string_view rest = value;
    while (!rest.empty()) {
      size_t end = rest.find(';');
      std::string_view pair = rest.substr(0, end);
      rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
      while (!pair.empty() && pair.front() == ' ') pair.remove_prefix(1);
      if (pair.size() > name.size() && pair.substr(0, name.size()) == name &&
          pair[name.size()] == '=') {
        return pair.substr(name.size() + 1);
      }
    }
  }
  return {};
}

Response JsonResponse(int status, const json& j) { return Response::Json(status, DumpJson(j)); }

// ---- request input ----

Result<json> ParseBody(const Request& req, bool allow_empty) {
  if (req.body.empty() && allow_empty) return json::object();
  auto j = ParseJson(req.body);
  if (!j.ok()) return std::move(j).error().WithContext("request body is not valid JSON");
  if (!j->is_object()) return Error(Code::kMalformed, "request body must be a JSON object");
  return std::move(j).value();
}

std::optional<int64_t> ParseInteger(std::string_view text) {
  int64_t v = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, v);  // no '+', no spaces, no overflow
  if (text.empty() || ec != std::errc() || ptr != end) return std::nullopt;
  if (text.size() > 1 && (text[0] == '0' || (text[0] == '-' && text[1] == '0'))) {
    return std::nullopt;  // "01", "-0": one spelling per number
  }
  return v;
}

std::optional<int64_t> ParseId(const std::string& text) {
  auto v = ParseInteger(text);
  if (!v || *v <= 0) return std::nullopt;
  return v;
}

Result<int64_t> PathId(Request& r, std::string_view what) {
  const std::string& text = r.params["id"];
  auto id = ParseId(text);
  if (!id) {
    return Invalid(std::string(what) + " id '" + text +
                   "' is not an id (a decimal number from 1 to 9223372036854775807)");
  }
  return *id;
}

Result<std::optional<std::string>> OptString(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::optional<std::string>();
  if (!it->is_string()) {
    return Invalid(std::string("field '") + key + "' must be a string, not " + it->type_name());
  }
  return std::optional<std::string>(it->get<std::string>());
}

Result<std::string> ReqString(const json& j, const char* key) {
  ALOFT_ASSIGN_OR_RETURN(auto v, OptString(j, key));
  if (!v) return Invalid(std::string("missing field '") + key + "'");
  return *v;
}

Result<std::optional<std::vector<std::string>>> OptStringList(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::optional<std::vector<std::string>>();
  if (!it->is_array()) {
    return Invalid(std::string("field '") + key + "' must be an array of strings, not " +
                   it->type_name());
  }
  std::vector<std::string> out;
  for (const auto& e : *it) {
    if (!e.is_string()) {
      return Invalid(std::string("field '") + key + "' must contain only strings, found " +
                     e.type_name());
    }
    out.push_back(e.get<std::string>());
  }
  return std::optional<std::vector<std::string>>(std::move(out));
}

Status CheckName(std::string_view what, const std::string& name) {
  if (!pkg::IsValidName(name, 128)) {
    return Invalid(std::string(what) + " '" + name +
                   "' is not a valid name (letters, digits, '.', '_', '-'; starting with a "
                   "letter or digit; at most 128)");
  }
  return OkStatus();
}

Status CheckVersion(const std::string& version) {
  if (version.empty() || version.size() > 64) {
    return Invalid("version '" + version + "' must have 1 to 64 characters");
  }
  for (char c : version) {
    if (!(isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '+' || c == '_')) {
      return Invalid("version '" + version +
                     "' may contain only letters, digits, '.', '-', '+', "
                     "'_'");
    }
  }
  return OkStatus();
}

Result<std::optional<json>> OptAttributes(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::optional<json>();
  if (!it->is_object()) {
    return Invalid(std::string("field '") + key + "' must be an object, not " + it->type_name());
  }
  for (const auto& [k, v] : it->items()) {
    if (!(v.is_string() || v.is_number() || v.is_boolean())) {
      return Invalid("attribute '" + k + "' must be a string, number or boolean");
    }
    if (k.size() > 128) return Invalid("attribute name '" + k.substr(0, 32) + "…' is too long");
  }
  return std::optional<json>(*it);
}

Result<int64_t> QueryInt(const Request& req, const char* key, int64_t def, int64_t max) {
  auto it = req.query.find(key);
  if (it == req.query.end()) return def;
  auto v = ParseInteger(it->second);
  if (!v || *v < 0) {
    return Invalid(std::string("query parameter '") + key + "' must be a non-negative integer");
  }
  return std::min<int64_t>(*v, max);
}

std::optional<std::string> QueryStr(const Request& req, const char* key) {
  auto it = req.query.find(key);
  if (it == req.query.end()) return std::nullopt;
  return it->second;
}

}  // namespace aloft::server
