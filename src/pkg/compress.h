// Streaming payload codecs: zstd (the default), lzma (the .xz container) or none.
//
// A codec is pushed input with Write() and pushes its output into the ByteSink it was made with,
// through a fixed buffer: memory does not grow with the stream. Finish() flushes (compressors) or
// checks the stream was complete (decompressors).
//
//   ALOFT_ASSIGN_OR_RETURN(auto dec, MakeDecompressor(Compression::kZstd, image_sink));
//   while (...) ALOFT_RETURN_IF_ERROR(dec->Write(chunk));
//   ALOFT_RETURN_IF_ERROR(dec->Finish());
#pragma once

#include <memory>
#include <optional>
#include <string_view>

#include "core/io.h"

namespace aloft::pkg {

enum class Compression { kNone, kZstd, kLzma };

std::string_view CompressionName(Compression c);  // "none" | "zstd" | "lzma"
Result<Compression> ParseCompression(std::string_view name);
// The payload file extension: ".zst", ".xz", ".bin".
std::string_view FileExtension(Compression c);
// What a level means for each codec, when none is given.
int DefaultLevel(Compression c);

// The compression window (zstd) or dictionary (lzma) is the history a decoder keeps in memory:
// the main cost of decoding. Packers may choose it (a power of two in this range); decoders refuse
// a stream whose window exceeds their limit instead of allocating it.
inline constexpr uint64_t kMinWindow = 4 << 10;    // lzma's smallest dictionary
inline constexpr uint64_t kMaxWindow = 128 << 20;  // zstd's own default decoder limit
// The default decoder limit. lzma may also use up to kLzmaOverhead on top of its dictionary.
inline constexpr uint64_t kDefaultMaxWindow = kMaxWindow;
inline constexpr uint64_t kLzmaOverhead = 128 << 10;  // liblzma: dictionary + ~65 KiB
// lzma's dictionary when no window is given, whatever the level: the encoder needs about 11
// times its dictionary (preset 6's 8 MiB took `aloft pack` to 99 MiB; 4 MiB keeps it near 50).
inline constexpr uint64_t kLzmaDefaultMaxDict = 4 << 20;

// "1M", "512K", "1MiB", "4096": a power of two within kMinWindow..kMaxWindow.
Result<uint64_t> ParseWindow(std::string_view text);

class StreamCodec {
 public:
  virtual ~StreamCodec() = default;
  virtual Status Write(ByteSpan input) = 0;
  virtual Status Finish() = 0;
};

struct CompressOptions {
  int level = 0;  // zstd 1..19 (22 with more memory), lzma 0..9; ignored for none
  // 0 for what the level implies, else a power of two within kMinWindow..kMaxWindow.
  uint64_t window = 0;
  // When known, the exact number of bytes that will be written: the window then shrinks to the
  // input (a 200 KiB image needs no 4 MiB window to decode), and zstd records the size.
  std::optional<uint64_t> input_size = std::nullopt;
};
Result<std::unique_ptr<StreamCodec>> MakeCompressor(Compression c, const CompressOptions& options,
                                                    ByteSink& out);
// Errors are kMalformed ("zstd: Unknown frame descriptor", "xz stream is truncated"), or
// kOutOfRange when the stream needs a window larger than `max_window`.
Result<std::unique_ptr<StreamCodec>> MakeDecompressor(Compression c, ByteSink& out,
                                                      uint64_t max_window = kDefaultMaxWindow);

}  // namespace aloft::pkg
