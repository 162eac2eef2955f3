#include "http/message.h"

#include <strings.h>
#include <unistd.h>

#include <cctype>

#include "core/text.h"

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

std::optional<Response> RefuseRequestHead(const Request& head) {
  int hosts = 0;
  for (const auto& [name, value] : head.headers.fields()) {
    if (IEquals(name, "Host")) ++hosts;
  }
  if (hosts > 1) return Response::Error(400, "bad-request", "the request has several Host fields");
  const std::string_view host = head.headers.Get("Host");
  for (unsigned char c : host) {
    if (!(std::isalnum(c) || std::string_view("-._~%!$&'()*+,;=:[]").find(static_cast<char>(c)) !=
                                 std::string_view::npos)) {
      return Response::Error(400, "bad-request",
                             "the Host field " + JsonQuote(host).substr(0, 80) +
                                 " is not a host name or address with an optional port");
    }
  }
  if (!IsValidUtf8(head.path)) {
    return Response::Error(400, "bad-request", "the request's path, percent-decoded, is not UTF-8");
  }
  for (const auto& [k, v] : head.query) {
    if (!IsValidUtf8(k) || !IsValidUtf8(v)) {
      return Response::Error(400, "bad-request",
                             "query parameter '" + k + "', percent-decoded, is not UTF-8");
    }
  }
  if (head.headers.Has("Transfer-Encoding")) {
    std::string te;  // the codings of every Transfer-Encoding field, in order
    for (const auto& [name, value] : head.headers.fields()) {
      if (IEquals(name, "Transfer-Encoding")) te += (te.empty() ? "" : ", ") + value;
    }
    size_t a = te.find_first_not_of(" \t"), b = te.find_last_not_of(" \t");
    const std::string coding = a == std::string::npos ? "" : te.substr(a, b - a + 1);
    if (!IEquals(coding, "chunked")) {
      return Response::Error(501, "not-implemented",
                             "Transfer-Encoding " + JsonQuote(coding).substr(0, 80) +
                                 " is not supported; send the body with Content-Length or "
                                 "'Transfer-Encoding: chunked'");
    }
    if (head.headers.Has("Content-Length")) {
      return Response::Error(400, "bad-request",
                             "the request has both Transfer-Encoding and Content-Length");
    }
  }
  return std::nullopt;
}

std::string JsonQuote(std::string_view s) {
  static const char* kHex = "0123456789abcdef";
  std::string out = "\"";
  for (size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {  // valid UTF-8 as it is; each byte of anything else as U+FFFD
      uint32_t cp = 0;
      const int len = DecodeUtf8(s, i, cp);
      if (len == 0) {
        out += "\xef\xbf\xbd";
      } else {
        out.append(s.substr(i, static_cast<size_t>(len)));
        i += static_cast<size_t>(len) - 1;
      }
      continue;
    }
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

bool Stream::Push(std::string_view text) {
  std::function<void()> wake;
  {
    std::lock_guard lock(mu_);
    if (gone_ || ended_) return false;
    if (queued_.size() + text.size() > kMaxQueued) {
      gone_ = true;  // the server closes it at its next look
      ended_ = true;
    } else {
      queued_.append(text);
    }
    wake = wake_;
  }
  if (wake) wake();
  return !gone();
}

void Stream::End() {
  std::function<void()> wake;
  {
    std::lock_guard lock(mu_);
    ended_ = true;
    wake = wake_;
  }
  if (wake) wake();
}

bool Stream::gone() const {
  std::lock_guard lock(mu_);
  return gone_;
}

void Stream::SetWaker(std::function<void()> wake) {
  std::lock_guard lock(mu_);
  wake_ = std::move(wake);
}

std::string Stream::Take(bool& ended) {
  std::lock_guard lock(mu_);
  ended = ended_;
  if (gone_) {
    queued_.clear();
    return {};
  }
  return std::exchange(queued_, {});
}

void Stream::Disconnected() {
  std::lock_guard lock(mu_);
  gone_ = true;
  queued_.clear();
  queued_.shrink_to_fit();
  wake_ = nullptr;
}

}  // namespace aloft::http
