// Serving an artifact file: ETag (its SHA-256), If-None-Match, Range (one range, or several as
// multipart/byteranges), If-Range, 200 / 206 / 304 / 416, bytes sent straight from the file.
// docs/device-api.md describes the behaviour.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/error.h"
#include "http/message.h"
#include "server/metrics.h"

namespace aloft::server {

struct ByteRange {
  uint64_t first = 0, last = 0;  // inclusive
};

// Parses a Range header against a file of `size` bytes (RFC 9110 section 14.2).
// nullopt: no usable Range header (absent, not "bytes", syntactically invalid, or too many
// ranges) -> serve the whole file. An empty vector: syntactically valid but none satisfiable ->
// 416. Overlapping and adjacent ranges are merged; the result is in ascending order.
std::optional<std::vector<ByteRange>> ParseRange(std::string_view header, uint64_t size);

// Open artifact files, one descriptor per artifact however many downloads use it. Thread-safe.
class OpenFiles {
 public:
  // The shared descriptor of `path`; an errno-style error when it cannot be opened.
  Result<std::shared_ptr<http::SharedFd>> Open(const std::string& path);

 private:
  std::mutex mu_;
  std::unordered_map<std::string, std::weak_ptr<http::SharedFd>> files_;
};

// Builds the response for `path` (which holds exactly `size` bytes with SHA-256 `sha256`).
// A file that cannot be opened for lack of descriptors gives 503 with Retry-After.
http::Response ServeArtifact(const std::string& path, uint64_t size, const std::string& sha256,
                             const std::string& filename, const http::Request& req,
                             Metrics& metrics, OpenFiles& files);

// nginx secure_link: md5 = base64url(MD5(expires + uri + " " + secret)) without padding.
std::string SecureLinkMd5(int64_t expires, const std::string& uri, const std::string& secret);

}  // namespace aloft::server
