// Encrypted packages (docs/encryption.md): `Pack` with a content key seals each compressed
// payload in 64 KiB chunks; a reader with the key decrypts as it streams and hands on only bytes
// that verified; without the key (or with another) the payload fails before the sink hears of
// it, and a changed byte fails its chunk. Anyone with the public keys still verifies the package
// as stored.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>

#include "core/clock.h"
#include "core/file.h"
#include "support/matchers.h"
#include "support/package_fixture.h"

namespace aloft::pkg {
namespace {

using ::testing::_;
using testing::CollectSink;
using ::testing::HasSubstr;
using testing::ReadPackage;
using testing::TarEntries;

class EncryptedPackageTest : public ::testing::Test, public testing::PackageFixture {
 protected:
  EncryptedPackageTest() { content_key = key_; }
  Manifest ManifestOf(const Bytes& archive) {
    MemorySource src(archive);
    auto reader = PackageReader::Open(src, "t", nullptr);
    EXPECT_THAT(reader, IsOk());
    return (*reader)->manifest();
  }
  const crypto::ContentKey key_ = crypto::NewContentKey();
  const crypto::TrustSet trust_ = Trust({0}, 1);
};

class EncryptedRoundTrip : public EncryptedPackageTest,
                           public ::testing::WithParamInterface<Compression> {};

// Every compression, images around the chunk size: the images come back byte for byte; the
// manifest names the key and the sizes before and after sealing.
TEST_P(EncryptedRoundTrip, TheKeyHolderGetsEveryImageBack) {
  const Bytes small = testing::RandomBytes(1, 1), exact = testing::TextBytes(65536),
              big = testing::RandomBytes(300'000, 3);
  const Bytes archive = Pack({{"a", small}, {"b", exact}, {"c", big}}, GetParam());
  CollectSink sink;
  ASSERT_THAT(ReadPackage(archive, &trust_, &sink, &key_), IsOk());
  ASSERT_EQ(sink.images.size(), 3u);
  EXPECT_EQ(sink.images[0].second, small);
  EXPECT_EQ(sink.images[1].second, exact);
  EXPECT_EQ(sink.images[2].second, big);
  const Manifest m = ManifestOf(archive);
  for (const Component& c : m.components) {
    ASSERT_TRUE(c.encryption.has_value()) << c.name;
    EXPECT_EQ(c.encryption->key_id, crypto::ContentKeyId(key_));
    EXPECT_EQ(c.payload.size, crypto::SealedSize(c.encryption->size));
  }
  EXPECT_NE(m.components[0].encryption->salt, m.components[1].encryption->salt);
}

INSTANTIATE_TEST_SUITE_P(Compressions, EncryptedRoundTrip,
                         ::testing::Values(Compression::kNone, Compression::kZstd,
                                           Compression::kLzma),
                         [](const auto& p) { return std::string(CompressionName(p.param)); });

TEST_F(EncryptedPackageTest, ThePayloadHoldsNoPlaintext) {
  const Bytes image = testing::TextBytes(200'000);
  const Bytes archive = Pack({{"main", image}}, Compression::kNone);
  const Bytes probe(image.begin() + 1000, image.begin() + 1064);
  EXPECT_EQ(std::search(archive.begin(), archive.end(), probe.begin(), probe.end()), archive.end());
}

TEST_F(EncryptedPackageTest, WithoutTheKeyOrWithAnotherNothingReachesTheSink) {
  const Bytes archive = Pack({{"main", testing::RandomBytes(100'000, 4)}}, Compression::kZstd);
  CollectSink none;
  EXPECT_THAT(
      ReadPackage(archive, &trust_, &none),
      IsError(Code::kUntrusted, HasSubstr("is encrypted (content key " +
                                          crypto::ContentKeyId(key_) + "); no key to decrypt it")));
  EXPECT_TRUE(none.begun.empty());
  const crypto::ContentKey other = crypto::NewContentKey();
  CollectSink wrong;
  EXPECT_THAT(ReadPackage(archive, &trust_, &wrong, &other),
              IsError(Code::kUntrusted, HasSubstr("not with the key given")));
  EXPECT_TRUE(wrong.begun.empty());
}

// A byte of the sealed payload changed in any chunk: refused, the image never ends. (The
// manifest's SHA-256 of the payload catches it too; the chunk's tag catches it first, before
// any of that chunk's bytes are used.)
TEST_F(EncryptedPackageTest, ATamperedChunkIsRefusedAndTheImageNeverEnds) {
  const Bytes image = testing::RandomBytes(3 * 65536 + 100, 5);
  const Bytes archive = Pack({{"main", image}}, Compression::kNone);
  auto entries = TarEntries(archive);
  ASSERT_EQ(entries.size(), 2u);
  for (size_t at : {size_t{10}, size_t{65536 + 16 + 10}, entries[1].data.size() - 1}) {
    auto bad = entries;
    bad[1].data[at] ^= 0x04;
    CollectSink sink;
    EXPECT_THAT(ReadPackage(testing::BuildTar(bad), &trust_, &sink, &key_),
                IsError(Code::kIntegrity, _))
        << at;
    EXPECT_TRUE(sink.images.empty()) << at;
  }
}

TEST_F(EncryptedPackageTest, AnyoneWithThePublicKeysVerifiesItAsStored) {
  const Bytes archive = Pack({{"main", testing::RandomBytes(70'000, 6)}}, Compression::kZstd);
  ASSERT_THAT(WriteFileAtomic(dir / "enc.aloft", AsChars(archive)), IsOk());
  ManualClock clock;
  auto stored = VerifyPackage(dir / "enc.aloft", trust_, clock, Progress::Mode::kNever);
  ASSERT_THAT(stored, IsOk());
  EXPECT_EQ(stored->encrypted_as_stored, 1u);
  auto full = VerifyPackage(dir / "enc.aloft", trust_, clock, Progress::Mode::kNever, &key_);
  ASSERT_THAT(full, IsOk());
  EXPECT_EQ(full->encrypted_as_stored, 0u);
  // Extracting needs the key; without it nothing is written.
  EXPECT_THAT(ExtractPackage(dir / "enc.aloft", trust_, dir / "out", clock, Progress::Mode::kNever),
              IsError(Code::kUntrusted, _));
  EXPECT_FALSE(std::filesystem::exists(dir / "out"));
  EXPECT_THAT(
      ExtractPackage(dir / "enc.aloft", trust_, dir / "out", clock, Progress::Mode::kNever, &key_),
      IsOk());
}

// The manifest's encryption member is checked like every other: a method this build does not
// know, a malformed salt or key id, or a payload size that sealing cannot make.
TEST_F(EncryptedPackageTest, MalformedEncryptionMembersAreRefused) {
  const Bytes archive = Pack({{"main", testing::RandomBytes(1000, 7)}}, Compression::kNone);
  nlohmann::json s = ToSignedJson(ManifestOf(archive));
  auto with = [&](const std::string& key, nlohmann::json value) {
    nlohmann::json t = s;
    t["components"][0]["encryption"][key] = std::move(value);
    return ParseSigned(t);
  };
  EXPECT_THAT(ParseSigned(s), IsOk());
  EXPECT_THAT(with("method", "chacha20"), IsError(Code::kUnsupported, HasSubstr("chacha20")));
  EXPECT_THAT(with("salt", "AAAA"),
              IsError(Code::kMalformed, HasSubstr("components[0].encryption.salt")));
  EXPECT_THAT(with("key_id", "xyz"),
              IsError(Code::kMalformed, HasSubstr("components[0].encryption.key_id")));
  EXPECT_THAT(with("size", 999), IsError(Code::kMalformed, HasSubstr("is not what sealing")));
}

}  // namespace
}  // namespace aloft::pkg
