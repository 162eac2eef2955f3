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

// Decoder memory limits: a payload that needs more is refused, not allocated.
inline constexpr int kZstdMaxWindowLog = 27;             // 128 MiB, zstd's own default limit
inline constexpr uint64_t kLzmaMemLimit = 256ull << 20;  // xz -9 needs 65 MiB

class StreamCodec {
 public:
  virtual ~StreamCodec() = default;
  virtual Status Write(ByteSpan input) = 0;
  virtual Status Finish() = 0;
};

// `level`: zstd 1..19 (22 with more memory), lzma 0..9; ignored for none.
Result<std::unique_ptr<StreamCodec>> MakeCompressor(Compression c, int level, ByteSink& out);
// Errors are kMalformed ("zstd: Unknown frame descriptor", "xz stream is truncated").
Result<std::unique_ptr<StreamCodec>> MakeDecompressor(Compression c, ByteSink& out);

}  // namespace aloft::pkg
