#include "vehicle/store.h"

#include <nlohmann/json.hpp>

#include "core/file.h"
#include "core/hash.h"
#include "pkg/package.h"

namespace aloft::vehicle {

namespace {

constexpr uint64_t kMaxImage = 64 << 20;

// Keeps each component's payload in memory: a full image (the ECUs' images are small next to the
// gateway's RAM), or a delta's patch (its image is rebuilt as it is flashed, never whole).
class ImageSink final : public pkg::PayloadSink {
 public:
  Status Begin(const pkg::Component& c) override {
    if (c.image.size > kMaxImage) {
      return Error(Code::kOutOfRange, c.name + ": an image of " + std::to_string(c.image.size) +
                                          " bytes is above the gateway's limit");
    }
    current_.clear();
    current_.reserve(c.type == pkg::ComponentType::kDelta ? c.payload.size : c.image.size);
    return OkStatus();
  }
  Status Write(ByteSpan data) override {
    current_.insert(current_.end(), data.begin(), data.end());
    return OkStatus();
  }
  Status End(const pkg::Component& c) override {
    images[c.name] = std::move(current_);
    current_ = {};
    return OkStatus();
  }
  std::map<std::string, Bytes> images;

 private:
  Bytes current_;
};

Counters ReadCounters(const std::string& path) {
  Counters c;
  auto text = ReadFile(path, 1 << 20);
  if (!text.ok()) return c;
  auto j = nlohmann::json::parse(*text, nullptr, false);
  if (!j.is_object()) return c;
  for (const auto& [k, v] : j.items()) {
    if (v.is_number_unsigned()) c[k] = v.get<uint64_t>();
  }
  return c;
}

}  // namespace

Result<BundleFile> ReadBundleFile(const std::string& path, const crypto::TrustSet* trust,
                                  const ContentKeyFor& key_for,
                                  const std::function<bool(const pkg::Component&)>& keep_sealed) {
  BundleFile out;
  ALOFT_ASSIGN_OR_RETURN(File f, File::OpenRead(path));
  ALOFT_ASSIGN_OR_RETURN(auto reader, pkg::PackageReader::Open(f, path, trust));
  if (key_for) {
    auto key = key_for(reader->manifest());
    if (!key.ok()) return std::move(key).error().WithContext(path);
    out.key = *key;
    if (*key) reader->set_content_key(**key);
  }
  ALOFT_ASSIGN_OR_RETURN(out.bundle, ReadBundle(reader->manifest(), path));
  ImageSink sink;
  ALOFT_RETURN_IF_ERROR(reader->ReadPayloads(sink));
  out.images = std::move(sink.images);
  // Every image was opened and checked above; the sealed payloads of the ECUs that decrypt
  // themselves are read again as stored (their size and SHA-256 checked again).
  std::map<std::string, const pkg::Component*> chosen;
  for (const pkg::Component& c : reader->manifest().components) {
    if (out.key && c.encryption && c.type == pkg::ComponentType::kFull && keep_sealed &&
        keep_sealed(c)) {
      chosen[c.name] = &c;
    }
  }
  if (chosen.empty()) return out;
  ALOFT_ASSIGN_OR_RETURN(File again, File::OpenRead(path));
  ALOFT_ASSIGN_OR_RETURN(auto raw, pkg::PackageReader::Open(again, path, nullptr));
  if (raw->manifest().signed_json != reader->manifest().signed_json) {
    return Error(Code::kIntegrity, path + ": changed while it was read");
  }
  ImageSink stored;
  ALOFT_RETURN_IF_ERROR(raw->ReadPayloads(stored, /*raw=*/true));
  for (const auto& [name, c] : chosen) {
    SealedPayload& p = out.sealed[name];
    p.bytes = std::move(stored.images[name]);
    p.salt = c->encryption->salt;
    p.compression = c->payload.compression == pkg::Compression::kZstd   ? 1
                    : c->payload.compression == pkg::Compression::kLzma ? 2
                                                                        : 0;
  }
  return out;
}

// The store's copy of an ECU's image and its version, when its SHA-256 still matches.
std::optional<std::pair<Bytes, std::string>> ImageStore::Load(const std::string& ecu) const {
  auto text = ReadFile(Path("backup/" + ecu + ".json"), 1 << 16);
  auto image = ReadFile(Path("backup/" + ecu + ".bin"), kMaxImage);
  if (!text.ok() || !image.ok()) return std::nullopt;
  auto j = nlohmann::json::parse(*text, nullptr, false);
  if (!j.is_object() || Sha256Hex(AsBytes(*image)) != j.value("sha256", "")) return std::nullopt;
  return std::make_pair(Bytes(image->begin(), image->end()), j.value("version", ""));
}

Status ImageStore::Save(const std::string& ecu, RandomAccessSource& image,
                        const std::string& version) {
  const std::string path = Path("backup/" + ecu + ".bin");
  ALOFT_ASSIGN_OR_RETURN(AtomicFile out, AtomicFile::Create(path, 0600));
  Hasher sha(HashAlgorithm::kSha256);
  Bytes chunk(64 * 1024);
  for (uint64_t at = 0; at < image.size();) {
    const auto part = std::span(chunk).first(std::min<uint64_t>(chunk.size(), image.size() - at));
    ALOFT_RETURN_IF_ERROR(image.ReadAt(at, part));
    sha.Update(part);
    ALOFT_RETURN_IF_ERROR(out.Write(part));
    at += part.size();
  }
  ALOFT_RETURN_IF_ERROR(out.Commit());
  return WriteFileAtomic(
      Path("backup/" + ecu + ".json"),
      nlohmann::json{{"version", version}, {"sha256", sha.FinishHex()}}.dump() + "\n", 0600);
}

Counters ImageStore::LoadCounters() const { return ReadCounters(Path("counters.json")); }

Status ImageStore::RaiseCounters(const Counters& updated) {
  Counters c = LoadCounters();
  for (const auto& [ecu, n] : updated) c[ecu] = std::max(c[ecu], n);
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [ecu, n] : c) j[ecu] = n;
  return WriteFileAtomic(Path("counters.json"), j.dump(2) + "\n", 0600);
}

}  // namespace aloft::vehicle
