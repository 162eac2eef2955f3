#include "pkg/compress.h"

#include <gtest/gtest.h>

#include "support/matchers.h"
#include "support/package_fixture.h"

namespace aloft::pkg {
namespace {

using ::testing::HasSubstr;

Bytes Coded(Compression c, bool compress, const Bytes& in, size_t chunk, Status* status) {
  MemorySink out;
  auto codec =
      compress ? MakeCompressor(c, {.level = DefaultLevel(c)}, out) : MakeDecompressor(c, out);
  EXPECT_THAT(codec, IsOk());
  *status = OkStatus();
  for (size_t i = 0; i < in.size() && status->ok(); i += chunk) {
    *status = (*codec)->Write(ByteSpan(in.data() + i, std::min(chunk, in.size() - i)));
  }
  if (status->ok()) *status = (*codec)->Finish();
  return out.Take();
}

class Codecs : public ::testing::TestWithParam<Compression> {};

TEST_P(Codecs, RoundTripInAnyChunking) {
  Bytes data = testing::TextBytes(1'000'000);
  Bytes random = testing::RandomBytes(300'000, 3);
  data.insert(data.end(), random.begin(), random.end());
  Status s;
  Bytes packed = Coded(GetParam(), true, data, 65536, &s);
  ASSERT_THAT(s, IsOk());
  for (size_t chunk : {size_t{1} << 20, size_t{4096}, size_t{7}}) {
    if (chunk == 7 && packed.size() > 400'000) continue;  // byte-by-byte is slow for "none"
    Bytes back = Coded(GetParam(), false, packed, chunk, &s);
    ASSERT_THAT(s, IsOk());
    EXPECT_EQ(back, data) << chunk;
  }
}

TEST_P(Codecs, EmptyInputRoundTrips) {
  Status s;
  Bytes packed = Coded(GetParam(), true, {}, 1, &s);
  ASSERT_THAT(s, IsOk());
  EXPECT_TRUE(Coded(GetParam(), false, packed, 1, &s).empty());
  EXPECT_THAT(s, IsOk());
}

INSTANTIATE_TEST_SUITE_P(
    All, Codecs, ::testing::Values(Compression::kZstd, Compression::kLzma, Compression::kNone),
    [](const auto& param_info) { return std::string(CompressionName(param_info.param)); });

TEST(Codecs, TruncatedAndCorruptStreamsAreMalformed) {
  Bytes data = testing::TextBytes(200'000);
  for (Compression c : {Compression::kZstd, Compression::kLzma}) {
    Status s;
    Bytes packed = Coded(c, true, data, 65536, &s);
    Bytes cut(packed.begin(), packed.begin() + packed.size() / 2);
    Coded(c, false, cut, 4096, &s);
    EXPECT_THAT(s, IsError(Code::kMalformed, HasSubstr("truncated"))) << CompressionName(c);
    Bytes garbage = testing::RandomBytes(1000, 9);
    Coded(c, false, garbage, 4096, &s);
    EXPECT_THAT(s, IsError(Code::kMalformed, HasSubstr(""))) << CompressionName(c);
    Bytes trailing = packed;
    trailing.push_back(0x42);
    Coded(c, false, trailing, 4096, &s);
    EXPECT_THAT(s, IsError(Code::kMalformed, HasSubstr(""))) << CompressionName(c);
  }
}

// Packs `data` with a chosen window, then decodes it under `max_window`.
Status DecodeUnder(Compression c, const Bytes& data, uint64_t window, uint64_t max_window,
                   Bytes* back) {
  MemorySink packed, out;
  auto enc = MakeCompressor(c, {.level = DefaultLevel(c), .window = window}, packed);
  if (!enc.ok()) return enc.error();
  ALOFT_RETURN_IF_ERROR((*enc)->Write(data));
  ALOFT_RETURN_IF_ERROR((*enc)->Finish());
  auto dec = MakeDecompressor(c, out, max_window);
  if (!dec.ok()) return dec.error();
  Bytes stream = packed.Take();
  for (size_t i = 0; i < stream.size(); i += 4096) {
    ALOFT_RETURN_IF_ERROR(
        (*dec)->Write(ByteSpan(stream.data() + i, std::min<size_t>(4096, stream.size() - i))));
  }
  ALOFT_RETURN_IF_ERROR((*dec)->Finish());
  *back = out.Take();
  return OkStatus();
}

// lzma's default dictionary is at most 4 MiB, whatever the level (preset 6's 8 MiB made the
// encoder, and so `aloft pack`, use 99 MiB): a device decoding under 4 MiB takes it.
TEST(Codecs, LzmaDefaultDictionary_IsAtMost4MiB) {
  Bytes data = testing::RandomBytes(64 << 10, 11);  // the header names the dictionary
  Bytes back;
  EXPECT_THAT(DecodeUnder(Compression::kLzma, data, 0, 4 << 20, &back), IsOk());
  EXPECT_EQ(back, data);
  EXPECT_THAT(DecodeUnder(Compression::kLzma, data, 8 << 20, 4 << 20, &back),
              IsError(Code::kOutOfRange, HasSubstr("decoder window limit")));
}

TEST(Codecs, WindowChosenByThePackerIsEnforcedByTheDecoder) {
  // Repeats 768 KiB apart: only a window that reaches back that far finds them.
  Bytes data = testing::RandomBytes(768 << 10, 5);
  data.insert(data.end(), data.begin(), data.end());
  for (Compression c : {Compression::kZstd, Compression::kLzma}) {
    SCOPED_TRACE(CompressionName(c));
    Bytes back;
    ASSERT_THAT(DecodeUnder(c, data, 256 << 10, 256 << 10, &back), IsOk());
    EXPECT_EQ(back, data);
    EXPECT_THAT(DecodeUnder(c, data, 1 << 20, 256 << 10, &back),
                IsError(Code::kOutOfRange, HasSubstr("limit")));
  }
  // zstd names what the stream needs.
  Bytes back;
  EXPECT_THAT(DecodeUnder(Compression::kZstd, data, 1 << 20, 256 << 10, &back),
              IsError(Code::kOutOfRange, HasSubstr("needs a 1 MiB decoder window; the limit is "
                                                   "256 KiB")));
  // The window decides the ratio on such data: 256 KiB cannot see the repeat, 1 MiB can.
  MemorySink small, large;
  auto a = MakeCompressor(Compression::kZstd, {.level = 9, .window = 256 << 10}, small);
  auto b = MakeCompressor(Compression::kZstd, {.level = 9, .window = 1 << 20}, large);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_THAT((*a)->Write(data), IsOk());
  ASSERT_THAT((*a)->Finish(), IsOk());
  ASSERT_THAT((*b)->Write(data), IsOk());
  ASSERT_THAT((*b)->Finish(), IsOk());
  EXPECT_GT(small.Take().size(), data.size() * 9 / 10);
  EXPECT_LT(large.Take().size(), data.size() * 6 / 10);
}

TEST(Codecs, KnownInputSizeShrinksTheWindowToTheInput) {
  const Bytes data = testing::TextBytes(40'000);
  for (Compression c : {Compression::kZstd, Compression::kLzma}) {
    SCOPED_TRACE(CompressionName(c));
    for (bool known : {false, true}) {
      MemorySink packed, out;
      CompressOptions options{.level = DefaultLevel(c)};
      if (known) options.input_size = data.size();
      auto enc = MakeCompressor(c, options, packed);
      ASSERT_THAT(enc, IsOk());
      ASSERT_THAT((*enc)->Write(data), IsOk());
      ASSERT_THAT((*enc)->Finish(), IsOk());
      auto dec = MakeDecompressor(c, out, 64 << 10);  // a small device
      ASSERT_THAT(dec, IsOk());
      Status s = (*dec)->Write(packed.Take());
      if (s.ok()) s = (*dec)->Finish();
      if (known) {
        EXPECT_THAT(s, IsOk());
        EXPECT_EQ(out.Take(), data);
      } else {
        EXPECT_THAT(s, IsError(Code::kOutOfRange, HasSubstr("limit")));
      }
    }
  }
}

TEST(Codecs, ParseWindow) {
  EXPECT_EQ(*ParseWindow("1M"), 1u << 20);
  EXPECT_EQ(*ParseWindow("256K"), 256u << 10);
  EXPECT_EQ(*ParseWindow("8MiB"), 8u << 20);
  EXPECT_EQ(*ParseWindow("65536"), 65536u);
  EXPECT_THAT(ParseWindow("3M"), IsError(Code::kInvalidArgument, HasSubstr("power of two")));
  EXPECT_THAT(ParseWindow("1K"), IsError(Code::kInvalidArgument, HasSubstr("from 4 KiB")));
  EXPECT_THAT(ParseWindow("256M"), IsError(Code::kInvalidArgument, HasSubstr("larger than")));
  EXPECT_THAT(ParseWindow("99999999999999999999M"),
              IsError(Code::kInvalidArgument, HasSubstr("expected a size")));
  EXPECT_THAT(ParseWindow("1G"), IsError(Code::kInvalidArgument, HasSubstr("'1G'")));
  MemorySink out;
  EXPECT_THAT(MakeCompressor(Compression::kZstd, {.level = 9, .window = 3000}, out),
              IsError(Code::kInvalidArgument, HasSubstr("power of two")));
}

TEST(Codecs, NamesAndLevels) {
  EXPECT_THAT(ParseCompression("brotli"), IsError(Code::kInvalidArgument, HasSubstr("'brotli'")));
  EXPECT_EQ(*ParseCompression("xz"), Compression::kLzma);
  MemorySink out;
  EXPECT_THAT(MakeCompressor(Compression::kZstd, {.level = 40}, out),
              IsError(Code::kInvalidArgument, HasSubstr("zstd level 40")));
  EXPECT_THAT(MakeCompressor(Compression::kLzma, {.level = 10}, out),
              IsError(Code::kInvalidArgument, HasSubstr("lzma level 10")));
}

}  // namespace
}  // namespace aloft::pkg
