#include "pkg/compress.h"

#include <gtest/gtest.h>

#include "support/matchers.h"
#include "support/package_fixture.h"

namespace aloft::pkg {
namespace {

using ::testing::HasSubstr;

Bytes Coded(Compression c, bool compress, const Bytes& in, size_t chunk, Status* status) {
  MemorySink out;
  auto codec = compress ? MakeCompressor(c, DefaultLevel(c), out) : MakeDecompressor(c, out);
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

TEST(Codecs, NamesAndLevels) {
  EXPECT_THAT(ParseCompression("brotli"), IsError(Code::kInvalidArgument, HasSubstr("'brotli'")));
  EXPECT_EQ(*ParseCompression("xz"), Compression::kLzma);
  MemorySink out;
  EXPECT_THAT(MakeCompressor(Compression::kZstd, 40, out),
              IsError(Code::kInvalidArgument, HasSubstr("zstd level 40")));
  EXPECT_THAT(MakeCompressor(Compression::kLzma, 10, out),
              IsError(Code::kInvalidArgument, HasSubstr("lzma level 10")));
}

}  // namespace
}  // namespace aloft::pkg
