#include "pkg/tar.h"

#include <gtest/gtest.h>

#include <cstdio>

#include "core/file.h"
#include "support/matchers.h"
#include "support/temp_dir.h"

namespace aloft::pkg {
namespace {

using ::testing::HasSubstr;

TEST(Tar, LongNamesGoThroughPaxAndGnuTarReadsThem) {
  std::string long_name(150, 'n');
  MemorySink sink;
  TarWriter w(sink, 1700000000);
  ASSERT_THAT(w.BeginEntry(long_name, 3), IsOk());
  ASSERT_THAT(w.Write(AsBytes("abc")), IsOk());
  ASSERT_THAT(w.EndEntry(), IsOk());
  ASSERT_THAT(w.Finish(), IsOk());

  MemorySource src(sink.bytes());
  TarReader r(src);
  auto e = r.Next();
  ASSERT_THAT(e, IsOk());
  ASSERT_TRUE(e->has_value());
  EXPECT_EQ((*e)->name, long_name);
  EXPECT_EQ((*e)->size, 3u);
  EXPECT_EQ((*e)->header_offset, 0u);
  EXPECT_EQ((*e)->data_offset, 3 * 512u);  // pax header, its records, the ustar header
  auto end = r.Next();
  ASSERT_THAT(end, IsOk());
  EXPECT_FALSE(end->has_value());

  // The system's tar agrees.
  testing::TempDir dir;
  ASSERT_THAT(WriteFileAtomic(dir / "a.tar", AsChars(sink.bytes())), IsOk());
  std::string cmd = "tar tf " + (dir / "a.tar");
  std::FILE* p = ::popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  char line[512] = {0};
  ASSERT_NE(std::fgets(line, sizeof line, p), nullptr);
  EXPECT_EQ(::pclose(p), 0);
  EXPECT_EQ(std::string(line), long_name + "\n");
}

TEST(Tar, SizesBeyondUstarUsePax) {
  const uint64_t huge = (uint64_t{1} << 33) + 1;  // 8 GiB + 1: does not fit 11 octal digits
  MemorySink sink;
  TarWriter w(sink, 0);
  ASSERT_THAT(w.BeginEntry("big.zst", huge), IsOk());
  std::string text(AsChars(sink.bytes()));
  EXPECT_EQ(text[156], 'x');
  EXPECT_NE(text.find("size=8589934593\n"), std::string::npos);
  MemorySource src(sink.bytes());
  TarReader r(src);
  auto e = r.Next();
  ASSERT_THAT(e, IsOk());
  EXPECT_EQ((*e)->size, huge);
  EXPECT_EQ((*e)->name, "big.zst");
}

TEST(Tar, WriterKeepsEntriesHonest) {
  MemorySink sink;
  TarWriter w(sink, 0);
  EXPECT_THAT(w.BeginEntry("../x", 1), IsError(Code::kInvalidArgument, HasSubstr("unsafe")));
  ASSERT_THAT(w.BeginEntry("a", 2), IsOk());
  EXPECT_THAT(w.Write(AsBytes("abc")), IsError(Code::kInternal, HasSubstr("longer")));
  ASSERT_THAT(w.Write(AsBytes("a")), IsOk());
  EXPECT_THAT(w.EndEntry(), IsError(Code::kInternal, HasSubstr("shorter")));
}

TEST(Tar, TrailingZerosAfterTheEndAreAcceptedOtherBytesAreNot) {
  MemorySink sink;
  TarWriter w(sink, 0);
  ASSERT_THAT(w.Finish(), IsOk());
  Bytes padded = sink.bytes();
  padded.resize(10240, 0);  // GNU tar's record padding
  MemorySource a(padded);
  TarReader ra(a);
  EXPECT_THAT(ra.Next(), IsOk());
  padded.push_back(1);
  MemorySource b(padded);
  TarReader rb(b);
  EXPECT_THAT(rb.Next(), IsError(Code::kMalformed, HasSubstr("after the end-of-archive")));
}

TEST(Tar, ReadsWhatGnuTarWrites) {
  testing::TempDir dir;
  ASSERT_THAT(WriteFileAtomic(dir / "f", "hello"), IsOk());
  for (const char* format : {"gnu", "posix", "ustar"}) {
    std::string archive = dir / (std::string(format) + ".tar");
    std::string cmd =
        "tar --format=" + std::string(format) + " -cf " + archive + " -C " + dir.path() + " f";
    ASSERT_EQ(std::system(cmd.c_str()), 0);
    std::string text = *ReadFile(archive);
    MemorySource src(AsBytes(text));
    TarReader r(src);
    auto e = r.Next();
    ASSERT_THAT(e, IsOk()) << format;
    ASSERT_TRUE(e->has_value());
    EXPECT_EQ((*e)->name, "f");
    EXPECT_EQ((*e)->size, 5u);
    auto end = r.Next();
    EXPECT_THAT(end, IsOk()) << format;
  }
}

TEST(Tar, SafeNames) {
  EXPECT_TRUE(IsSafeEntryName("manifest.json"));
  EXPECT_TRUE(IsSafeEntryName("dir/file"));
  for (const char* bad : {"", "/abs", "..", "../x", "a/../b", "a//b", "./a", "a/"}) {
    EXPECT_FALSE(IsSafeEntryName(bad)) << bad;
  }
}

}  // namespace
}  // namespace aloft::pkg
