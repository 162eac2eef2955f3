#include "http/message.h"

#include <strings.h>
#include <unistd.h>

namespace aloft::http {

namespace {
bool IEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}
}  // namespace

void Headers::Set(std::string_view name, std::string value) {
  std::erase_if(fields_, [&](const auto& f) { return IEquals(f.first, name); });
  fields_.emplace_back(std::string(name), std::move(value));
}

std::string_view Headers::Get(std::string_view name) const {
  for (const auto& [k, v] : fields_)
    if (IEquals(k, name)) return v;
  return {};
}

bool Headers::Has(std::string_view name) const {
  for (const auto& [k, v] : fields_)
    if (IEquals(k, name)) return true;
  return false;
}

SharedFd::~SharedFd() {
  if (fd_ >= 0) ::close(fd_);
}

FileBody::~FileBody() {
  if (active) active->fetch_sub(1);
}

uint64_t FileBody::Size() const {
  uint64_t n = 0;
  for (const auto& p : parts) n += p.from_file ? p.length : p.text.size();
  return n;
}

namespace {
Response WithBody(int status, std::string_view type, std::string body) {
  Response r;
  r.status = status;
  r.headers.Set("Content-Type", std::string(type));
  r.body = std::move(body);
  return r;
}
}  // namespace

Response Response::Json(int status, std::string json) {
  return WithBody(status, "application/json", std::move(json));
}

Response Response::Text(int status, std::string text) {
  return WithBody(status, "text/plain; charset=utf-8", std::move(text));
}

Response Response::Error(int status, std::string_view code, std::string_view message) {
  return Json(status, "{\"error\":" + JsonQuote(code) + ",\"message\":" + JsonQuote(message) + "}");
}

std::string JsonQuote(std::string_view s) {
  static const char* kHex = "0123456789abcdef";
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 15];
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
  return out;
}

std::string PercentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
      out += static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::string PercentEncode(std::string_view s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::map<std::string, std::string> ParseQuery(std::string_view q) {
  std::map<std::string, std::string> out;
  while (!q.empty()) {
    size_t amp = q.find('&');
    std::string_view pair = q.substr(0, amp);
    q = amp == std::string_view::npos ? std::string_view() : q.substr(amp + 1);
    if (pair.empty()) continue;
    size_t eq = pair.find('=');
    std::string key(pair.substr(0, eq));
    std::string value(eq == std::string_view::npos ? "" : pair.substr(eq + 1));
    for (auto& c : value)
      if (c == '+') c = ' ';
    out[PercentDecode(key)] = PercentDecode(value);
  }
  return out;
}

}  // namespace aloft::http
