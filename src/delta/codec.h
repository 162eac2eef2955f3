// The stream codecs of a delta patch: one compressed stream per patch stream, flushed at every
// segment boundary so that each piece decodes on its own (given the pieces before it).
#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/encoding.h"
#include "core/error.h"
#include "delta/format.h"

namespace aloft::delta {

struct EncodedStream {
  StreamInfo info;
  Bytes data;
  std::vector<size_t> piece_ends;  // one per cut: where each piece ends in `data`
};

// Compresses `data` with `codec`, flushing at each offset of `cuts` (increasing; the last is
// data.size()). `window` caps the window / dictionary; it shrinks to the data.
Result<EncodedStream> EncodeStream(Codec codec, ByteSpan data, std::span<const size_t> cuts,
                                   uint64_t window);

// The smallest of stored, zstd and LZMA2 for `data`.
Result<EncodedStream> EncodeSmallest(ByteSpan data, std::span<const size_t> cuts, uint64_t window);

// Decodes one stream piece by piece, pulled in small reads.
class StreamDecoder {
 public:
  // kOutOfRange when the stream's window is over `max_window`.
  static Result<std::unique_ptr<StreamDecoder>> Make(const StreamInfo& info, uint64_t max_window,
                                                     std::string name);
  virtual ~StreamDecoder() = default;

  // The next piece; it must stay valid until consumed.
  void Feed(ByteSpan piece) {
    in_ = piece;
    in_pos_ = 0;
  }
  bool input_consumed() const { return in_pos_ == in_.size(); }
  // Decodes into `out`; returns how many bytes, fewer only when the piece is used up.
  virtual Result<size_t> Read(std::span<uint8_t> out) = 0;
  // After the last piece: the compressed stream must have ended.
  virtual Status CheckEnd() = 0;

 protected:
  explicit StreamDecoder(std::string name) : name_(std::move(name)) {}
  std::string name_;
  ByteSpan in_;
  size_t in_pos_ = 0;
};

}  // namespace aloft::delta
