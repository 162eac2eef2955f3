#include "pkg/delta_package.h"

#include <cstring>
#include <map>

#include "core/file.h"
#include "core/hash.h"
#include "crypto/aead_stream.h"

namespace aloft::pkg {
namespace {

// Collects each verified component image in memory (the diff needs both whole).
class ImageCollector final : public PayloadSink {
 public:
  Status Begin(const Component&) override {
    current_.clear();
    return OkStatus();
  }
  Status Write(ByteSpan data) override {
    current_.insert(current_.end(), data.begin(), data.end());
    return OkStatus();
  }
  Status End(const Component& c) override {
    images_[c.name] = std::move(current_);
    return OkStatus();
  }
  std::map<std::string, Bytes>& images() { return images_; }

 private:
  Bytes current_;
  std::map<std::string, Bytes> images_;
};

struct LoadedPackage {
  Manifest manifest;
  std::map<std::string, Bytes> images;
};

Result<LoadedPackage> Load(const std::string& path, const crypto::TrustSet* trust,
                           const std::optional<crypto::ContentKey>& key, const char* key_option) {
  ALOFT_ASSIGN_OR_RETURN(File in, File::OpenRead(path));
  ALOFT_ASSIGN_OR_RETURN(auto reader, PackageReader::Open(in, path, trust));
  for (const Component& c : reader->manifest().components) {
    if (c.type != ComponentType::kFull) {
      return Error(Code::kInvalidArgument, path + ": component '" + c.name +
                                               "' is a delta; deltas are made between full "
                                               "packages");
    }
    if (c.encryption && !key) {
      return Error(Code::kInvalidArgument,
                   path + ": component '" + c.name + "' is encrypted (content key " +
                       c.encryption->key_id + "): give its content key (" + key_option + ")");
    }
  }
  if (key) reader->set_content_key(*key);
  ImageCollector images;
  ALOFT_RETURN_IF_ERROR(reader->ReadPayloads(images));  // its errors name `path`
  return LoadedPackage{reader->manifest(), std::move(images.images())};
}

}  // namespace

Result<bool> LooksLikePackage(const std::string& path) {
  ALOFT_ASSIGN_OR_RETURN(File f, File::OpenRead(path));
  uint8_t name[100] = {};
  ALOFT_ASSIGN_OR_RETURN(size_t n, f.Read(name));
  return n == sizeof name && std::memcmp(name, kManifestEntry.data(), kManifestEntry.size()) == 0 &&
         name[kManifestEntry.size()] == 0;
}

Result<std::vector<DeltaComponentReport>> MakeDeltaPackage(const DeltaPackageOptions& o,
                                                           const Clock& clock) {
  if (o.keys.empty()) return Error(Code::kInvalidArgument, "at least one --key is needed");
  ALOFT_ASSIGN_OR_RETURN(LoadedPackage from, Load(o.from, o.trust, o.from_key, "--from-key"));
  ALOFT_ASSIGN_OR_RETURN(LoadedPackage to, Load(o.to, o.trust, o.to_key, "--to-key"));
  if (from.manifest.name != to.manifest.name) {
    return Error(Code::kInvalidArgument, "the packages are of different software ('" +
                                             from.manifest.name + "' and '" + to.manifest.name +
                                             "')");
  }
  if (!(from.manifest.version < to.manifest.version)) {
    return Error(Code::kInvalidArgument, "the target version " + to.manifest.version.ToString() +
                                             " is not newer than the base's " +
                                             from.manifest.version.ToString());
  }

  Manifest m;
  m.signed_json = to.manifest.signed_json;  // members of its own (a vehicle bundle's) carry over
  m.name = to.manifest.name;
  m.version = to.manifest.version;
  m.hardware = to.manifest.hardware;
  m.created = FormatRfc3339(clock.Wall());
  std::vector<Bytes> patches;
  std::vector<DeltaComponentReport> report;
  for (const Component& tc : to.manifest.components) {
    const Component* fc = nullptr;
    for (const Component& c : from.manifest.components) {
      if (c.name == tc.name) fc = &c;
    }
    if (fc == nullptr) {
      return Error(Code::kInvalidArgument, "component '" + tc.name + "' of " + o.to +
                                               " is not in " + o.from +
                                               ": a delta needs a base for every component");
    }
    const Bytes& base = from.images[fc->name];
    const Bytes& target = to.images[tc.name];
    Result<Bytes> patch = delta::Diff(base, target, o.diff);
    if (!patch.ok()) return patch.error().WithContext("component '" + tc.name + "'");
    Component c;
    c.name = tc.name;
    c.type = ComponentType::kDelta;
    c.security_counter = tc.security_counter;
    c.install = tc.install;
    c.image = tc.image;
    // A component with a version of its own (a vehicle bundle's ECU: install.version) names it as
    // the base's; otherwise the base is the package's version.
    std::string base_version = from.manifest.version.ToString();
    if (fc->install.is_object() && fc->install.contains("version") &&
        fc->install["version"].is_string()) {
      base_version = fc->install["version"].get<std::string>();
    }
    c.base = BaseInfo{base_version, fc->image.size, fc->image.sha256};
    c.payload.file = tc.name + ".delta";
    c.payload.compression = Compression::kNone;  // the patch's streams are compressed inside
    c.payload.uncompressed_size = patch->size();
    if (tc.encryption) {  // sealed as the target's payload was: its key, a salt of its own
      const crypto::PayloadSalt salt = crypto::NewPayloadSalt();
      Bytes sealed;
      sealed.reserve(crypto::SealedSize(patch->size()));
      crypto::ChunkSealer sealer(*o.to_key, salt, [&](ByteSpan b) {
        sealed.insert(sealed.end(), b.begin(), b.end());
        return OkStatus();
      });
      ALOFT_RETURN_IF_ERROR(sealer.Write(*patch));
      ALOFT_RETURN_IF_ERROR(sealer.Finish());
      c.encryption =
          EncryptionInfo{.salt = salt, .key_id = tc.encryption->key_id, .size = patch->size()};
      *patch = std::move(sealed);
    }
    c.payload.size = patch->size();
    c.payload.sha256 = Sha256Hex(*patch);
    m.components.push_back(std::move(c));
    report.push_back({tc.name, tc.image.size, patch->size(), tc.encryption.has_value()});
    patches.push_back(std::move(*patch));
  }
  ALOFT_RETURN_IF_ERROR(
      WriteArchive(std::move(m), o.keys, o.output, clock,
                   [&](size_t i, TarWriter& tar) -> Status { return tar.Write(patches[i]); }));
  return report;
}

}  // namespace aloft::pkg
