#include "core/file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <random>
#include <vector>

namespace aloft {
namespace {}  // namespace

std::string DirName(const std::string& path) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  return dir.empty() ? "." : dir;
}

namespace {

Status SyncDirectory(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoError(dir, errno);
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) return ErrnoError("fsync " + dir, err);
  return OkStatus();
}

std::string RandomSuffix() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char kChars[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::string s(8, 'x');
  for (char& c : s) c = kChars[rng() % (sizeof kChars - 1)];
  return s;
}

}  // namespace

File::~File() {
  if (fd_ >= 0) ::close(fd_);
}

File::File(File&& other) noexcept : fd_(other.fd_), path_(std::move(other.path_)) {
  other.fd_ = -1;
}

File& File::operator=(File&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.fd_;
    path_ = std::move(other.path_);
    other.fd_ = -1;
  }
  return *this;
}

Result<File> File::OpenRead(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError(path, errno);
  struct stat st;
  if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
    ::close(fd);
    return Error(Code::kInvalidArgument, path + ": is a directory");
  }
  return File(fd, path);
}

Result<File> File::CreateExclusive(const std::string& path, mode_t mode) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) return ErrnoError(path, errno);
  // The umask may have narrowed the mode; set exactly what was asked.
  if (::fchmod(fd, mode) != 0) {
    int err = errno;
    ::close(fd);
    ::unlink(path.c_str());
    return ErrnoError("chmod " + path, err);
  }
  return File(fd, path);
}

Result<File> File::OpenReadWrite(const std::string& path, Creation creation, mode_t mode) {
  int flags = O_RDWR | O_CLOEXEC;
  if (creation == Creation::kIfMissing) flags |= O_CREAT;
  if (creation == Creation::kExclusive) flags |= O_CREAT | O_EXCL;
  int fd = ::open(path.c_str(), flags, mode);
  if (fd < 0) return ErrnoError(path, errno);
  return File(fd, path);
}

Status File::ReadAt(uint64_t offset, std::span<uint8_t> out) {
  while (!out.empty()) {
    ssize_t n = ::pread(fd_, out.data(), out.size(), static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError("reading " + path_, errno);
    if (n == 0) {
      return Error(Code::kIo,
                   path_ + ": ends before offset " + std::to_string(offset + out.size()));
    }
    out = out.subspan(static_cast<size_t>(n));
    offset += static_cast<uint64_t>(n);
  }
  return OkStatus();
}

Status File::WriteAt(uint64_t offset, ByteSpan data) {
  while (!data.empty()) {
    ssize_t n = ::pwrite(fd_, data.data(), data.size(), static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError("writing " + path_, errno);
    data = data.subspan(static_cast<size_t>(n));
    offset += static_cast<uint64_t>(n);
  }
  return OkStatus();
}

Result<size_t> File::Read(std::span<uint8_t> buf) {
  while (true) {
    ssize_t n = ::read(fd_, buf.data(), buf.size());
    if (n >= 0) return static_cast<size_t>(n);
    if (errno != EINTR) return ErrnoError("reading " + path_, errno);
  }
}

Status File::Write(ByteSpan data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd_, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("writing " + path_, errno);
    }
    data = data.subspan(static_cast<size_t>(n));
  }
  return OkStatus();
}

Result<uint64_t> File::Size() const {
  struct stat st;
  if (::fstat(fd_, &st) != 0) return ErrnoError("stat " + path_, errno);
  return static_cast<uint64_t>(st.st_size);
}

Status File::SeekTo(uint64_t offset) {
  if (::lseek(fd_, off_t(offset), SEEK_SET) < 0) return ErrnoError("seeking in " + path_, errno);
  return OkStatus();
}

Status File::Sync() {
  if (::fsync(fd_) != 0) return ErrnoError("fsync " + path_, errno);
  return OkStatus();
}

Status File::Close() {
  if (fd_ < 0) return OkStatus();
  int rc = ::close(fd_);
  fd_ = -1;
  if (rc != 0) return ErrnoError("closing " + path_, errno);
  return OkStatus();
}

AtomicFile::~AtomicFile() { Abandon(); }

