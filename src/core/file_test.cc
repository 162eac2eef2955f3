#include "core/file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

#include "support/matchers.h"
#include "support/temp_dir.h"

namespace aloft {
namespace {

using ::testing::HasSubstr;
namespace fs = std::filesystem;

std::vector<std::string> Entries(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

TEST(AtomicFile, TargetAppearsOnlyAtCommit) {
  testing::TempDir dir;
  std::string target = dir / "out.bin";
  ASSERT_THAT(WriteFileAtomic(target, "old"), IsOk());

  auto out = AtomicFile::Create(target, 0644);
  ASSERT_THAT(out, IsOk());
  ASSERT_THAT(out->Write(AsBytes("new content")), IsOk());
  EXPECT_EQ(*ReadFile(target), "old");  // not yet
  ASSERT_THAT(out->Commit(), IsOk());
  EXPECT_EQ(*ReadFile(target), "new content");
  EXPECT_EQ(Entries(dir.path()), std::vector<std::string>{"out.bin"});
}

TEST(AtomicFile, AbandonedWriteLeavesNoTraceAndKeepsTheOldFile) {
  testing::TempDir dir;
  std::string target = dir / "out.bin";
  ASSERT_THAT(WriteFileAtomic(target, "old"), IsOk());
  {
    auto out = AtomicFile::Create(target, 0644);
    ASSERT_THAT(out, IsOk());
    ASSERT_THAT(out->Write(AsBytes("half")), IsOk());
    EXPECT_EQ(Entries(dir.path()).size(), 2u);  // the temporary file exists meanwhile
  }
  EXPECT_EQ(*ReadFile(target), "old");
  EXPECT_EQ(Entries(dir.path()), std::vector<std::string>{"out.bin"});
}

TEST(AtomicFile, ModeIsExactDespiteUmask) {
  testing::TempDir dir;
  mode_t old_mask = ::umask(0);
  ::umask(0077);
  ASSERT_THAT(WriteFileAtomic(dir / "public", "x", 0644), IsOk());
  ::umask(0);
  ASSERT_THAT(WriteFileAtomic(dir / "secret", "x", 0600), IsOk());
  ::umask(old_mask);
  struct stat st;
  ASSERT_EQ(::stat((dir / "public").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
  ASSERT_EQ(::stat((dir / "secret").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(AtomicFile, FailsClearlyInAMissingDirectory) {
  testing::TempDir dir;
  EXPECT_THAT(AtomicFile::Create(dir / "no/such/out.bin", 0644),
              IsError(Code::kNotFound, HasSubstr("no/such/out.bin")));
}

TEST(File, OpenReadWrite_CreatesAsAsked) {
  testing::TempDir dir;
  const std::string path = dir / "rw";
  EXPECT_THAT(File::OpenReadWrite(path, File::Creation::kMustExist),
              IsError(Code::kNotFound, HasSubstr(path)));
  ASSERT_THAT(File::OpenReadWrite(path, File::Creation::kExclusive), IsOk());
  EXPECT_THAT(File::OpenReadWrite(path, File::Creation::kExclusive),
              IsError(Code::kAlreadyExists, HasSubstr(path)));
  EXPECT_THAT(File::OpenReadWrite(path, File::Creation::kIfMissing), IsOk());
  EXPECT_THAT(File::OpenReadWrite(path, File::Creation::kMustExist), IsOk());
}

TEST(File, ReadAtAndWriteAt_ArePositionalAndReadAtNeedsEveryByte) {
  testing::TempDir dir;
  auto f = File::OpenReadWrite(dir / "pos", File::Creation::kExclusive);
  ASSERT_THAT(f, IsOk());
  ASSERT_THAT(f->WriteAt(4, AsBytes("world")), IsOk());
  ASSERT_THAT(f->WriteAt(0, AsBytes("helo")), IsOk());
  Bytes out(9);
  ASSERT_THAT(f->ReadAt(0, out), IsOk());
  EXPECT_EQ(std::string(out.begin(), out.end()), "heloworld");
  Bytes tail(3);
  ASSERT_THAT(f->ReadAt(6, tail), IsOk());
  EXPECT_EQ(std::string(tail.begin(), tail.end()), "rld");
  Bytes beyond(4);
  EXPECT_THAT(f->ReadAt(7, beyond), IsError(Code::kIo, HasSubstr("ends before offset 11")));
  // The sequential position is untouched by either.
  Bytes first(2);
  ASSERT_THAT(f->Read(first), IsOk());
  EXPECT_EQ(std::string(first.begin(), first.end()), "he");
}

TEST(ReadFile, NamesThePathAndEnforcesTheLimit) {
  testing::TempDir dir;
  EXPECT_THAT(ReadFile(dir / "missing"), IsError(Code::kNotFound, HasSubstr("missing")));
  ASSERT_THAT(WriteFileAtomic(dir / "big", std::string(100, 'x')), IsOk());
  EXPECT_THAT(ReadFile(dir / "big", 99), IsError(Code::kOutOfRange, HasSubstr("100 bytes")));
  EXPECT_THAT(ReadFile(dir.path()), IsError(Code::kInvalidArgument, HasSubstr("directory")));
}

TEST(File, CreateExclusiveRefusesToOverwrite) {
  testing::TempDir dir;
  ASSERT_THAT(File::CreateExclusive(dir / "k", 0600), IsOk());
  EXPECT_THAT(File::CreateExclusive(dir / "k", 0600),
              IsError(Code::kAlreadyExists, HasSubstr("k")));
}

TEST(CopyBytes, ReportsAShortSource) {
  Bytes data(10, 7);
  MemorySource src(data);
  MemorySink sink;
  EXPECT_THAT(CopyBytes(src, sink, 12), IsError(Code::kMalformed, HasSubstr("2 bytes early")));
  MemorySource again(data);
  MemorySink full;
  ASSERT_THAT(CopyBytes(again, full, 10), IsOk());
  EXPECT_EQ(full.bytes(), data);
}

}  // namespace
}  // namespace aloft
