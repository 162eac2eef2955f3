// Byte streams: the seams through which packages, payloads and images flow without being held in
// memory. A reader pulls from a ByteSource; a writer pushes into a ByteSink.
#pragma once

#include <cstdint>
#include <span>

#include "core/encoding.h"
#include "core/error.h"

namespace aloft {

class ByteSource {
 public:
  virtual ~ByteSource() = default;
  // Reads up to buf.size() bytes; returns how many (0 only at the end of the stream).
  virtual Result<size_t> Read(std::span<uint8_t> buf) = 0;
};

class ByteSink {
 public:
  virtual ~ByteSink() = default;
  // Writes all of `data` or fails.
  virtual Status Write(ByteSpan data) = 0;
};

// Bytes read by offset: an image in memory, a file, an image rebuilt from a delta as it is read.
class RandomAccessSource {
 public:
  virtual ~RandomAccessSource() = default;
  virtual uint64_t size() const = 0;
  // Fills `out` from `offset`; kOutOfRange past the end.
  virtual Status ReadAt(uint64_t offset, std::span<uint8_t> out) = 0;
};

// Over bytes owned by someone else.
class MemoryRandomSource final : public RandomAccessSource {
 public:
  explicit MemoryRandomSource(ByteSpan data) : data_(data) {}
  uint64_t size() const override { return data_.size(); }
  Status ReadAt(uint64_t offset, std::span<uint8_t> out) override;

 private:
  ByteSpan data_;
};

// A source over bytes owned by someone else (tests, fuzzing).
class MemorySource final : public ByteSource {
 public:
  explicit MemorySource(ByteSpan data) : data_(data) {}
  Result<size_t> Read(std::span<uint8_t> buf) override;

 private:
  ByteSpan data_;
  size_t pos_ = 0;
};

// A sink that appends to a vector it owns.
class MemorySink final : public ByteSink {
 public:
  Status Write(ByteSpan data) override {
    bytes_.insert(bytes_.end(), data.begin(), data.end());
    return OkStatus();
  }
  const Bytes& bytes() const { return bytes_; }
  Bytes Take() { return std::move(bytes_); }

 private:
  Bytes bytes_;
};

}  // namespace aloft
