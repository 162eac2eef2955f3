// POSIX tar (ustar, with pax extended headers) as the container of an .aloft package.
//
// The writer emits only what a package needs: regular files, in order, each a 512-byte ustar header
// (preceded by a pax 'x' header when the name exceeds 100 bytes or the size exceeds 8 GiB - 1), its
// data padded with zeros to 512 bytes, and two zero blocks at the end.
//
// The reader is strict, because a package is hostile input until verified: header checksums must
// match, padding and the end-of-archive blocks must be zero, only regular files and pax headers may
// appear, names may not be absolute or climb with "..", and the archive must end with the two zero
// blocks (a missing end means a truncated download). Errors name the entry and its byte offset.
// See docs/package-format.md.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/io.h"

namespace aloft::pkg {

inline constexpr size_t kTarBlock = 512;
inline constexpr uint64_t kUstarMaxSize = 077777777777;  // 11 octal digits: 8 GiB - 1
inline constexpr size_t kUstarMaxName = 100;
inline constexpr size_t kMaxPaxHeader = 64 * 1024;

class TarWriter final : public ByteSink {
 public:
  // `mtime` (seconds since the epoch) is written into every header, for reproducible archives.
  TarWriter(ByteSink& sink, uint64_t mtime) : sink_(sink), mtime_(mtime) {}

  // Starts a regular-file entry of exactly `size` bytes.
  Status BeginEntry(std::string_view name, uint64_t size);
  // Data of the open entry; kInternal beyond the announced size.
  Status Write(ByteSpan data) override;
  // kInternal if fewer bytes than announced were written.
  Status EndEntry();
  // The two zero blocks. No entry may be open.
  Status Finish();

  uint64_t bytes_written() const { return offset_; }

 private:
  Status WriteRaw(ByteSpan data);
  ByteSink& sink_;
  uint64_t mtime_;
  uint64_t offset_ = 0;
  std::optional<std::string> open_name_;
  uint64_t left_ = 0, entry_size_ = 0;
};

struct TarEntry {
  std::string name;
  uint64_t size = 0;
  uint64_t header_offset = 0;  // offset of the entry's (first) header in the archive
  uint64_t data_offset = 0;
};

class TarReader {
 public:
  explicit TarReader(ByteSource& source) : source_(source) {}

  // The next entry (the unread rest of the current one is skipped and its padding checked), or
  // nullopt at a well-formed end of archive.
  Result<std::optional<TarEntry>> Next();
  // Reads the current entry's data; 0 at the end of the entry.
  Result<size_t> Read(std::span<uint8_t> buf);

  uint64_t offset() const { return offset_; }

 private:
  Status ReadExact(std::span<uint8_t> buf, std::string_view what);
  Status FinishEntry();
  Status CheckEnd();

  ByteSource& source_;
  uint64_t offset_ = 0;
  std::optional<TarEntry> current_;
  uint64_t left_ = 0;
  bool ended_ = false;
};

// "'name'", with control characters shown as '?': entry names in messages.
std::string QuoteName(std::string_view name);

// True for names a package may hold: not empty, not absolute, no "." or ".." component, no NUL.
bool IsSafeEntryName(std::string_view name);

}  // namespace aloft::pkg
