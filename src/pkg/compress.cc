#include "pkg/compress.h"

#include <lzma.h>
#include <zstd.h>
#include <zstd_errors.h>

#include <algorithm>
#include <bit>
#include <charconv>
#include <vector>

#include "core/text.h"

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

// kInvalidArgument unless `window` is a power of two within kMinWindow..kMaxWindow.
Status CheckWindowRange(uint64_t window, const std::string& what) {
  if (window > kMaxWindow) {
    return Error(Code::kInvalidArgument, what + ": larger than " + SizeText(kMaxWindow));
  }
  if (window < kMinWindow || !std::has_single_bit(window)) {
    return Error(Code::kInvalidArgument, what + ": must be a power of two from " +
                                             SizeText(kMinWindow) + " to " + SizeText(kMaxWindow));
  }
  return OkStatus();
}

class ZstdDecompressor final : public StreamCodec {
 public:
  ZstdDecompressor(ByteSink& out, ZSTD_DCtx* ctx, uint64_t max_window)
      : out_(out), ctx_(ctx), buf_(kOutBuffer), max_window_(max_window) {}
  ~ZstdDecompressor() override { ZSTD_freeDCtx(ctx_); }

  Status Write(ByteSpan input) override {
    if (!saw_input_) ALOFT_RETURN_IF_ERROR(CheckWindow(input));
    ZSTD_inBuffer in{input.data(), input.size(), 0};
    while (in.pos < in.size) {
      ZSTD_outBuffer out{buf_.data(), buf_.size(), 0};
      size_t ret = ZSTD_decompressStream(ctx_, &out, &in);
      if (ZSTD_isError(ret)) {
        if (ZSTD_getErrorCode(ret) == ZSTD_error_frameParameter_windowTooLarge) {
          return Error(Code::kOutOfRange,
                       "zstd: the stream needs a decoder window larger than "
                       "the limit of " +
                           SizeText(max_window_));
        }
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
  // Names the window the first frame needs when it is over the limit (zstd's own message does
  // not say how large it is). RFC 8878 3.1.1: magic, Frame_Header_Descriptor, Window_Descriptor
  // (absent for a single-segment frame, whose window is its content size; zstd's error then).
  Status CheckWindow(ByteSpan input) const {
    constexpr uint8_t kMagic[] = {0x28, 0xB5, 0x2F, 0xFD};
    if (input.size() < 6 || !std::equal(kMagic, kMagic + 4, input.data())) return OkStatus();
    if (input[4] & 0x20) return OkStatus();  // Single_Segment_flag
    const uint8_t descriptor = input[5];
    const uint64_t base = uint64_t{1} << (10 + (descriptor >> 3));
    const uint64_t window = base + base / 8 * (descriptor & 7);
    if (window <= max_window_) return OkStatus();
    return Error(Code::kOutOfRange, "zstd: the stream needs a " + SizeText(window) +
                                        " decoder window; the limit is " + SizeText(max_window_));
  }

  ByteSink& out_;
  ZSTD_DCtx* ctx_;
  std::vector<uint8_t> buf_;
  uint64_t max_window_;
  bool frame_done_ = false;
  bool saw_input_ = false;
};

// `max_window`: the decoder's window limit, for LZMA_MEMLIMIT_ERROR.
std::string LzmaMessage(lzma_ret ret, uint64_t max_window) {
  switch (ret) {
    case LZMA_MEM_ERROR:
      return "out of memory";
    case LZMA_MEMLIMIT_ERROR:
      return "the stream needs a dictionary larger than the decoder window limit of " +
             SizeText(max_window);
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
  Lzma(ByteSink& out, bool decoder, uint64_t max_window = 0)
      : out_(out), decoder_(decoder), max_window_(max_window), buf_(kOutBuffer) {}
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
    if (ret == LZMA_MEMLIMIT_ERROR) {
      return Error(Code::kOutOfRange, "xz: " + LzmaMessage(ret, max_window_));
    }
    if (ret != LZMA_OK) {
      return Error(decoder_ ? Code::kMalformed : Code::kInternal,
                   "xz: " + LzmaMessage(ret, max_window_));
    }
    return OkStatus();
  }
  ByteSink& out_;
  bool decoder_;
  uint64_t max_window_;
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

Result<uint64_t> ParseWindow(std::string_view text) {
  const std::string quoted = "window '" + std::string(text) + "'";
  uint64_t n = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  std::string_view unit(end, text.data() + text.size() - end);
  int shift = -1;
  if (unit.empty()) shift = 0;
  if (unit == "K" || unit == "k" || unit == "KiB") shift = 10;
  if (unit == "M" || unit == "MiB") shift = 20;
  if (ec != std::errc() || shift < 0) {
    return Error(Code::kInvalidArgument, quoted + ": expected a size such as 1M, 512K or 65536");
  }
  n = n > (kMaxWindow >> shift) ? kMaxWindow + 1 : n << shift;  // no overflow when shifting
  ALOFT_RETURN_IF_ERROR(CheckWindowRange(n, quoted));
  return n;
}

Result<std::unique_ptr<StreamCodec>> MakeCompressor(Compression c, const CompressOptions& options,
                                                    ByteSink& out) {
  const int level = options.level;
  uint64_t window = options.window;
  if (window != 0) {
    ALOFT_RETURN_IF_ERROR(
        CheckWindowRange(window, "window of " + std::to_string(window) + " bytes"));
  }
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
      // 0: what the level implies (levels up to 19 stay within kMaxWindow).
      ZSTD_CCtx_setParameter(ctx, ZSTD_c_windowLog, window ? std::countr_zero(window) : 0);
      if (options.input_size) ZSTD_CCtx_setPledgedSrcSize(ctx, *options.input_size);
      return std::unique_ptr<StreamCodec>(std::make_unique<ZstdCompressor>(out, ctx));
    }
    case Compression::kLzma: {
      if (level < 0 || level > 9) {
        return Error(Code::kInvalidArgument,
                     "lzma level " + std::to_string(level) + " is outside 0..9");
      }
      auto codec = std::make_unique<Lzma>(out, false);
      lzma_options_lzma lzma;
      if (lzma_lzma_preset(&lzma, uint32_t(level))) {
        return Error(Code::kInternal, "xz: no preset " + std::to_string(level));
      }
      lzma.dict_size = static_cast<uint32_t>(
          window != 0 ? window : std::min<uint64_t>(lzma.dict_size, kLzmaDefaultMaxDict));
      if (options.input_size) {  // as xz does: no dictionary beyond the input
        lzma.dict_size = static_cast<uint32_t>(
            std::clamp<uint64_t>(std::bit_ceil(*options.input_size), kMinWindow, lzma.dict_size));
      }
      lzma_filter filters[] = {{LZMA_FILTER_LZMA2, &lzma}, {LZMA_VLI_UNKNOWN, nullptr}};
      lzma_ret ret = lzma_stream_encoder(codec->stream(), filters, LZMA_CHECK_CRC64);
      if (ret != LZMA_OK) return Error(Code::kInternal, "xz: " + LzmaMessage(ret, 0));
      return std::unique_ptr<StreamCodec>(std::move(codec));
    }
  }
  return Error(Code::kInternal, "unknown compression");
}

Result<std::unique_ptr<StreamCodec>> MakeDecompressor(Compression c, ByteSink& out,
                                                      uint64_t max_window) {
  switch (c) {
    case Compression::kNone:
      return std::unique_ptr<StreamCodec>(std::make_unique<Passthrough>(out));
    case Compression::kZstd: {
      ZSTD_DCtx* ctx = ZSTD_createDCtx();
      if (ctx == nullptr) return Error(Code::kInternal, "zstd: out of memory");
      ZSTD_DCtx_setParameter(ctx, ZSTD_d_windowLogMax,
                             std::bit_width(std::max<uint64_t>(max_window, kMinWindow)) - 1);
      return std::unique_ptr<StreamCodec>(std::make_unique<ZstdDecompressor>(out, ctx, max_window));
    }
    case Compression::kLzma: {
      auto codec = std::make_unique<Lzma>(out, true, max_window);
      lzma_ret ret = lzma_stream_decoder(codec->stream(), max_window + kLzmaOverhead, 0);
      if (ret != LZMA_OK) return Error(Code::kInternal, "xz: " + LzmaMessage(ret, max_window));
      return std::unique_ptr<StreamCodec>(std::move(codec));
    }
  }
  return Error(Code::kInternal, "unknown compression");
}

}  // namespace aloft::pkg
