// Where a downloaded package waits between download and install: a file in the agent's state
// directory, or a flash region (the backup layout's download region). The downloader appends;
// what is durable (fsync'ed, or programmed) is what the journal may record as downloaded.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "boot/layout.h"
#include "core/file.h"
#include "core/io.h"
#include "flash/flash.h"

namespace aloft::agent {

class Staging {
 public:
  virtual ~Staging() = default;
  virtual uint64_t capacity() const = 0;
  // Continues after `durable` bytes known good (from the journal; 0 starts over). Returns the
  // offset writing continues at, which may be lower (a flash region restarts at its erase block).
  virtual Result<uint64_t> Resume(uint64_t durable) = 0;
  virtual Status Append(ByteSpan data) = 0;
  // Makes every appended byte durable (the end of the download).
  virtual Status Finish() = 0;
  // Bytes appended so far.
  virtual uint64_t size() const = 0;
  // Makes what was appended durable where cheap (file: fsync) and returns how many bytes are
  // durable (a flash region: its whole programmed erase blocks).
  virtual Result<uint64_t> Checkpoint() = 0;
  // Reads the staged bytes from the start.
  virtual std::unique_ptr<ByteSource> Open(uint64_t size) = 0;
  virtual std::string Describe() const = 0;
  // Forgets the staged package (after the report).
  virtual Status Clear() = 0;
};

// <dir>/download.part; capacity is what the file system has free.
Result<std::unique_ptr<Staging>> MakeFileStaging(const std::string& path);
std::unique_ptr<Staging> MakeFlashStaging(flash::Flash& flash, const boot::Region& region);

}  // namespace aloft::agent
