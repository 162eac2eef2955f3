// Applying a delta patch in memory that does not grow with the image: the patch is pushed in
// front to back (Write), the base is read by random access, the target comes out in order.
//
//   delta::FileBase base(old_file);
//   delta::Patcher p(base, out_sink, {});
//   while (...) ALOFT_RETURN_IF_ERROR(p.Write(chunk));
//   ALOFT_RETURN_IF_ERROR(p.Finish());  // only now is the output the target
//
// The patcher checks the base's size and SHA-256 before the first byte comes out (kIntegrity,
// "wrong base"), and the target's at Finish. The output is not the target until Finish succeeded.
#pragma once

#include <array>
#include <memory>
#include <optional>

#include "core/file.h"
#include "core/hash.h"
#include "core/io.h"
#include "core/progress.h"
#include "delta/codec.h"
#include "delta/format.h"

namespace aloft::delta {

// The base image, read by offset.
using Base = RandomAccessSource;
using MemoryBase = MemoryRandomSource;

class FileBase final : public Base {
 public:
  FileBase(File& file, uint64_t size) : file_(file), size_(size) {}
  uint64_t size() const override { return size_; }
  Status ReadAt(uint64_t offset, std::span<uint8_t> out) override {
    return file_.ReadAt(offset, out);
  }

 private:
  File& file_;
  uint64_t size_;
};

// The memory a decoder may use. The defaults suit Linux devices; a microcontroller sets both low
// (a patch made with `aloft diff --window 64K` needs a 64 KiB window).
struct ApplyOptions {
  uint64_t max_window = 8 << 20;  // per stream
  uint64_t max_segment = 4 << 20;
  bool check_base = true;  // hash the whole base against the header before starting
};

class Patcher final : public ByteSink {
 public:
  Patcher(Base& base, ByteSink& out, const ApplyOptions& options = {});
  ~Patcher() override;

  Status Write(ByteSpan patch) override;
  // Requires the whole patch to have been written and the target's size and SHA-256 to match.
  Status Finish();

  // Known once the header has been read.
  const std::optional<Header>& header() const { return header_; }
  uint64_t written() const { return out_pos_; }

 private:
  Status Fail(Error e);
  Status StartPatch();
  Status Consume(ByteSpan& data);
  Status RunSegment();
  Status ReadExact(int stream, std::span<uint8_t> out);
  Result<uint64_t> ReadVarint();
  Status Emit(std::span<const uint8_t> bytes);

  Base& base_;
  ByteSink& out_;
  ApplyOptions options_;
  std::optional<Header> header_;
  std::optional<Error> failed_;
  std::unique_ptr<StreamDecoder> dec_[kStreams];

  enum class State { kHeader, kSegmentHead, kPieces, kDone } state_ = State::kHeader;
  Bytes pending_;  // the header or segment head being gathered, then the segment's pieces
  uint32_t segment_ = 0;
  uint64_t segment_len_ = 0;
  uint64_t piece_len_[kStreams] = {};

  // The op in progress (it may span segments).
  uint64_t add_left_ = 0, extra_left_ = 0;
  int64_t seek_ = 0;
  int carry_ = 0;
  bool in_op_ = false;
  int64_t base_pos_ = 0;
  uint64_t out_pos_ = 0;
  Hasher target_hash_{HashAlgorithm::kSha256};
  Bytes buf_a_, buf_b_;
  // A small look-ahead over the control stream for varints.
  std::array<uint8_t, 256> ctrl_buf_{};
  size_t ctrl_pos_ = 0, ctrl_len_ = 0;
};

// Pulls the whole patch from `patch` through a Patcher; `out` receives the target. Returns the
// target's size once Finish succeeded. `progress`, if given, is told of every patch byte read.
Result<uint64_t> ApplyPatch(Base& base, ByteSource& patch, ByteSink& out,
                            const ApplyOptions& options = {}, Progress* progress = nullptr);

}  // namespace aloft::delta
