#include "server/artifacts.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "core/file.h"
#include "core/hash.h"

namespace aloft::server {
namespace {

Status FsyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return ErrnoError(dir, errno);
  ::fsync(fd);
  ::close(fd);
  return OkStatus();
}

}  // namespace

Status ArtifactStore::Init() {
  for (const std::string& d : {dir_, incoming_dir()}) {
    if (::mkdir(d.c_str(), 0755) != 0 && errno != EEXIST) return ErrnoError("creating " + d, errno);
  }
  return OkStatus();
}

std::string ArtifactStore::RelativePath(const std::string& sha256) {
  return sha256.substr(0, 2) + "/" + sha256;
}

std::string ArtifactStore::PathOf(const std::string& sha256) const {
  return dir_ + "/" + RelativePath(sha256);
}

Result<Artifact> ArtifactStore::Digest(const std::string& path) {
  ALOFT_ASSIGN_OR_RETURN(File f, File::OpenRead(path));
  Hasher sha256(HashAlgorithm::kSha256), sha1(HashAlgorithm::kSha1), md5(HashAlgorithm::kMd5);
  std::vector<uint8_t> buf(1 << 20);
  uint64_t total = 0;
  for (;;) {
    ALOFT_ASSIGN_OR_RETURN(size_t n, f.Read(buf));
    if (n == 0) break;
    ByteSpan chunk(buf.data(), n);
    sha256.Update(chunk);
    sha1.Update(chunk);
    md5.Update(chunk);
    total += n;
  }
  return Artifact{sha256.FinishHex(), sha1.FinishHex(), md5.FinishHex(), total};
}

Status ArtifactStore::Adopt(const std::string& path, const Artifact& a) {
  std::string sub = dir_ + "/" + a.sha256.substr(0, 2);
  if (::mkdir(sub.c_str(), 0755) != 0 && errno != EEXIST) return ErrnoError(sub, errno);
  std::string target = PathOf(a.sha256);
  struct stat st {};
  if (::stat(target.c_str(), &st) == 0 && static_cast<uint64_t>(st.st_size) == a.size) {
    ::unlink(path.c_str());
    return OkStatus();
  }
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return ErrnoError(path, errno);
  ::fsync(fd);
  ::fchmod(fd, 0644);
  ::close(fd);
  if (::rename(path.c_str(), target.c_str()) != 0) return ErrnoError(target, errno);
  return FsyncDir(sub);
}

void ArtifactStore::Remove(const std::string& sha256) { ::unlink(PathOf(sha256).c_str()); }

}  // namespace aloft::server
