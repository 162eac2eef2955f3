#include "delta/codec.h"

#include <lzma.h>
#include <zstd.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <future>
#include <thread>

#include "core/text.h"

namespace aloft::delta {
namespace {

constexpr int kZstdLevel = 19;
constexpr uint32_t kLzmaPreset = 9 | LZMA_PRESET_EXTREME;

// The smallest power of two >= the data (and >= 2^min_log), capped at `window`.
uint8_t WindowLog(uint64_t window, size_t size, int min_log, int max_log) {
  int want = std::max<int>(min_log, std::bit_width(std::max<size_t>(size, 1) - 1));
  int cap = std::bit_width(std::max<uint64_t>(window, 1)) - 1;
  return static_cast<uint8_t>(std::clamp(std::min(want, cap), min_log, max_log));
}

Result<EncodedStream> EncodeStored(ByteSpan data, std::span<const size_t> cuts) {
  EncodedStream e;
  e.data.assign(data.begin(), data.end());
  e.piece_ends.assign(cuts.begin(), cuts.end());
  return e;
}

Result<EncodedStream> EncodeZstd(ByteSpan data, std::span<const size_t> cuts, uint64_t window) {
  std::unique_ptr<ZSTD_CCtx, size_t (*)(ZSTD_CCtx*)> cctx(ZSTD_createCCtx(), ZSTD_freeCCtx);
  EncodedStream e;
  e.info = {Codec::kZstd, WindowLog(window, data.size(), 10, 27)};
  for (auto [param, value] :
       {std::pair{ZSTD_c_compressionLevel, kZstdLevel},
        std::pair{ZSTD_c_windowLog, int{e.info.window_log}}, std::pair{ZSTD_c_checksumFlag, 0},
        std::pair{ZSTD_c_contentSizeFlag, 0}}) {
    size_t r = ZSTD_CCtx_setParameter(cctx.get(), param, value);
    if (ZSTD_isError(r))
      return Error(Code::kInternal, std::string("zstd: ") + ZSTD_getErrorName(r));
  }
  Bytes buf(ZSTD_CStreamOutSize());
  size_t prev = 0;
  for (size_t i = 0; i < cuts.size(); ++i) {
    ZSTD_EndDirective mode = i + 1 == cuts.size() ? ZSTD_e_end : ZSTD_e_flush;
    ZSTD_inBuffer in{data.data() + prev, cuts[i] - prev, 0};
    for (;;) {
      ZSTD_outBuffer out{buf.data(), buf.size(), 0};
      size_t r = ZSTD_compressStream2(cctx.get(), &out, &in, mode);
      if (ZSTD_isError(r))
        return Error(Code::kInternal, std::string("zstd: ") + ZSTD_getErrorName(r));
      e.data.insert(e.data.end(), buf.begin(), buf.begin() + out.pos);
      if (r == 0 && in.pos == in.size) break;
    }
    e.piece_ends.push_back(e.data.size());
    prev = cuts[i];
  }
  return e;
}

// One raw LZMA2 stream. Without `finish` it ends in a flush instead of the end marker, so that
// another LZMA2 stream (which begins with a dictionary reset) may follow it as one stream.
Result<EncodedStream> EncodeLzma2Part(ByteSpan data, std::span<const size_t> cuts, uint8_t log,
                                      bool finish) {
  EncodedStream e;
  e.info = {Codec::kLzma2, log};
  lzma_options_lzma opt;
  if (lzma_lzma_preset(&opt, kLzmaPreset)) return Error(Code::kInternal, "lzma: bad preset");
  opt.dict_size = uint32_t{1} << e.info.window_log;
  lzma_filter filters[] = {{LZMA_FILTER_LZMA2, &opt}, {LZMA_VLI_UNKNOWN, nullptr}};
  lzma_stream s = LZMA_STREAM_INIT;
  if (lzma_raw_encoder(&s, filters) != LZMA_OK) {
    return Error(Code::kInternal, "lzma: cannot start the encoder");
  }
  std::unique_ptr<lzma_stream, void (*)(lzma_stream*)> guard(&s, lzma_end);
  Bytes buf(64 << 10);
  size_t prev = 0;
  for (size_t i = 0; i < cuts.size(); ++i) {
    lzma_action action = i + 1 == cuts.size() && finish ? LZMA_FINISH : LZMA_SYNC_FLUSH;
    s.next_in = data.data() + prev;
    s.avail_in = cuts[i] - prev;
    for (;;) {
      s.next_out = buf.data();
      s.avail_out = buf.size();
      lzma_ret r = lzma_code(&s, action);
      e.data.insert(e.data.end(), buf.data(), s.next_out);
      if (r == LZMA_STREAM_END) break;
      if (r != LZMA_OK) return Error(Code::kInternal, "lzma: encoder error " + std::to_string(r));
    }
    e.piece_ends.push_back(e.data.size());
    prev = cuts[i];
  }
  return e;
}

// LZMA2 is the slow codec. A long stream is encoded as independent parts in parallel, three per
// core (their costs differ a lot, so fewer would leave a core idle), split at piece boundaries:
// each part after the first resets the dictionary, costing a little ratio.
constexpr size_t kMinLzmaPart = 1 << 20;

Result<EncodedStream> EncodeLzma2(ByteSpan data, std::span<const size_t> cuts, uint64_t window) {
  const uint8_t log = WindowLog(window, data.size(), 12, 30);
  const size_t cores = std::max(1u, std::thread::hardware_concurrency());
  const size_t part_size = std::max(kMinLzmaPart, (data.size() + 3 * cores - 1) / (3 * cores));
  // A part ends at the first cut at least part_size past its start, or at the last cut.
  std::vector<std::future<Result<EncodedStream>>> parts;
  size_t begin = 0;
  std::vector<size_t> local;  // the part's cuts, relative to its start
  for (size_t i = 0; i < cuts.size(); ++i) {
    local.push_back(cuts[i] - begin);
    const bool last = i + 1 == cuts.size();
    if (!last && cuts[i] - begin < part_size) continue;
    ByteSpan slice = data.subspan(begin, cuts[i] - begin);
    parts.push_back(std::async(std::launch::async, [slice, local = std::move(local), log, last] {
      return EncodeLzma2Part(slice, local, log, last);
    }));
    local.clear();
    begin = cuts[i];
  }
  EncodedStream e;
  e.info = {Codec::kLzma2, log};
  for (auto& part : parts) {
    ALOFT_ASSIGN_OR_RETURN(EncodedStream got, part.get());
    const size_t base = e.data.size();
    e.data.insert(e.data.end(), got.data.begin(), got.data.end());
    for (size_t end : got.piece_ends) e.piece_ends.push_back(base + end);
  }
  return e;
}

// Picks the codec for a long stream from a sample of its start: running both codecs over
// megabytes of differences would double the time for a choice the sample already makes.
constexpr size_t kSample = 256 << 10;

class StoredDecoder final : public StreamDecoder {
 public:
  using StreamDecoder::StreamDecoder;
  Result<size_t> Read(std::span<uint8_t> out) override {
    size_t n = std::min(out.size(), in_.size() - in_pos_);
    if (n) std::memcpy(out.data(), in_.data() + in_pos_, n);
    in_pos_ += n;
    return n;
  }
  Status CheckEnd() override { return OkStatus(); }
};

class ZstdDecoder final : public StreamDecoder {
 public:
  ZstdDecoder(std::string name, int window_log)
      : StreamDecoder(std::move(name)), d_(ZSTD_createDCtx(), ZSTD_freeDCtx) {
    ZSTD_DCtx_setParameter(d_.get(), ZSTD_d_windowLogMax, window_log);
  }
  Result<size_t> Read(std::span<uint8_t> out) override {
    ZSTD_outBuffer o{out.data(), out.size(), 0};
    while (o.pos < o.size) {
      if (ended_) {
        if (in_pos_ < in_.size()) return Error(Code::kMalformed, name_ + ": data after its end");
        break;
      }
      ZSTD_inBuffer i{in_.data(), in_.size(), in_pos_};
      size_t out_before = o.pos, in_before = i.pos;
      size_t r = ZSTD_decompressStream(d_.get(), &o, &i);
      in_pos_ = i.pos;
      if (ZSTD_isError(r)) {
        return Error(Code::kMalformed, name_ + ": zstd: " + ZSTD_getErrorName(r));
      }
      if (r == 0) ended_ = true;
      if (o.pos == out_before && i.pos == in_before) break;
    }
    return o.pos;
  }
  Status CheckEnd() override {
    if (!ended_) return Error(Code::kMalformed, name_ + ": the compressed stream is truncated");
    return OkStatus();
  }

