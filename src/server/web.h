// The dashboard's files (docs/dashboard.md), served by aloftd at / from the directory its build
// wrote (web/dist, installed as share/aloft/web): read once at start into memory (a few hundred
// KiB), each with its ETag. Paths outside /assets/ that are no file are the single-page
// application's own (/devices/abc): they get index.html, which the browser's router then reads.
// Every answer carries the headers that keep pages of this origin to its own scripts (a Content
// Security Policy without inline scripts), out of frames, and their types unsniffed.
#pragma once

#include <map>
#include <string>

#include "core/error.h"
#include "http/message.h"

namespace aloft::server {

class WebAssets {
 public:
  // Every regular file under `dir` (at most 64 MiB in all). kNotFound without an index.html.
  static Result<WebAssets> Load(const std::string& dir);
  // Where the dashboard is when web_dir is not set: share/aloft/web beside the running aloftd's
  // bin directory, else (a build tree) the source tree's web/dist; "" when neither holds one.
  static std::string DefaultDir();

  // The answer to a GET or HEAD of `req.path`.
  http::Response Serve(const http::Request& req) const;
  size_t files() const { return files_.size(); }

 private:
  struct Asset {
    std::string body, type, etag;
    bool immutable = false;  // a name with a content hash: cached for a year
  };
  std::map<std::string, Asset> files_;
};

// The answer to GET / when the dashboard was not built or found.
http::Response NoDashboard();

}  // namespace aloft::server
