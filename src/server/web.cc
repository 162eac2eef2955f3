#include "server/web.h"

#include <unistd.h>

#include <filesystem>
#include <system_error>

#include "core/file.h"
#include "core/hash.h"

namespace aloft::server {

namespace {

constexpr uint64_t kMaxTotal = 64ull << 20;

std::string TypeOf(const std::string& path) {
  static const std::pair<const char*, const char*> kTypes[] = {
      {".html", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".json", "application/json"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".ico", "image/x-icon"},
      {".woff2", "font/woff2"},
      {".txt", "text/plain; charset=utf-8"},
      {".map", "application/json"}};
  for (auto [ext, type] : kTypes) {
    if (path.ends_with(ext)) return type;
  }
  return "application/octet-stream";
}

void SetSecurityHeaders(http::Response& r) {
  r.headers.Set("Content-Security-Policy",
                "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
                "form-action 'self'; frame-ancestors 'none'");
  r.headers.Set("X-Content-Type-Options", "nosniff");
  r.headers.Set("X-Frame-Options", "DENY");
  r.headers.Set("Referrer-Policy", "same-origin");
}

}  // namespace

Result<WebAssets> WebAssets::Load(const std::string& dir) {
  namespace fs = std::filesystem;
  WebAssets out;
  std::error_code ec;
  uint64_t total = 0;
  fs::recursive_directory_iterator it(dir, ec), end;
  if (ec) return Error(Code::kNotFound, "dashboard directory " + dir + ": " + ec.message());
  for (; it != end; it.increment(ec)) {
    if (ec) return Error(Code::kIo, "reading dashboard directory " + dir + ": " + ec.message());
    if (!it->is_regular_file(ec)) continue;
    // (operator+ on a one-character literal trips GCC 12's -Wrestrict: append instead)
    std::string rel = "/";
    rel.append(fs::relative(it->path(), dir, ec).generic_string());
    ALOFT_ASSIGN_OR_RETURN(std::string body, ReadFile(it->path().string(), kMaxTotal));
    total += body.size();
    if (total > kMaxTotal) {
      return Error(Code::kOutOfRange, "dashboard directory " + dir + " holds more than 64 MiB");
    }
    Asset a;
    a.type = TypeOf(rel);
    a.etag = "\"";
    a.etag.append(Sha256Hex(AsBytes(body)).substr(0, 32)).append("\"");
    a.immutable = rel.starts_with("/assets/");  // the bundler names them by content
    a.body = std::move(body);
    out.files_[rel] = std::move(a);
  }
  if (!out.files_.count("/index.html")) {
    return Error(Code::kNotFound, "dashboard directory " + dir + " has no index.html");
  }
  return out;
}

std::string WebAssets::DefaultDir() {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const fs::path installed = exe.parent_path().parent_path() / "share/aloft/web";
    if (fs::exists(installed / "index.html", ec)) return installed.string();
  }
#ifdef ALOFT_WEB_DIST
  if (fs::exists(fs::path(ALOFT_WEB_DIST) / "index.html", ec)) return ALOFT_WEB_DIST;
#endif
  return "";
}

http::Response WebAssets::Serve(const http::Request& req) const {
  auto it = files_.find(req.path == "/" ? "/index.html" : req.path);
  if (it == files_.end()) {
    // A file of the build that is not there is 404; any other path is a page of the application
    // (/releases/fw/1.2.0 too, whose last part looks like a file name).
    if (req.path.starts_with("/assets/")) {
      http::Response r = http::Response::Error(404, "not-found", "no file " + req.path);
      SetSecurityHeaders(r);
      return r;
    }
    it = files_.find("/index.html");
  }
  const Asset& a = it->second;
  http::Response r;
  SetSecurityHeaders(r);
  r.headers.Set("ETag", a.etag);
  r.headers.Set("Cache-Control", a.immutable ? "public, max-age=31536000, immutable" : "no-cache");
  if (req.headers.Get("If-None-Match") == a.etag) {
    r.status = 304;
    return r;
  }
  r.status = 200;
  r.headers.Set("Content-Type", a.type);
  r.body = a.body;
  return r;
}

http::Response NoDashboard() {
  http::Response r = http::Response::Text(
      404,
      "aloftd: the dashboard is not installed here. Build it with scripts/web.sh (it writes "
      "web/dist), or set web_dir in the server's configuration (docs/dashboard.md). The API is "
      "under /api/v1/.\n");
  SetSecurityHeaders(r);
  return r;
}

}  // namespace aloft::server
