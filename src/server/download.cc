#include "server/download.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <random>

#include "core/hash.h"

namespace aloft::server {
namespace {

constexpr size_t kMaxRanges = 16;

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool ParseU64(std::string_view s, uint64_t& out) {
  if (s.empty() || s.size() > 19) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

}  // namespace

std::optional<std::vector<ByteRange>> ParseRange(std::string_view header, uint64_t size) {
  header = Trim(header);
  if (!header.starts_with("bytes=")) return std::nullopt;
  header.remove_prefix(6);
  std::vector<ByteRange> out;
  size_t count = 0;
  while (!header.empty()) {
    size_t comma = header.find(',');
    std::string_view spec = Trim(header.substr(0, comma));
    header = comma == std::string_view::npos ? std::string_view() : header.substr(comma + 1);
    if (spec.empty()) continue;
    if (++count > kMaxRanges) return std::nullopt;
    size_t dash = spec.find('-');
    if (dash == std::string_view::npos) return std::nullopt;
    std::string_view a = Trim(spec.substr(0, dash)), b = Trim(spec.substr(dash + 1));
    uint64_t first = 0, last = 0;
    if (a.empty()) {  // suffix: the last N bytes
      if (!ParseU64(b, last) || last == 0) {
        if (b == "0") continue;  // "-0" is unsatisfiable
        return std::nullopt;
      }
      if (size == 0) continue;
      out.push_back({size > last ? size - last : 0, size - 1});
      continue;
    }
    if (!ParseU64(a, first)) return std::nullopt;
    if (b.empty()) {
      last = size ? size - 1 : 0;
    } else if (!ParseU64(b, last) || last < first) {
      return std::nullopt;
    }
    if (first >= size) continue;  // unsatisfiable
    out.push_back({first, std::min(last, size - 1)});
  }
  if (count == 0) return std::nullopt;
  // Overlapping and adjacent ranges become one, in ascending order (RFC 9110 14.2 allows it):
  // "bytes=0-,0-,..." would otherwise send the file once per range.
  std::sort(out.begin(), out.end(),
            [](const ByteRange& x, const ByteRange& y) { return x.first < y.first; });
  std::vector<ByteRange> merged;
  for (const auto& r : out) {
    if (!merged.empty() && r.first <= merged.back().last + 1) {
      merged.back().last = std::max(merged.back().last, r.last);
    } else {
      merged.push_back(r);
    }
  }
  return merged;
}

Result<std::shared_ptr<http::SharedFd>> OpenFiles::Open(const std::string& path) {
  std::lock_guard lock(mu_);
  auto it = files_.find(path);
  if (it != files_.end()) {
    if (auto fd = it->second.lock()) return fd;
  }
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 && (errno == EMFILE || errno == ENFILE)) {
    return Error(Code::kUnavailable, path + ": too many open files");
  }
  if (fd < 0) return ErrnoError(path, errno);
  auto shared = std::make_shared<http::SharedFd>(fd);
  if (files_.size() > 1024) std::erase_if(files_, [](const auto& e) { return e.second.expired(); });
  files_[path] = shared;
  return shared;
}

http::Response ServeArtifact(const std::string& path, uint64_t size, const std::string& sha256,
                             const std::string& filename, const http::Request& req,
                             Metrics& metrics, OpenFiles& files) {
  const std::string etag = "\"" + sha256 + "\"";
  http::Response res;
  res.headers.Set("ETag", etag);
  res.headers.Set("Accept-Ranges", "bytes");
  if (req.headers.Get("If-None-Match") == etag || req.headers.Get("If-None-Match") == "*") {
    res.status = 304;
    return res;
  }
  auto fd = files.Open(path);
  if (!fd.ok()) {
    if (fd.error().code() == Code::kUnavailable) {
      http::Response busy = http::Response::Error(
          503, "unavailable", "the server has too many open files right now; retry later");
      busy.headers.Set("Retry-After", "5");
      return busy;
    }
    return http::Response::Error(
        500, "internal", "artifact " + sha256 + " cannot be opened: " + fd.error().message());
  }
  auto body = std::make_shared<http::FileBody>();
  body->file = std::move(fd).value();
  body->bytes_sent = &metrics.download_bytes;
  body->active = &metrics.active_downloads;
  metrics.active_downloads.fetch_add(1);

  std::optional<std::vector<ByteRange>> ranges;
  if (req.headers.Has("Range")) {
    std::string_view if_range = req.headers.Get("If-Range");
    // If-Range with another validator (or a date) means "the whole thing, it changed".
    if (if_range.empty() || if_range == etag) ranges = ParseRange(req.headers.Get("Range"), size);
  }
  if (ranges && ranges->empty()) {
    res = http::Response::Error(416, "range-not-satisfiable",
                                "no range of '" + std::string(req.headers.Get("Range")) +
                                    "' lies within the " + std::to_string(size) +
                                    " bytes of the artifact");
    res.headers.Set("Content-Range", "bytes */" + std::to_string(size));
    return res;
  }
  if (!filename.empty()) {
    res.headers.Set("Content-Disposition", "attachment; filename=\"" + filename + "\"");
  }
  if (!ranges) {
    res.status = 200;
    res.headers.Set("Content-Type", "application/octet-stream");
    body->parts.push_back({"", 0, size, true});
  } else if (ranges->size() == 1) {
    const auto& r = (*ranges)[0];
    res.status = 206;
    res.headers.Set("Content-Type", "application/octet-stream");
    res.headers.Set("Content-Range", "bytes " + std::to_string(r.first) + "-" +
                                         std::to_string(r.last) + "/" + std::to_string(size));
    body->parts.push_back({"", r.first, r.last - r.first + 1, true});
  } else {
    thread_local std::mt19937_64 rng(std::random_device{}());
    std::string boundary = "aloft-" + std::to_string(rng());
    res.status = 206;
    res.headers.Set("Content-Type", "multipart/byteranges; boundary=" + boundary);
    for (const auto& r : *ranges) {
      body->parts.push_back({"\r\n--" + boundary +
                                 "\r\nContent-Type: application/octet-stream\r\nContent-Range: "
                                 "bytes " +
                                 std::to_string(r.first) + "-" + std::to_string(r.last) + "/" +
                                 std::to_string(size) + "\r\n\r\n",
                             0, 0, false});
      body->parts.push_back({"", r.first, r.last - r.first + 1, true});
    }
    body->parts.push_back({"\r\n--" + boundary + "--\r\n", 0, 0, false});
  }
  res.file = std::move(body);
  return res;
}

std::string SecureLinkMd5(int64_t expires, const std::string& uri, const std::string& secret) {
  Hasher md5(HashAlgorithm::kMd5);
  std::string text = std::to_string(expires) + uri + " " + secret;
  md5.Update(AsBytes(text));
  std::string b64 = Base64Encode(md5.Finish());
  std::string out;
  for (char c : b64) {
    if (c == '+')
      out += '-';
    else if (c == '/')
      out += '_';
    else if (c != '=')
      out += c;
  }
  return out;
}

}  // namespace aloft::server
