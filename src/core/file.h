// Files on the local file system: a RAII descriptor that is a ByteSource and a ByteSink, whole-file
// helpers, and AtomicFile, which makes a file appear complete or not at all.
//
// AtomicFile writes a temporary file beside the target, and Commit() does fsync(file), rename over
// the target, fsync(directory): after a crash the target is either the old file or the new one,
// never a mix. Abandoning an AtomicFile (destructor without Commit) removes the temporary file.
//
//   ALOFT_ASSIGN_OR_RETURN(AtomicFile out, AtomicFile::Create("fw.aloft", 0644));
//   ALOFT_RETURN_IF_ERROR(out.Write(bytes));
//   ALOFT_RETURN_IF_ERROR(out.Commit());
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "core/io.h"

namespace aloft {

class File final : public ByteSource, public ByteSink {
 public:
  File() = default;
  File(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~File() override;
  File(File&& other) noexcept;
  File& operator=(File&& other) noexcept;

  // Errors name the path: "keys/release.key: No such file or directory".
  static Result<File> OpenRead(const std::string& path);
  // O_CREAT|O_EXCL: fails with kAlreadyExists rather than overwrite.
  static Result<File> CreateExclusive(const std::string& path, mode_t mode);
  enum class Creation { kMustExist, kIfMissing, kExclusive };
  // For reading and writing; `mode` applies to a file this call creates (umask permitting).
  static Result<File> OpenReadWrite(const std::string& path, Creation creation, mode_t mode = 0644);

  Result<size_t> Read(std::span<uint8_t> buf) override;
  Status Write(ByteSpan data) override;
  Result<uint64_t> Size() const;
  // Positional, leaving the read/write position alone: all of `out` from `offset` (kIo when the
  // file ends first), all of `data` at `offset`.
  Status ReadAt(uint64_t offset, std::span<uint8_t> out);
  Status WriteAt(uint64_t offset, ByteSpan data);
  // Moves the read/write position to `offset` from the start.
  Status SeekTo(uint64_t offset);
  Status Sync();
  Status Close();

  int fd() const { return fd_; }
  const std::string& path() const { return path_; }

 private:
  int fd_ = -1;
  std::string path_;
};

class AtomicFile final : public ByteSink {
 public:
  AtomicFile() = default;
  ~AtomicFile() override;
  AtomicFile(AtomicFile&& other) noexcept;
  AtomicFile& operator=(AtomicFile&& other) noexcept;

  // Creates "<dir>/.<name>.tmp-XXXXXX" with `mode` (umask does not apply, so 0600 stays 0600).
  static Result<AtomicFile> Create(const std::string& target, mode_t mode);

  Status Write(ByteSpan data) override;
  // fsync, rename over the target, fsync of the directory. After success the object is spent.
  Status Commit();
  // Removes the temporary file. Safe to call twice.
  void Abandon();

  const std::string& target() const { return target_; }
  const std::string& temp_path() const { return file_.path(); }
  File& file() { return file_; }

 private:
  std::string target_;
  File file_;
  bool committed_ = false;
};

// The directory part of `path`, "." when there is none.
std::string DirName(const std::string& path);

// Reads a whole file; kOutOfRange if it is larger than `max_size`.
Result<std::string> ReadFile(const std::string& path, uint64_t max_size = 64 << 20);

// Writes `content` to `path` through AtomicFile.
Status WriteFileAtomic(const std::string& path, std::string_view content, mode_t mode = 0644);

// Copies exactly `size` bytes from `source` to `sink` through a fixed buffer; kMalformed if the
// source ends early.
Status CopyBytes(ByteSource& source, ByteSink& sink, uint64_t size);

}  // namespace aloft