AtomicFile::AtomicFile(AtomicFile&& other) noexcept
    : target_(std::move(other.target_)),
      file_(std::move(other.file_)),
      committed_(other.committed_) {
  other.committed_ = true;  // nothing left for the moved-from object to clean up
}

AtomicFile& AtomicFile::operator=(AtomicFile&& other) noexcept {
  if (this != &other) {
    Abandon();
    target_ = std::move(other.target_);
    file_ = std::move(other.file_);
    committed_ = other.committed_;
    other.committed_ = true;
  }
  return *this;
}

Result<AtomicFile> AtomicFile::Create(const std::string& target, mode_t mode) {
  std::filesystem::path p(target);
  if (p.filename().empty()) return Error(Code::kInvalidArgument, target + ": not a file name");
  AtomicFile out;
  out.target_ = target;
  for (int attempt = 0;; ++attempt) {
    std::string temp = DirName(target) + "/." + p.filename().string() + ".tmp-" + RandomSuffix();
    auto file = File::CreateExclusive(temp, mode);
    if (file.ok()) {
      out.file_ = std::move(file).value();
      return out;
    }
    if (file.error().code() != Code::kAlreadyExists || attempt > 8) {
      return std::move(file).error().WithContext("creating a temporary file for " + target);
    }
  }
}

Status AtomicFile::Write(ByteSpan data) { return file_.Write(data); }

Status AtomicFile::Commit() {
  if (committed_) return Error(Code::kInternal, target_ + ": committed twice");
  ALOFT_RETURN_IF_ERROR(file_.Sync());
  std::string temp = file_.path();
  ALOFT_RETURN_IF_ERROR(file_.Close());
  if (::rename(temp.c_str(), target_.c_str()) != 0) {
    return ErrnoError("renaming " + temp + " to " + target_, errno);
  }
  committed_ = true;
  return SyncDirectory(DirName(target_));
}

void AtomicFile::Abandon() {
  if (committed_) return;
  std::string temp = file_.path();
  (void)file_.Close();
  if (!temp.empty()) ::unlink(temp.c_str());
  committed_ = true;
}

Result<std::string> ReadFile(const std::string& path, uint64_t max_size) {
  ALOFT_ASSIGN_OR_RETURN(File f, File::OpenRead(path));
  ALOFT_ASSIGN_OR_RETURN(uint64_t size, f.Size());
  if (size > max_size) {
    return Error(Code::kOutOfRange, path + ": " + std::to_string(size) + " bytes, more than the " +
                                        std::to_string(max_size) + " allowed");
  }
  std::string out;
  char buf[65536];
  while (true) {
    ALOFT_ASSIGN_OR_RETURN(size_t n,
                           f.Read(std::span<uint8_t>(reinterpret_cast<uint8_t*>(buf), sizeof buf)));
    if (n == 0) break;
    out.append(buf, n);
    if (out.size() > max_size) {
      return Error(Code::kOutOfRange, path + ": grew beyond the " + std::to_string(max_size) +
                                          " bytes allowed while being read");
    }
  }
  return out;
}

Status WriteFileAtomic(const std::string& path, std::string_view content, mode_t mode) {
  ALOFT_ASSIGN_OR_RETURN(AtomicFile out, AtomicFile::Create(path, mode));
  ALOFT_RETURN_IF_ERROR(out.Write(AsBytes(content)));
  return out.Commit();
}

Status CopyBytes(ByteSource& source, ByteSink& sink, uint64_t size) {
  std::vector<uint8_t> buf(std::min<uint64_t>(size, 1 << 20));
  uint64_t left = size;
  while (left > 0) {
    size_t want = size_t(std::min<uint64_t>(left, buf.size()));
    ALOFT_ASSIGN_OR_RETURN(size_t n, source.Read(std::span<uint8_t>(buf.data(), want)));
    if (n == 0) {
      return Error(Code::kMalformed, "input ended " + std::to_string(left) + " bytes early");
    }
    ALOFT_RETURN_IF_ERROR(sink.Write(ByteSpan(buf.data(), n)));
    left -= n;
  }
  return OkStatus();
}

}  // namespace aloft
