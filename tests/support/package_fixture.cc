#include "support/package_fixture.h"

#include <cstring>
#include <random>
#include <stdexcept>

#include "core/clock.h"
#include "core/file.h"
#include "pkg/delta_package.h"
#include "pkg/tar.h"

namespace aloft::testing {

Bytes RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  Bytes b(n);
  for (auto& c : b) c = uint8_t(rng());
  return b;
}

Bytes TextBytes(size_t n) {
  std::string s;
  for (int i = 0; s.size() < n; ++i) s += "line " + std::to_string(i) + " of the firmware log\n";
  s.resize(n);
  return Bytes(s.begin(), s.end());
}

std::vector<RawEntry> TarEntries(const Bytes& archive) {
  MemorySource src(archive);
  pkg::TarReader tar(src);
  std::vector<RawEntry> out;
  while (true) {
    auto next = tar.Next();
    if (!next.ok()) throw std::runtime_error(next.error().ToString());
    if (!next->has_value()) break;
    RawEntry e{(*next)->name, Bytes((*next)->size)};
    size_t done = 0;
    while (done < e.data.size()) {
      done += tar.Read(std::span<uint8_t>(e.data.data() + done, e.data.size() - done)).value();
    }
    out.push_back(std::move(e));
  }
  return out;
}

Bytes BuildTar(const std::vector<RawEntry>& entries) {
  MemorySink sink;
  pkg::TarWriter tar(sink, 1700000000);
  for (const auto& e : entries) {
    if (!tar.BeginEntry(e.name, e.data.size()).ok() || !tar.Write(e.data).ok() ||
        !tar.EndEntry().ok()) {
      throw std::runtime_error("BuildTar failed");
    }
  }
  if (!tar.Finish().ok()) throw std::runtime_error("BuildTar failed");
  return sink.Take();
}

Bytes RawHeader(const std::string& name, uint64_t size, char type) {
  Bytes b(512, 0);
  std::memcpy(b.data(), name.data(), std::min<size_t>(name.size(), 100));
  std::snprintf(reinterpret_cast<char*>(b.data() + 100), 8, "%07o", 0644);
  std::snprintf(reinterpret_cast<char*>(b.data() + 124), 12, "%011llo",
                static_cast<unsigned long long>(size));
  b[156] = uint8_t(type);
  std::memcpy(b.data() + 257,
              "ustar\0"
              "00",
              8);
  unsigned sum = 0;
  for (size_t i = 0; i < 512; ++i) sum += (i >= 148 && i < 156) ? ' ' : b[i];
  std::snprintf(reinterpret_cast<char*>(b.data() + 148), 8, "%06o", sum);
  b[155] = ' ';
  return b;
}

Status CollectSink::Begin(const pkg::Component& c) {
  begun.push_back(c.name);
  current_.clear();
  return OkStatus();
}
Status CollectSink::Write(ByteSpan data) {
  current_.insert(current_.end(), data.begin(), data.end());
  return OkStatus();
}
Status CollectSink::End(const pkg::Component& c) {
  images.emplace_back(c.name, std::move(current_));
  current_.clear();
  return OkStatus();
}

Status ReadPackage(const Bytes& archive, const crypto::TrustSet* trust, CollectSink* sink,
                   const crypto::ContentKey* content_key) {
  MemorySource src(archive);
  ALOFT_ASSIGN_OR_RETURN(auto reader, pkg::PackageReader::Open(src, "test.aloft", trust));
  if (content_key) reader->set_content_key(*content_key);
  CollectSink local;
  return reader->ReadPayloads(sink != nullptr ? *sink : local);
}

PackageFixture::PackageFixture() {
  for (int i = 0; i < 4; ++i)
    keys.push_back(crypto::PrivateKey::Generate(crypto::KeyType::kEd25519).value());
}

Bytes PackageFixture::Pack(const std::vector<std::pair<std::string, Bytes>>& components,
                           pkg::Compression compression, std::vector<int> signers,
                           const std::string& version) {
  pkg::PackOptions o;
  o.name = "fw";
  o.version = version;
  o.hardware = {"board-a"};
  o.compression = compression;
  o.progress = Progress::Mode::kNever;
  o.content_key = content_key;
  for (const auto& [name, bytes] : components) {
    std::string path = dir / (name + ".img");
    if (!WriteFileAtomic(path, AsChars(bytes)).ok()) throw std::runtime_error("write image");
    o.components.push_back({name, path});
  }
  for (int s : signers) o.keys.push_back(&keys[s]);
  o.output = dir / "out.aloft";
  ManualClock clock(std::chrono::system_clock::time_point(std::chrono::seconds(1700000000)));
  Status packed = pkg::Pack(o, clock);
  if (!packed.ok()) throw std::runtime_error(packed.error().ToString());
  std::string text = ReadFile(o.output, 1 << 30).value();
  return Bytes(text.begin(), text.end());
}

Bytes PackageFixture::Delta(const Bytes& from, const Bytes& to, std::vector<int> signers,
                            std::optional<crypto::ContentKey> from_key,
                            std::optional<crypto::ContentKey> to_key) {
  pkg::DeltaPackageOptions o;
  o.from_key = from_key;
  o.to_key = to_key;
  o.from = dir / "from.aloft";
  o.to = dir / "to.aloft";
  o.output = dir / "delta.aloft";
  if (!WriteFileAtomic(o.from, AsChars(from)).ok() || !WriteFileAtomic(o.to, AsChars(to)).ok()) {
    throw std::runtime_error("write packages");
  }
  for (int s : signers) o.keys.push_back(&keys[s]);
  ManualClock clock(std::chrono::system_clock::time_point(std::chrono::seconds(1700000000)));
  auto made = pkg::MakeDeltaPackage(o, clock);
  if (!made.ok()) throw std::runtime_error(made.error().ToString());
  std::string text = ReadFile(o.output, 1 << 30).value();
  return Bytes(text.begin(), text.end());
}

crypto::TrustSet PackageFixture::Trust(std::vector<int> which, size_t threshold) const {
  crypto::TrustSet t;
  for (int i : which) t.Add(keys[i].public_key());
  t.set_threshold(threshold);
  return t;
}

}  // namespace aloft::testing