 private:
  std::unique_ptr<ZSTD_DCtx, size_t (*)(ZSTD_DCtx*)> d_;
  bool ended_ = false;
};

class Lzma2Decoder final : public StreamDecoder {
 public:
  explicit Lzma2Decoder(std::string name) : StreamDecoder(std::move(name)) {}
  ~Lzma2Decoder() override { lzma_end(&s_); }
  Status Init(uint32_t dict_size) {
    lzma_options_lzma opt;
    lzma_lzma_preset(&opt, 6);
    opt.dict_size = dict_size;
    lzma_filter filters[] = {{LZMA_FILTER_LZMA2, &opt}, {LZMA_VLI_UNKNOWN, nullptr}};
    if (lzma_raw_decoder(&s_, filters) != LZMA_OK) {
      return Error(Code::kInternal, name_ + ": cannot start the LZMA2 decoder");
    }
    return OkStatus();
  }
  Result<size_t> Read(std::span<uint8_t> out) override {
    s_.next_out = out.data();
    s_.avail_out = out.size();
    while (s_.avail_out > 0) {
      s_.next_in = in_.data() + in_pos_;
      s_.avail_in = in_.size() - in_pos_;
      if (ended_) {
        if (s_.avail_in) return Error(Code::kMalformed, name_ + ": data after its end");
        break;
      }
      size_t out_before = s_.avail_out, in_before = s_.avail_in;
      lzma_ret r = lzma_code(&s_, LZMA_RUN);
      in_pos_ = in_.size() - s_.avail_in;
      if (r == LZMA_STREAM_END) {
        ended_ = true;
      } else if (r == LZMA_BUF_ERROR) {
        break;
      } else if (r != LZMA_OK) {
        return Error(Code::kMalformed, name_ + ": LZMA2 data is corrupt");
      }
      if (s_.avail_out == out_before && s_.avail_in == in_before) break;
    }
    return out.size() - s_.avail_out;
  }
  Status CheckEnd() override {
    if (!ended_) return Error(Code::kMalformed, name_ + ": the compressed stream is truncated");
    return OkStatus();
  }

