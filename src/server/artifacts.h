// Artifacts on disk, content-addressed: <dir>/<first two hex digits>/<sha256>. A file appears
// there complete (fsync, rename, directory fsync) or not at all.
#pragma once

#include <string>

#include "core/error.h"
#include "server/store.h"

namespace aloft::server {

class ArtifactStore {
 public:
  explicit ArtifactStore(std::string dir) : dir_(std::move(dir)) {}

  // Creates the directory and its ".incoming" subdirectory for uploads in progress.
  Status Init();
  std::string incoming_dir() const { return dir_ + "/.incoming"; }
  // SHA-256, SHA-1, MD5 and size of a file, in one streaming pass.
  static Result<Artifact> Digest(const std::string& path);
  // Moves `path` (on the same file system) to its content address; when that exists already the
  // bytes are the same and `path` is removed.
  Status Adopt(const std::string& path, const Artifact& a);
  void Remove(const std::string& sha256);
  std::string PathOf(const std::string& sha256) const;
  // "ab/abcdef..."
  static std::string RelativePath(const std::string& sha256);
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
};

}  // namespace aloft::server
