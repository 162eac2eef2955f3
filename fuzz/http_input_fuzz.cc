// libFuzzer target for what aloftd parses from a request line and headers before any handler:
// Range headers (against the file size they apply to), query strings, percent-encoding, and
// route matching. Checks the invariants the download code relies on.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "http/message.h"
#include "http/router.h"
#include "server/download.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 8) return 0;
  uint64_t file_size = 0;
  for (int i = 0; i < 8; ++i) file_size = (file_size << 8) | data[i];
  file_size %= (1ull << 40);
  std::string_view text(reinterpret_cast<const char*>(data + 8), size - 8);

  auto ranges = aloft::server::ParseRange(text, file_size);
  if (ranges) {
    for (const auto& r : *ranges) {
      // Every range handed to sendfile lies inside the file.
      if (r.first > r.last || r.last >= file_size) std::abort();
    }
  }
  auto query = aloft::http::ParseQuery(text);
  for (const auto& [k, v] : query) {
    if (k.size() > text.size() || v.size() > text.size()) std::abort();
  }
  std::string decoded = aloft::http::PercentDecode(text);
  if (decoded.size() > text.size()) std::abort();
  if (aloft::http::PercentDecode(aloft::http::PercentEncode(text)) != text) std::abort();

  static aloft::http::Router router = [] {
    aloft::http::Router r;
    r.Add("GET", "/api/v1/devices/{device}", 1);
    r.Add("POST", "/device/v1/{device}/actions/{id}/feedback", 2);
    r.Add("GET", "/api/v1/releases/{name}/{version}/artifact", 3);
    return r;
  }();
  auto m = router.Match("GET", text);
  if (m.kind == aloft::http::RouteMatch::kFound && m.id != 1 && m.id != 3) std::abort();
  return 0;
}
