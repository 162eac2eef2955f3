#include "pkg/compress.h"

#include <lzma.h>
#include <zstd.h>

#include <vector>

namespace aloft::pkg {
namespace {

constexpr size_t kOutBuffer = 128 * 1024;

class Passthrough final : public StreamCodec {
 public:
  explicit Passthrough(ByteSink& out) : out_(out) {}
  Status Write(ByteSpan input) override { return out_.Write(input); }
  Status Finish() override { return OkStatus(); }

 private:
  ByteSink& out_;
};

class ZstdCompressor final : public StreamCodec {
 public:
  ZstdCompressor(ByteSink& out, ZSTD_CCtx* ctx) : out_(out), ctx_(ctx), buf_(kOutBuffer) {}
  ~ZstdCompressor() override { ZSTD_freeCCtx(ctx_); }

  Status Write(ByteSpan input) override { return Run(input, ZSTD_e_continue); }
  Status Finish() override { return Run({}, ZSTD_e_end); }

 private:
  Status Run(ByteSpan input, ZSTD_EndDirective mode) {
    ZSTD_inBuffer in{input.data(), input.size(), 0};
    while (true) {
      ZSTD_outBuffer out{buf_.data(), buf_.size(), 0};
      size_t left = ZSTD_compressStream2(ctx_, &out, &in, mode);
      if (ZSTD_isError(left)) {
        return Error(Code::kInternal, std::string("zstd: ") + ZSTD_getErrorName(left));
      }
      ALOFT_RETURN_IF_ERROR(out_.Write(ByteSpan(buf_.data(), out.pos)));
      bool done = mode == ZSTD_e_end ? left == 0 : in.pos == in.size;
      if (done) return OkStatus();
    }
  }
  ByteSink& out_;
  ZSTD_CCtx* ctx_;
  std::vector<uint8_t> buf_;
};

class ZstdDecompressor final : public StreamCodec {
 public:
  ZstdDecompressor(ByteSink& out, ZSTD_DCtx* ctx) : out_(out), ctx_(ctx), buf_(kOutBuffer) {}
  ~ZstdDecompressor() override { ZSTD_freeDCtx(ctx_); }

  Status Write(ByteSpan input) override {
    ZSTD_inBuffer in{input.data(), input.size(), 0};
    while (in.pos < in.size) {
      ZSTD_outBuffer out{buf_.data(), buf_.size(), 0};
      size_t ret = ZSTD_decompressStream(ctx_, &out, &in);
      if (ZSTD_isError(ret)) {
        return Error(Code::kMalformed, std::string("zstd: ") + ZSTD_getErrorName(ret));
      }
      ALOFT_RETURN_IF_ERROR(out_.Write(ByteSpan(buf_.data(), out.pos)));
      frame_done_ = ret == 0;
      saw_input_ = true;
    }
    return OkStatus();
  }
  Status Finish() override {
    // Flush what the decoder still holds (output buffer was full on the last call).
    while (true) {
      ZSTD_inBuffer in{nullptr, 0, 0};
      ZSTD_outBuffer out{buf_.data(), buf_.size(), 0};
      size_t ret = ZSTD_decompressStream(ctx_, &out, &in);
      if (ZSTD_isError(ret)) {
        return Error(Code::kMalformed, std::string("zstd: ") + ZSTD_getErrorName(ret));
      }
      ALOFT_RETURN_IF_ERROR(out_.Write(ByteSpan(buf_.data(), out.pos)));
      if (ret == 0) frame_done_ = true;
      if (out.pos < out.size) break;
    }
    if (!saw_input_ || !frame_done_) {
      return Error(Code::kMalformed, "zstd stream is truncated");
    }
    return OkStatus();
  }

 private:
  ByteSink& out_;
  ZSTD_DCtx* ctx_;
  std::vector<uint8_t> buf_;
  bool frame_done_ = false;
  bool saw_input_ = false;
};

std::string LzmaMessage(lzma_ret ret) {
  switch (ret) {
    case LZMA_MEM_ERROR:
      return "out of memory";
    case LZMA_MEMLIMIT_ERROR:
      return "needs more memory than the limit of " + std::to_string(kLzmaMemLimit >> 20) + " MiB";
    case LZMA_FORMAT_ERROR:
      return "not an xz stream";
    case LZMA_OPTIONS_ERROR:
      return "unsupported xz options";
    case LZMA_DATA_ERROR:
      return "corrupt xz data";
    case LZMA_BUF_ERROR:
      return "xz stream is truncated";
    default:
      return "error " + std::to_string(int(ret));
  }
}

class Lzma final : public StreamCodec {
 public:
  Lzma(ByteSink& out, bool decoder) : out_(out), decoder_(decoder), buf_(kOutBuffer) {}
  ~Lzma() override { lzma_end(&strm_); }
  lzma_stream* stream() { return &strm_; }

