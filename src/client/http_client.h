// A small blocking HTTP client over libcurl (loaded on first use: client/curl_api.h), for the CLI's
// management commands and for tests that talk to a real server over loopback. (The device agent
// gets its own seam with resume logic.)
//
//   HttpRequest req{.method = "POST", .url = base + "/api/v1/devices", .body = json};
//   req.headers.push_back("Authorization: Bearer " + token);
//   ALOFT_ASSIGN_OR_RETURN(HttpResponse res, Send(req));
//
// Transport failures (refused, reset, timeout, TLS) are errors (kUnavailable naming the URL);
// any HTTP status, 4xx and 5xx included, is a successful HttpResponse.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "core/progress.h"

namespace aloft::client {

// A client's TLS files (docs/identity.md): the CA that signed the server's certificate, and the
// client's own certificate and key, which identify a device instead of a token.
struct TlsFiles {
  std::string ca_file{};
  std::string cert_file{}, key_file{};
};

struct HttpRequest {
  std::string method = "GET";
  std::string url;
  std::vector<std::string> headers{};  // "Name: value"
  std::string body{};
  std::string upload_file{};            // when set, the body is streamed from this file
  std::string ca_file{};                // trust this CA for https (tests with a self-signed server)
  std::string cert_file{}, key_file{};  // a TLS client certificate and its key (PEM)
  Progress* progress = nullptr;         // told of upload bytes
  long timeout_s = 0;                   // 0: none
  uint64_t max_body = 0;                // a longer answer is cut off with kOutOfRange; 0: no limit
};

struct HttpResponse {
  long status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased; last value wins
  std::string body;
};

Result<HttpResponse> Send(const HttpRequest& request);

// `request` with `tls`'s files.
inline void UseTls(HttpRequest& request, const TlsFiles& tls) {
  request.ca_file = tls.ca_file;
  request.cert_file = tls.cert_file;
  request.key_file = tls.key_file;
}
// "Authorization: Bearer TOKEN", or nothing without a token (a device with a certificate).
inline std::vector<std::string> BearerHeaders(const std::string& token) {
  if (token.empty()) return {};
  return {"Authorization: Bearer " + token};
}

// Splits a header line "Name: value\r\n" into a lower-cased name and a trimmed value; false for
// a line without a colon (the status line, the blank line).
bool ParseHeaderLine(std::string_view line, std::string& name, std::string& value);

// The "message" of a JSON error body, or the body itself.
std::string ErrorMessage(const HttpResponse& res);

}  // namespace aloft::client
