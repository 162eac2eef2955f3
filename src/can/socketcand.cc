#include "can/socketcand.h"

#include <cctype>
#include <cstdio>

namespace aloft::can::socketcand {

namespace {

Error Bad(const std::string& what) { return Error(Code::kMalformed, "socketcand: " + what); }

bool ParseHex(std::string_view s, uint64_t max, uint64_t* out) {
  if (s.empty() || s.size() > 16) return false;
  uint64_t v = 0;
  for (char c : s) {
    int d;
    if (c >= '0' && c <= '9') {
      d = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      d = c - 'a' + 10;
    } else if (c >= 'A' && c <= 'F') {
      d = c - 'A' + 10;
    } else {
      return false;
    }
    v = v * 16 + static_cast<uint64_t>(d);
  }
  if (v > max) return false;
  *out = v;
  return true;
}

Result<Frame> IdFrame(const std::string& id_text) {
  uint64_t id = 0;
  if (!ParseHex(id_text, 0x1FFFFFFF, &id)) {
    return Bad("CAN identifier '" + id_text + "' is not hex up to 1FFFFFFF");
  }
  Frame f;
  f.id = static_cast<uint32_t>(id);
  f.extended = id_text.size() == 8 || id > 0x7FF;
  return f;
}

}  // namespace

Result<std::optional<std::string>> TakeElement(std::string& buffer) {
  size_t start = 0;
  while (start < buffer.size() && std::isspace(static_cast<unsigned char>(buffer[start]))) ++start;
  if (start == buffer.size()) {
    buffer.clear();
    return std::optional<std::string>();
  }
  if (buffer[start] != '<') {
    return Bad("expected '<', got '" + buffer.substr(start, 16) + "'");
  }
  const size_t end = buffer.find('>', start);
  if (end == std::string::npos) {
    if (buffer.size() - start > kMaxElement) {
      return Bad("an element longer than " + std::to_string(kMaxElement) + " characters");
    }
    return std::optional<std::string>();
  }
  if (end - start > kMaxElement) {
    return Bad("an element longer than " + std::to_string(kMaxElement) + " characters");
  }
  std::string inner = buffer.substr(start + 1, end - start - 1);
  buffer.erase(0, end + 1);
  const size_t a = inner.find_first_not_of(" \t\r\n");
  const size_t b = inner.find_last_not_of(" \t\r\n");
  return std::optional<std::string>(a == std::string::npos ? "" : inner.substr(a, b - a + 1));
}

Command Split(std::string_view element) {
  Command c;
  size_t i = 0;
  bool first = true;
  while (i < element.size()) {
    while (i < element.size() && std::isspace(static_cast<unsigned char>(element[i]))) ++i;
    size_t j = i;
    while (j < element.size() && !std::isspace(static_cast<unsigned char>(element[j]))) ++j;
    if (j > i) {
      std::string word(element.substr(i, j - i));
      if (first) {
        c.verb = std::move(word);
        first = false;
      } else {
        c.args.push_back(std::move(word));
      }
    }
    i = j;
  }
  return c;
}

Result<Frame> ParseSend(const Command& c) {
  if (c.args.size() < 2) return Bad("'send' needs an identifier and a length");
  ALOFT_ASSIGN_OR_RETURN(Frame f, IdFrame(c.args[0]));
  uint64_t len = 0;
  if (!ParseHex(c.args[1], 8, &len)) {
    return Bad("'send' length '" + c.args[1] + "' is not 0..8");
  }
  if (c.args.size() - 2 != len) {
    return Bad("'send' announces " + std::to_string(len) + " bytes and carries " +
               std::to_string(c.args.size() - 2));
  }
  f.dlc = static_cast<uint8_t>(len);
  for (size_t i = 0; i < len; ++i) {
    uint64_t b = 0;
    if (!ParseHex(c.args[2 + i], 0xFF, &b)) {
      return Bad("'send' byte '" + c.args[2 + i] + "' is not hex 0..FF");
    }
    f.data[i] = static_cast<uint8_t>(b);
  }
  return f;
}

Result<std::pair<Frame, std::chrono::system_clock::time_point>> ParseFrame(const Command& c) {
  if (c.args.size() < 2 || c.args.size() > 3) return Bad("'frame' needs id, time and data");
  ALOFT_ASSIGN_OR_RETURN(Frame f, IdFrame(c.args[0]));
  const std::string& t = c.args[1];
  const size_t dot = t.find('.');
  uint64_t secs = 0, usecs = 0;
  bool ok = true;
  for (size_t i = 0; i < t.size(); ++i) {
    if (i != dot && !std::isdigit(static_cast<unsigned char>(t[i]))) ok = false;
  }
  if (!ok || t.empty() || t.size() > 24) return Bad("'frame' time '" + t + "' is not secs.usecs");
  secs = std::stoull(t.substr(0, dot));
  if (dot != std::string::npos && dot + 1 < t.size()) {
    std::string frac = t.substr(dot + 1, 6);
    frac.resize(6, '0');
    usecs = std::stoull(frac);
  }
  const std::string hex = c.args.size() == 3 ? c.args[2] : "";
  if (hex.size() % 2 || hex.size() > 16) return Bad("'frame' data '" + hex + "' is not 0..8 bytes");
  f.dlc = static_cast<uint8_t>(hex.size() / 2);
  for (size_t i = 0; i < f.dlc; ++i) {
    uint64_t b = 0;
    if (!ParseHex(std::string_view(hex).substr(2 * i, 2), 0xFF, &b)) {
      return Bad("'frame' data '" + hex + "' is not hex");
    }
    f.data[i] = static_cast<uint8_t>(b);
  }
  return std::make_pair(f, std::chrono::system_clock::time_point(std::chrono::seconds(secs) +
                                                                 std::chrono::microseconds(usecs)));
}

std::string FormatSend(const Frame& f) {
  char buf[32];
  std::snprintf(buf, sizeof buf, f.extended ? "< send %08X %X" : "< send %03X %X", f.id,
                f.length());
  std::string s = buf;
  for (uint8_t b : f.payload()) {
    std::snprintf(buf, sizeof buf, " %02X", b);
    s += buf;
  }
  s += " >";
  return s;
}

std::string FormatFrame(const Frame& f, std::chrono::system_clock::time_point at) {
  const int64_t us =
      std::chrono::duration_cast<std::chrono::microseconds>(at.time_since_epoch()).count();
  char buf[64];
  std::snprintf(buf, sizeof buf,
                f.extended ? "< frame %08X %lld.%06lld " : "< frame %03X %lld.%06lld ", f.id,
                static_cast<long long>(us / 1'000'000), static_cast<long long>(us % 1'000'000));
  std::string s = buf;
  for (uint8_t b : f.payload()) {
    std::snprintf(buf, sizeof buf, "%02X", b);
    s += buf;
  }
  s += " >";
  return s;
}

}  // namespace aloft::can::socketcand
