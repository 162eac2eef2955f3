#include "pkg/package.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "core/canonical_json.h"
#include "core/file.h"
#include "core/hash.h"
#include "support/matchers.h"
#include "support/package_fixture.h"

namespace aloft::pkg {
namespace {

using ::testing::AnyOf;
using testing::BuildTar;
using testing::CollectSink;
using ::testing::HasSubstr;
using testing::RawEntry;
using testing::ReadPackage;
using testing::TarEntries;

class PackageTest : public ::testing::Test, public testing::PackageFixture {
 protected:
  ManualClock clock_;
  std::vector<std::pair<std::string, Bytes>> ThreeImages() {
    return {{"main", testing::RandomBytes(200'000, 1)},
            {"bms", testing::TextBytes(300'000)},
            {"empty", {}}};
  }
};

class RoundTrip : public PackageTest, public ::testing::WithParamInterface<Compression> {};

TEST_P(RoundTrip, EveryComponentComesBackByteForByte) {
  auto images = ThreeImages();
  Bytes archive = Pack(images, GetParam());
  auto trust = Trust({0}, 1);
  CollectSink sink;
  ASSERT_THAT(ReadPackage(archive, &trust, &sink), IsOk());
  EXPECT_EQ(sink.images, images);

  // Layout: manifest.json first, then the payloads in the manifest's order.
  auto entries = TarEntries(archive);
  ASSERT_EQ(entries.size(), 4u);
  EXPECT_EQ(entries[0].name, "manifest.json");
  std::string ext = GetParam() == Compression::kZstd   ? ".zst"
                    : GetParam() == Compression::kLzma ? ".xz"
                                                       : ".bin";
  EXPECT_EQ(entries[1].name, "main" + ext);
  EXPECT_EQ(entries[2].name, "bms" + ext);
  EXPECT_EQ(entries[3].name, "empty" + ext);
  if (GetParam() != Compression::kNone) {
    EXPECT_LT(entries[2].data.size(), 300000u / 4);
  }

  // The manifest records what a device needs to check the image it installs.
  auto envelope = ParseEnvelope(AsChars(entries[0].data));
  ASSERT_THAT(envelope, IsOk());
  const Component& main = envelope->manifest.components[0];
  EXPECT_EQ(main.image.sha256, Sha256Hex(images[0].second));
  EXPECT_EQ(main.image.size, 200'000u);
  EXPECT_EQ(main.image.filename, "main.img");
  EXPECT_EQ(main.payload.sha256, Sha256Hex(entries[1].data));
  EXPECT_EQ(main.payload.compression, GetParam());
}

INSTANTIATE_TEST_SUITE_P(Compressions, RoundTrip,
                         ::testing::Values(Compression::kZstd, Compression::kLzma,
                                           Compression::kNone),
                         [](const auto& param_info) {
                           return std::string(CompressionName(param_info.param));
                         });

TEST_F(PackageTest, ExtractWritesImagesOnlyWhenEverythingVerified) {
  auto images = ThreeImages();
  Bytes archive = Pack(images, Compression::kZstd);
  ASSERT_THAT(WriteFileAtomic(dir / "good.aloft", AsChars(archive)), IsOk());
  auto entries = TarEntries(archive);
  // Corrupt the second payload (bms), so main verifies first and must still not appear.
  Bytes bad = archive;
  size_t bms_data = 512 + ((entries[0].data.size() + 511) / 512) * 512 + 512 +
                    ((entries[1].data.size() + 511) / 512) * 512 + 512;
  bad[bms_data + 10] ^= 0x10;
  ASSERT_THAT(WriteFileAtomic(dir / "bad.aloft", AsChars(bad)), IsOk());
  auto trust = Trust({0}, 1);
  ManualClock clock;

  EXPECT_THAT(
      ExtractPackage(dir / "bad.aloft", trust, dir / "out-bad", clock, Progress::Mode::kNever),
      IsError(Code::kIntegrity, HasSubstr("component 'bms'")));
  EXPECT_FALSE(std::filesystem::exists(dir / "out-bad")) << "left an empty directory";
  EXPECT_THAT(ExtractPackage(dir / "bad.aloft", trust, dir / "new/deeper/out", clock,
                             Progress::Mode::kNever),
              IsError(Code::kIntegrity, HasSubstr("bms")));
  EXPECT_FALSE(std::filesystem::exists(dir / "new")) << "left the directories it made";
  std::filesystem::create_directories(dir / "mine");  // a directory that was there stays
  EXPECT_THAT(ExtractPackage(dir / "bad.aloft", trust, dir / "mine", clock, Progress::Mode::kNever),
              IsError(Code::kIntegrity, HasSubstr("bms")));
  EXPECT_TRUE(std::filesystem::is_empty(dir / "mine"));

  auto written =
      ExtractPackage(dir / "good.aloft", trust, dir / "out", clock, Progress::Mode::kNever);
  ASSERT_THAT(written, IsOk());
  ASSERT_EQ(written->size(), 3u);
  EXPECT_EQ(*ReadFile(dir / "out/main.bin"), AsChars(images[0].second));
  EXPECT_EQ(*ReadFile(dir / "out/bms.bin"), AsChars(images[1].second));
  EXPECT_EQ(*ReadFile(dir / "out/empty.bin"), "");
}

TEST_F(PackageTest, TwoOfThreeThreshold) {
  Bytes archive = Pack({{"main", testing::RandomBytes(1000, 2)}}, Compression::kZstd, {0});
  auto two_of_three = Trust({0, 1, 2}, 2);
  EXPECT_THAT(ReadPackage(archive, &two_of_three),
              IsError(Code::kUntrusted, HasSubstr("1 of 2 required signatures")));

  ASSERT_THAT(WriteFileAtomic(dir / "p.aloft", AsChars(archive)), IsOk());
  ASSERT_THAT(AddSignatures(dir / "p.aloft", {&keys[3]}, clock_), IsOk());  // not in the trust set
  std::string text = *ReadFile(dir / "p.aloft");
  EXPECT_THAT(ReadPackage(Bytes(text.begin(), text.end()), &two_of_three),
              IsError(Code::kUntrusted, HasSubstr("is not trusted")));

  ASSERT_THAT(AddSignatures(dir / "p.aloft", {&keys[2]}, clock_), IsOk());
  text = *ReadFile(dir / "p.aloft");
  Bytes signed_twice(text.begin(), text.end());
  EXPECT_THAT(ReadPackage(signed_twice, &two_of_three), IsOk());
  // Re-signing with a key that already signed replaces its signature rather than adding one.
  ASSERT_THAT(AddSignatures(dir / "p.aloft", {&keys[2]}, clock_), IsOk());
  auto envelope = ParseEnvelope(AsChars(TarEntries(signed_twice)[0].data));
  EXPECT_EQ(envelope->signatures.size(), 3u);
  text = *ReadFile(dir / "p.aloft");
  envelope = ParseEnvelope(AsChars(TarEntries(Bytes(text.begin(), text.end()))[0].data));
  EXPECT_EQ(envelope->signatures.size(), 3u);
  // Payloads are carried over untouched.
  EXPECT_EQ(TarEntries(Bytes(text.begin(), text.end()))[1].data, TarEntries(archive)[1].data);
}

TEST_F(PackageTest, UntrustedKeyIsRefusedBeforeAnyPayloadByteIsRead) {
  Bytes archive = Pack({{"main", testing::RandomBytes(100'000, 3)}}, Compression::kNone, {3});
  // A source that records how far the reader got.
  class Counting final : public ByteSource {
   public:
    explicit Counting(ByteSpan d) : inner_(d) {}
    Result<size_t> Read(std::span<uint8_t> buf) override {
      auto n = inner_.Read(buf);
      if (n.ok()) total += *n;
      return n;
    }
    MemorySource inner_;
    uint64_t total = 0;
  } source(archive);
  auto trust = Trust({0}, 1);
  auto reader = PackageReader::Open(source, "p.aloft", &trust);
  EXPECT_THAT(reader, IsError(Code::kUntrusted, HasSubstr("p.aloft: 0 of 1")));
  size_t manifest_size = TarEntries(archive)[0].data.size();
  EXPECT_LE(source.total, 512 + manifest_size);  // the manifest entry, not one payload byte
}

// Every single-byte change anywhere in a package is caught, with the error that fits where it is.
TEST_F(PackageTest, EverySingleByteFlipIsCaught) {
  for (Compression compression : {Compression::kNone, Compression::kZstd}) {
    Bytes archive = Pack({{"main", testing::RandomBytes(700, 4)}, {"bms", testing::TextBytes(900)}},
                         compression);
    auto entries = TarEntries(archive);
    // Region boundaries: header, data, padding for each entry, then the trailer.
    struct Region {
      size_t begin, end;
      const char* kind;
    };
    std::vector<Region> regions;
    size_t off = 0;
    for (size_t i = 0; i < entries.size(); ++i) {
      size_t size = entries[i].data.size(), padded = (size + 511) / 512 * 512;
      regions.push_back({off, off + 512, "header"});
      regions.push_back({off + 512, off + 512 + size, i == 0 ? "manifest" : "payload"});
      regions.push_back({off + 512 + size, off + 512 + padded, "padding"});
      off += 512 + padded;
    }
    regions.push_back({off, archive.size(), "trailer"});
    ASSERT_EQ(off + 1024, archive.size());

    auto trust = Trust({0}, 1);
    size_t checked = 0;
    for (const Region& r : regions) {
      for (size_t i = r.begin; i < r.end; ++i) {
        for (uint8_t mask : {uint8_t{0x01}, uint8_t{0x80}}) {
          Bytes bad = archive;
          bad[i] ^= mask;
          Status s = ReadPackage(bad, &trust);
          ASSERT_FALSE(s.ok()) << r.kind << " byte " << i << " mask " << int(mask);
          std::string kind = r.kind;
          const Error& e = s.error();
          if (kind == "header") {
            EXPECT_THAT(e, IsError(Code::kMalformed, HasSubstr("checksum mismatch"))) << i;
          } else if (kind == "manifest") {
            // Broken JSON, broken canonical form or fields, a newer format, or content that no
            // longer matches its signature.
            EXPECT_THAT(e.code(), AnyOf(Code::kMalformed, Code::kUntrusted, Code::kUnsupported))
                << i << ": " << e.ToString();
          } else if (kind == "payload") {
            EXPECT_THAT(e, IsError(Code::kIntegrity, HasSubstr("sha256 mismatch"))) << i;
          } else if (kind == "padding") {
            EXPECT_THAT(e, IsError(Code::kMalformed, HasSubstr("non-zero padding"))) << i;
          } else {
            EXPECT_THAT(e, IsError(Code::kMalformed,
                                   AnyOf(HasSubstr("end-of-archive"), HasSubstr("lone zero block"),
                                         HasSubstr("checksum mismatch"))))
                << i;
          }
          ++checked;
        }
      }
    }
    EXPECT_EQ(checked, archive.size() * 2);
  }
}

TEST_F(PackageTest, TruncatedArchivesAreRefused) {
  Bytes archive = Pack({{"main", testing::RandomBytes(5000, 5)}}, Compression::kZstd);
  auto trust = Trust({0}, 1);
  for (size_t len = 0; len < archive.size(); len += (len % 512 == 0 ? 1 : 511 - len % 512 + 1)) {
    Bytes cut(archive.begin(), archive.begin() + len);
    EXPECT_THAT(
        ReadPackage(cut, &trust),
        IsError(Code::kMalformed, AnyOf(HasSubstr("truncated"), HasSubstr("empty archive"))))
        << "length " << len;
  }
}

TEST_F(PackageTest, EntriesOutOfOrderDuplicatedOrExtraAreRefused) {
  Bytes archive = Pack({{"main", testing::RandomBytes(3000, 6)}, {"bms", testing::TextBytes(3000)}},
                       Compression::kZstd);
  auto e = TarEntries(archive);
  auto trust = Trust({0}, 1);
  EXPECT_THAT(ReadPackage(archive, &trust), IsOk());

  EXPECT_THAT(ReadPackage(BuildTar({e[1], e[0], e[2]}), &trust),
              IsError(Code::kMalformed, HasSubstr("first entry is 'main.zst'")));
  EXPECT_THAT(ReadPackage(BuildTar({e[0], e[2], e[1]}), &trust),
              IsError(Code::kMalformed, HasSubstr("unexpected entry 'bms.zst'")));
  EXPECT_THAT(ReadPackage(BuildTar({e[0], e[1], e[1], e[2]}), &trust),
              IsError(Code::kMalformed, HasSubstr("duplicate entry 'main.zst'")));
  EXPECT_THAT(ReadPackage(BuildTar({e[0], e[0], e[1], e[2]}), &trust),
              IsError(Code::kMalformed, HasSubstr("duplicate entry 'manifest.json'")));
  EXPECT_THAT(ReadPackage(BuildTar({e[0], e[1], e[2], e[2]}), &trust),
              IsError(Code::kMalformed, HasSubstr("duplicate entry 'bms.zst' at offset")));
  EXPECT_THAT(ReadPackage(BuildTar({e[0], e[1], e[2], RawEntry{"extra", {1}}}), &trust),
              IsError(Code::kMalformed, HasSubstr("unexpected entry 'extra'")));
  EXPECT_THAT(ReadPackage(BuildTar({e[0], e[1]}), &trust),
              IsError(Code::kMalformed, HasSubstr("archive ends before payload 'bms.zst'")));
}

TEST_F(PackageTest, UnsafeEntryNamesAreRefused) {
  Bytes archive = Pack({{"main", testing::RandomBytes(100, 7)}}, Compression::kNone);
  auto e = TarEntries(archive);
  auto trust = Trust({0}, 1);
  for (std::string name : {"../evil", "/etc/passwd", "a/../../b", "./x"}) {
    Bytes evil = BuildTar({e[0]});
    evil.resize(evil.size() - 1024);  // drop the trailer, append a hand-made entry
    Bytes header = testing::RawHeader(name, 1);
    evil.insert(evil.end(), header.begin(), header.end());
    evil.push_back('x');
    evil.resize(evil.size() + 511 + 1024, 0);
    EXPECT_THAT(ReadPackage(evil, &trust),
                IsError(Code::kMalformed, HasSubstr("unsafe entry name")))
        << name;
  }
  // The same through a pax path record.
  std::string record = "19 path=../../evil\n";
  Bytes evil = BuildTar({e[0]});
  evil.resize(evil.size() - 1024);
  Bytes pax = testing::RawHeader("PaxHeaders/x", record.size(), 'x');
  evil.insert(evil.end(), pax.begin(), pax.end());
  evil.insert(evil.end(), record.begin(), record.end());
  evil.resize(evil.size() + 512 - record.size(), 0);
  Bytes header = testing::RawHeader("innocent", 0);
  evil.insert(evil.end(), header.begin(), header.end());
  evil.resize(evil.size() + 1024, 0);
  EXPECT_THAT(ReadPackage(evil, &trust),
              IsError(Code::kMalformed, HasSubstr("unsafe entry name '../../evil'")));
  // And symlinks or directories are not files.
  Bytes link = BuildTar({e[0]});
  link.resize(link.size() - 1024);
  Bytes lh = testing::RawHeader("main.bin", 0, '2');
  link.insert(link.end(), lh.begin(), lh.end());
  link.resize(link.size() + 1024, 0);
  EXPECT_THAT(ReadPackage(link, &trust), IsError(Code::kMalformed, HasSubstr("tar type '2'")));
}

TEST_F(PackageTest, SizeFieldLargerThanTheFileIsTruncation) {
  Bytes archive = Pack({{"main", testing::RandomBytes(700, 8)}}, Compression::kNone);
  auto e = TarEntries(archive);
  auto trust = Trust({0}, 1);
  // Rewrite the payload header to claim a million bytes; the file holds 700 and the trailer.
  size_t payload_header = 512 + (e[0].data.size() + 511) / 512 * 512;
  Bytes header = testing::RawHeader("main.bin", 1'000'000);
  Bytes bad = archive;
  std::copy(header.begin(), header.end(), bad.begin() + payload_header);
  EXPECT_THAT(ReadPackage(bad, &trust),
              IsError(Code::kIntegrity,
                      HasSubstr("is 1000000 bytes in the archive; the manifest says 700")));
  // Even if the manifest agreed, the file ends first.
  MemorySource src(bad);
  TarReader tar(src);
  ASSERT_THAT(tar.Next(), IsOk());
  ASSERT_THAT(tar.Next(), IsOk());
  Bytes buf(2'000'000);
  Result<size_t> n = size_t{0};
  uint64_t total = 0;
  while ((n = tar.Read(buf)).ok() && *n > 0) total += *n;
  EXPECT_EQ(total, bad.size() - payload_header - 512);  // all that follows, taken for data
  EXPECT_THAT(
      n, IsError(Code::kMalformed, HasSubstr("declares 1000000 bytes but the file ends after")));
}

TEST_F(PackageTest, NonCanonicalManifestIsRefused) {
  Bytes archive = Pack({{"main", testing::RandomBytes(100, 9)}}, Compression::kNone);
  auto e = TarEntries(archive);
  auto trust = Trust({0}, 1);
  std::string canonical = std::string(AsChars(e[0].data));
  nlohmann::json doc = nlohmann::json::parse(canonical);
  std::vector<std::string> variants = {
      doc.dump(1),       // whitespace
      canonical + "\n",  // trailing newline
      std::string(canonical).replace(canonical.find("\"fw\""), 4, "\"\\u0066w\""),  // an escape
  };
  for (const auto& text : variants) {
    EXPECT_THAT(
        ReadPackage(BuildTar({{"manifest.json", Bytes(text.begin(), text.end())}, e[1]}), &trust),
        IsError(Code::kMalformed, HasSubstr("not in canonical form")))
        << text.substr(0, 40);
  }
  // A repeated member is not JSON we accept at all.
  std::string dup = canonical;
  dup.insert(1, "\"signatures\":[],");
  EXPECT_THAT(
      ReadPackage(BuildTar({{"manifest.json", Bytes(dup.begin(), dup.end())}, e[1]}), &trust),
      IsError(Code::kMalformed, HasSubstr("appears twice")));
}

// Re-signs a modified manifest properly, so that only the modification is under test.
Bytes Resigned(const Bytes& archive, const crypto::PrivateKey& key,
               const std::function<void(nlohmann::json&)>& change) {
  auto e = TarEntries(archive);
  auto doc = nlohmann::json::parse(AsChars(e[0].data));
  change(doc["signed"]);
  Envelope env;
  env.manifest.signed_json = doc["signed"];
  EXPECT_THAT(Sign(env, key), IsOk());
  std::string text = SerializeEnvelope(env).value();
  e[0].data = Bytes(text.begin(), text.end());
  return BuildTar(e);
}

TEST_F(PackageTest, UnknownFieldsAreKeptAndSignedOver) {
  Bytes archive = Pack({{"main", testing::RandomBytes(100, 10)}}, Compression::kNone);
  auto trust = Trust({0}, 1);
  Bytes extended = Resigned(archive, keys[0], [](nlohmann::json& s) {
    s["x_release_notes"] = "fixes";
    s["components"][0]["x_ecu"] = {{"address", 1234}};
  });
  ASSERT_THAT(ReadPackage(extended, &trust), IsOk());
  // Adding a signature keeps them.
  ASSERT_THAT(WriteFileAtomic(dir / "ext.aloft", AsChars(extended)), IsOk());
  ASSERT_THAT(AddSignatures(dir / "ext.aloft", {&keys[1]}, clock_), IsOk());
  std::string text = *ReadFile(dir / "ext.aloft");
  auto doc = nlohmann::json::parse(AsChars(TarEntries(Bytes(text.begin(), text.end()))[0].data));
  EXPECT_EQ(doc["signed"]["x_release_notes"], "fixes");
  EXPECT_EQ(doc["signed"]["components"][0]["x_ecu"]["address"], 1234);
  EXPECT_THAT(ReadPackage(Bytes(text.begin(), text.end()), &trust), IsOk());
  // Changing one afterwards breaks the signature.
  std::string tampered = text;
  tampered.replace(tampered.find("fixes"), 5, "fixed");
  EXPECT_THAT(ReadPackage(Bytes(tampered.begin(), tampered.end()), &trust),
              IsError(Code::kUntrusted, HasSubstr("does not verify")));
}

TEST_F(PackageTest, UnknownMajorFormatIsRefusedKnownMinorIsRead) {
  Bytes archive = Pack({{"main", testing::RandomBytes(100, 11)}}, Compression::kNone);
  auto trust = Trust({0}, 1);
  EXPECT_THAT(ReadPackage(Resigned(archive, keys[0], [](auto& s) { s["format"] = "2.0"; }), &trust),
              IsError(Code::kUnsupported, HasSubstr("format 2.0 is not supported")));
  EXPECT_THAT(ReadPackage(Resigned(archive, keys[0], [](auto& s) { s["format"] = "1.7"; }), &trust),
              IsOk());
}

TEST_F(PackageTest, PayloadThatDecompressesBeyondItsDeclaredSizeIsStopped) {
  Bytes archive = Pack({{"main", testing::TextBytes(100'000)}}, Compression::kZstd);
  auto trust = Trust({0}, 1);
  Bytes lying = Resigned(archive, keys[0], [](auto& s) {
    s["components"][0]["payload"]["uncompressed_size"] = 1000;
    s["components"][0]["image"]["size"] = 1000;
  });
  CollectSink sink;
  EXPECT_THAT(ReadPackage(lying, &trust, &sink),
              IsError(Code::kIntegrity, HasSubstr("more than the 1000 bytes")));
  EXPECT_TRUE(sink.images.empty());
}

TEST_F(PackageTest, PackFailuresLeaveNothingBehind) {
  ASSERT_THAT(WriteFileAtomic(dir / "a.bin", "abc"), IsOk());
  PackOptions o;
  o.name = "fw";
  o.version = "1.0.0";
  o.hardware = {"board-a"};
  o.components = {{"main", dir / "a.bin"}, {"bms", dir / "missing.bin"}};
  o.keys = {&keys[0]};
  o.output = dir / "out.aloft";
  o.progress = Progress::Mode::kNever;
  ManualClock clock;
  EXPECT_THAT(pkg::Pack(o, clock), IsError(Code::kNotFound, HasSubstr("missing.bin")));
  std::vector<std::string> files;
  for (const auto& f : std::filesystem::directory_iterator(dir.path())) {
    files.push_back(f.path().filename().string());
  }
  EXPECT_EQ(files, std::vector<std::string>{"a.bin"});

  o.components = {{"main", dir / "a.bin"}};
  o.version = "1.0";
  EXPECT_THAT(pkg::Pack(o, clock), IsError(Code::kInvalidArgument, HasSubstr("--version")));
  o.version = "1.0.0";
  o.components = {{"main", dir / "a.bin"}, {"main", dir / "a.bin"}};
  EXPECT_THAT(pkg::Pack(o, clock), IsError(Code::kInvalidArgument, HasSubstr("given twice")));
  o.components = {{"../x", dir / "a.bin"}};
  EXPECT_THAT(pkg::Pack(o, clock), IsError(Code::kInvalidArgument, HasSubstr("not a valid name")));
  o.components = {{"main", dir / "a.bin"}};
  o.keys.clear();
  EXPECT_THAT(pkg::Pack(o, clock), IsError(Code::kInvalidArgument, HasSubstr("always signed")));
}

}  // namespace
}  // namespace aloft::pkg
