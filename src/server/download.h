// Serving an artifact file: ETag (its SHA-256), If-None-Match, Range (one range, or several as
// multipart/byteranges), If-Range, 200 / 206 / 304 / 416, bytes sent straight from the file.
// docs/device-api.md describes the behaviour.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "http/message.h"
#include "server/metrics.h"

namespace aloft::server {

struct ByteRange {
  uint64_t first = 0, last = 0;  // inclusive
};

// Parses a Range header against a file of `size` bytes (RFC 9110 section 14.2).
// nullopt: no usable Range header (absent, not "bytes", syntactically invalid, or too many
// ranges) -> serve the whole file. An empty vector: syntactically valid but none satisfiable ->
// 416.
std::optional<std::vector<ByteRange>> ParseRange(std::string_view header, uint64_t size);

// Builds the response for `path` (which holds exactly `size` bytes with SHA-256 `sha256`).
http::Response ServeArtifact(const std::string& path, uint64_t size, const std::string& sha256,
                             const std::string& filename, const http::Request& req,
                             Metrics& metrics);

// nginx secure_link: md5 = base64url(MD5(expires + uri + " " + secret)) without padding.
std::string SecureLinkMd5(int64_t expires, const std::string& uri, const std::string& secret);

}  // namespace aloft::server