 private:
  lzma_stream s_ = LZMA_STREAM_INIT;
  bool ended_ = false;
};

}  // namespace

Result<EncodedStream> EncodeStream(Codec codec, ByteSpan data, std::span<const size_t> cuts,
                                   uint64_t window) {
  switch (codec) {
    case Codec::kStored:
      return EncodeStored(data, cuts);
    case Codec::kZstd:
      return EncodeZstd(data, cuts, window);
    case Codec::kLzma2:
      return EncodeLzma2(data, cuts, window);
  }
  return Error(Code::kInternal, "unknown codec");
}

Result<EncodedStream> EncodeSmallest(ByteSpan data, std::span<const size_t> cuts, uint64_t window) {
  ALOFT_ASSIGN_OR_RETURN(EncodedStream best, EncodeStored(data, cuts));
  if (data.empty()) return best;
  std::vector<Codec> candidates = {Codec::kZstd, Codec::kLzma2};
  if (data.size() > 2 * kSample) {
    const size_t sample_cut[] = {kSample};
    ByteSpan sample = data.first(kSample);
    ALOFT_ASSIGN_OR_RETURN(EncodedStream z, EncodeStream(Codec::kZstd, sample, sample_cut, window));
    ALOFT_ASSIGN_OR_RETURN(EncodedStream l,
                           EncodeStream(Codec::kLzma2, sample, sample_cut, window));
    candidates = {z.data.size() < l.data.size() ? Codec::kZstd : Codec::kLzma2};
  }
  for (Codec c : candidates) {
    ALOFT_ASSIGN_OR_RETURN(EncodedStream e, EncodeStream(c, data, cuts, window));
    if (e.data.size() < best.data.size()) best = std::move(e);
  }
  return best;
}

Result<std::unique_ptr<StreamDecoder>> StreamDecoder::Make(const StreamInfo& info,
                                                           uint64_t max_window, std::string name) {
  if (info.codec != Codec::kStored && (uint64_t{1} << info.window_log) > max_window) {
    return Error(Code::kOutOfRange, name + ": the stream needs a " +
                                        SizeText(uint64_t{1} << info.window_log) +
                                        " decoder window; the limit is " + SizeText(max_window));
  }
  switch (info.codec) {
    case Codec::kStored:
      return std::unique_ptr<StreamDecoder>(new StoredDecoder(std::move(name)));
    case Codec::kZstd:
      return std::unique_ptr<StreamDecoder>(new ZstdDecoder(std::move(name), info.window_log));
    case Codec::kLzma2: {
      auto d = std::make_unique<Lzma2Decoder>(std::move(name));
      ALOFT_RETURN_IF_ERROR(d->Init(uint32_t{1} << info.window_log));
      return std::unique_ptr<StreamDecoder>(std::move(d));
    }
  }
  return Error(Code::kMalformed, name + ": unknown codec");
}

}  // namespace aloft::delta
