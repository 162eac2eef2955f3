// What the gateway keeps besides the campaign's journal, in its state directory: each ECU's image
// as it runs (backup/ECU.bin and backup/ECU.json: a single-bank ECU's backup, any ECU's next
// delta base) and the anti-rollback counters each ECU was updated with (counters.json); and a
// bundle file read whole.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>

#include "core/encoding.h"
#include "core/error.h"
#include "core/io.h"
#include "crypto/aead_stream.h"
#include "crypto/trust.h"
#include "pkg/manifest.h"
#include "vehicle/bundle.h"
#include "vehicle/inventory.h"

namespace aloft::vehicle {

// The content key of an encrypted bundle, given its manifest (docs/encryption.md): nullopt when
// nothing in it is encrypted; an error says why there is no key.
using ContentKeyFor =
    std::function<Result<std::optional<crypto::ContentKey>>(const pkg::Manifest& manifest)>;

// A bundle read whole: its signatures checked against `trust` (not when null), each payload
// streamed (decrypted with `key_for`'s key when encrypted) and its hashes checked, the payloads
// kept (an image, or a delta's patch).
// With `keep_sealed` (asked for each encrypted full component), the payloads it chooses are kept
// as stored too (compressed, sealed), for an ECU that decrypts itself (docs/encryption.md).
struct SealedPayload {
  Bytes bytes;
  crypto::PayloadSalt salt{};
  uint8_t compression = 0;  // as 34's data format names it: 0 none, 1 zstd, 2 xz
};
struct BundleFile {
  VehicleBundle bundle;
  std::map<std::string, Bytes> images;
  std::map<std::string, SealedPayload> sealed;
  std::optional<crypto::ContentKey> key;  // the content key, for an encrypted bundle
};
Result<BundleFile> ReadBundleFile(
    const std::string& path, const crypto::TrustSet* trust, const ContentKeyFor& key_for = nullptr,
    const std::function<bool(const pkg::Component&)>& keep_sealed = nullptr);

class ImageStore {
 public:
  explicit ImageStore(std::string state_dir) : dir_(std::move(state_dir)) {}

  // The copy of an ECU's image and its version, when its SHA-256 still matches.
  std::optional<std::pair<Bytes, std::string>> Load(const std::string& ecu) const;
  // Written a chunk at a time from `image` (an image rebuilt from a delta is never whole).
  Status Save(const std::string& ecu, RandomAccessSource& image, const std::string& version);

  Counters LoadCounters() const;
  // Each ECU's counter raised to `updated`'s where that is higher.
  Status RaiseCounters(const Counters& updated);

 private:
  std::string Path(const std::string& name) const { return dir_ + "/" + name; }
  std::string dir_;
};

}  // namespace aloft::vehicle