  Status Write(ByteSpan input) override {
    if (input.empty()) return OkStatus();
    if (ended_) return Error(Code::kMalformed, "xz: data after the end of the stream");
    strm_.next_in = input.data();
    strm_.avail_in = input.size();
    while (strm_.avail_in > 0 && !ended_) ALOFT_RETURN_IF_ERROR(Step(LZMA_RUN));
    if (strm_.avail_in > 0) return Error(Code::kMalformed, "xz: data after the end of the stream");
    return OkStatus();
  }
  Status Finish() override {
    strm_.next_in = nullptr;
    strm_.avail_in = 0;
    while (!ended_) ALOFT_RETURN_IF_ERROR(Step(LZMA_FINISH));
    return OkStatus();
  }

 private:
  Status Step(lzma_action action) {
    strm_.next_out = buf_.data();
    strm_.avail_out = buf_.size();
    lzma_ret ret = lzma_code(&strm_, action);
    ALOFT_RETURN_IF_ERROR(out_.Write(ByteSpan(buf_.data(), buf_.size() - strm_.avail_out)));
    if (ret == LZMA_STREAM_END) {
      ended_ = true;
      return OkStatus();
    }
    if (ret != LZMA_OK) {
      return Error(decoder_ ? Code::kMalformed : Code::kInternal, "xz: " + LzmaMessage(ret));
    }
    return OkStatus();
  }
  ByteSink& out_;
  bool decoder_;
  lzma_stream strm_ = LZMA_STREAM_INIT;
  std::vector<uint8_t> buf_;
  bool ended_ = false;
};

}  // namespace

std::string_view CompressionName(Compression c) {
  switch (c) {
    case Compression::kNone:
      return "none";
    case Compression::kZstd:
      return "zstd";
    case Compression::kLzma:
      return "lzma";
  }
  return "none";
}

std::string_view FileExtension(Compression c) {
  switch (c) {
    case Compression::kZstd:
      return ".zst";
    case Compression::kLzma:
      return ".xz";
    case Compression::kNone:
      return ".bin";
  }
  return ".bin";
}

Result<Compression> ParseCompression(std::string_view name) {
  if (name == "zstd") return Compression::kZstd;
  if (name == "lzma" || name == "xz") return Compression::kLzma;
  if (name == "none") return Compression::kNone;
  return Error(Code::kInvalidArgument,
               "unknown compression '" + std::string(name) + "' (use zstd, lzma or none)");
}

int DefaultLevel(Compression c) {
  switch (c) {
    case Compression::kZstd:
      return 9;
    case Compression::kLzma:
      return 6;
    case Compression::kNone:
      return 0;
  }
  return 0;
}

Result<std::unique_ptr<StreamCodec>> MakeCompressor(Compression c, int level, ByteSink& out) {
  switch (c) {
    case Compression::kNone:
      return std::unique_ptr<StreamCodec>(std::make_unique<Passthrough>(out));
    case Compression::kZstd: {
      if (level < 1 || level > ZSTD_maxCLevel()) {
        return Error(Code::kInvalidArgument, "zstd level " + std::to_string(level) +
                                                 " is outside 1.." +
                                                 std::to_string(ZSTD_maxCLevel()));
      }
      ZSTD_CCtx* ctx = ZSTD_createCCtx();
      if (ctx == nullptr) return Error(Code::kInternal, "zstd: out of memory");
      ZSTD_CCtx_setParameter(ctx, ZSTD_c_compressionLevel, level);
      // Keep windows decodable by the decoder limit whatever the level.
      ZSTD_CCtx_setParameter(ctx, ZSTD_c_windowLog, 0);
      return std::unique_ptr<StreamCodec>(std::make_unique<ZstdCompressor>(out, ctx));
    }
    case Compression::kLzma: {
      if (level < 0 || level > 9) {
        return Error(Code::kInvalidArgument,
                     "lzma level " + std::to_string(level) + " is outside 0..9");
      }
      auto codec = std::make_unique<Lzma>(out, false);
      lzma_ret ret = lzma_easy_encoder(codec->stream(), uint32_t(level), LZMA_CHECK_CRC64);
      if (ret != LZMA_OK) return Error(Code::kInternal, "xz: " + LzmaMessage(ret));
      return std::unique_ptr<StreamCodec>(std::move(codec));
    }
  }
  return Error(Code::kInternal, "unknown compression");
}

Result<std::unique_ptr<StreamCodec>> MakeDecompressor(Compression c, ByteSink& out) {
  switch (c) {
    case Compression::kNone:
      return std::unique_ptr<StreamCodec>(std::make_unique<Passthrough>(out));
    case Compression::kZstd: {
      ZSTD_DCtx* ctx = ZSTD_createDCtx();
      if (ctx == nullptr) return Error(Code::kInternal, "zstd: out of memory");
      ZSTD_DCtx_setParameter(ctx, ZSTD_d_windowLogMax, kZstdMaxWindowLog);
      return std::unique_ptr<StreamCodec>(std::make_unique<ZstdDecompressor>(out, ctx));
    }
    case Compression::kLzma: {
      auto codec = std::make_unique<Lzma>(out, true);
      lzma_ret ret = lzma_stream_decoder(codec->stream(), kLzmaMemLimit, 0);
      if (ret != LZMA_OK) return Error(Code::kInternal, "xz: " + LzmaMessage(ret));
      return std::unique_ptr<StreamCodec>(std::move(codec));
    }
  }
  return Error(Code::kInternal, "unknown compression");
}

}  // namespace aloft::pkg
