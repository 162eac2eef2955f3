// The .aloft package: a tar whose first entry is manifest.json, then one entry per component
// payload, in the manifest's order. See docs/package-format.md.
//
// Reading streams: the manifest is read and (given a trust set) its signatures verified before a
// single payload byte is read; each payload is then decompressed as it streams, hashed on the way,
// and handed to a PayloadSink, which learns that a component is good (End) only after its payload
// and image hashes matched. Nothing is loaded whole; memory does not grow with the package.
//
//   File f = File::OpenRead("fw.aloft").value();
//   ALOFT_ASSIGN_OR_RETURN(auto reader, PackageReader::Open(f, "fw.aloft", &trust));
//   ALOFT_RETURN_IF_ERROR(reader->ReadPayloads(my_flash_sink));
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/progress.h"
#include "crypto/trust.h"
#include "pkg/manifest.h"
#include "pkg/tar.h"

namespace aloft::pkg {

// Receives the payloads of a package in order.
class PayloadSink {
 public:
  virtual ~PayloadSink() = default;
  virtual Status Begin(const Component& c) = 0;
  // Decompressed payload bytes (for a full component: the image), or the raw archive bytes when
  // reading raw.
  virtual Status Write(ByteSpan data) = 0;
  // Called only after every hash and size of the component matched.
  virtual Status End(const Component& c) = 0;
};

class PackageReader {
 public:
  // Reads the first entry (manifest.json) of `source` and parses it. With `trust`, also verifies
  // the signatures and fails with kUntrusted when the threshold is not met; without, the manifest
  // is only parsed (for `inspect`). `origin` names the input in error messages.
  static Result<std::unique_ptr<PackageReader>> Open(ByteSource& source, std::string origin,
                                                     const crypto::TrustSet* trust);

  const Envelope& envelope() const { return envelope_; }
  const Manifest& manifest() const { return envelope_.manifest; }
  // Filled when opened with a trust set.
  const crypto::SignatureReport& signature_report() const { return report_; }

  // Streams every payload into `sink`, checking entry names and order, payload size and SHA-256,
  // decompressed size and, for full components, the image SHA-256; then checks the archive ends
  // right after the last payload. `raw` hands the sink the compressed bytes instead. `progress`,
  // if given, is told of every archive byte read. Call once.
  Status ReadPayloads(PayloadSink& sink, bool raw = false, Progress* progress = nullptr);

  // The sum of payload sizes: what ReadPayloads reads.
  uint64_t PayloadBytes() const;

  // The largest compression window ReadPayloads will decode (see compress.h); a payload that
  // needs more fails with kOutOfRange before anything of it reaches the sink's data.
  void set_max_window(uint64_t bytes) { max_window_ = bytes; }
  // The package's content key, for encrypted payloads (docs/encryption.md): decrypted as they
  // stream, each 64 KiB chunk verified before its bytes go on. Without it (or with another key)
  // an encrypted payload fails before the sink hears of it.
  void set_content_key(const crypto::ContentKey& key) { content_key_ = key; }
  // Without the content key, an encrypted payload is checked as stored (its size and SHA-256,
  // which the signatures cover: what anyone can verify) and not decoded; the sink gets nothing
  // of it. (Otherwise it fails.)
  void set_encrypted_as_stored(bool on) { encrypted_as_stored_ = on; }

 private:
  PackageReader(ByteSource& source, std::string origin)
      : tar_(source), origin_(std::move(origin)) {}
  Status ReadOne(const Component& c, PayloadSink& sink, bool raw, Progress* progress);

  TarReader tar_;
  std::string origin_;
  Envelope envelope_;
  crypto::SignatureReport report_;
  bool payloads_read_ = false;
  uint64_t max_window_ = kDefaultMaxWindow;
  std::optional<crypto::ContentKey> content_key_;
  bool encrypted_as_stored_ = false;
};

struct ComponentSource {
  std::string name;                            // component (module) name
  std::string path;                            // the image file
  std::optional<uint64_t> security_counter{};  // PackOptions::security_counter when unset
  nlohmann::json install{};                    // the component's install hints (an object), or null
};

struct PackOptions {
  std::string name;
  std::string version;
  std::vector<std::string> hardware;
  std::vector<ComponentSource> components;
  Compression compression = Compression::kZstd;
  std::optional<int> level;  // DefaultLevel(compression) if unset
  uint64_t window = 0;       // compression window (compress.h); 0: what the level implies
  uint64_t security_counter = 0;
  std::vector<const crypto::PrivateKey*> keys;
  // Encrypts every payload with this content key (docs/encryption.md); a new salt each.
  std::optional<crypto::ContentKey> content_key;
  // Members added to the signed object (an object, or null), such as a vehicle bundle's
  // "vehicle"; the package's own members win over them.
  nlohmann::json extra{};
  std::string output;
  Progress::Mode progress = Progress::Mode::kAuto;
};

// Writes a signed full package to `options.output`, atomically: on any failure no output (and no
// temporary file) is left. Input files are read once, in streaming fashion.
Status Pack(const PackOptions& options, const Clock& clock);

// Signs `m` (typed fields filled, payload sizes and hashes included) and writes the archive to
// `output` atomically; `write_payload(i, tar)` writes component i's payload bytes into `tar`.
// Pack uses it; so does the delta packager.
Status WriteArchive(Manifest m, const std::vector<const crypto::PrivateKey*>& keys,
                    const std::string& output, const Clock& clock,
                    const std::function<Status(size_t, TarWriter&)>& write_payload);

// Adds the signatures of `keys` to the package at `path` (replacing earlier ones by the same keys),
// atomically. Refuses a package whose payloads do not match its manifest. `clock` dates the tar
// headers.
Status AddSignatures(const std::string& path, const std::vector<const crypto::PrivateKey*>& keys,
                     const Clock& clock);

struct VerifyResult {
  Manifest manifest;
  crypto::SignatureReport signatures;
  size_t encrypted_as_stored = 0;  // encrypted payloads checked without their key
};

// Full verification: signatures against `trust`, then every payload streamed and checked. An
// encrypted payload is decrypted and checked to its image with `content_key`, else checked as
// stored (VerifyResult::encrypted_as_stored counts those).
Result<VerifyResult> VerifyPackage(const std::string& path, const crypto::TrustSet& trust,
                                   const Clock& clock,
                                   Progress::Mode progress = Progress::Mode::kAuto,
                                   const crypto::ContentKey* content_key = nullptr);

// Verifies, then writes each component's image to "<outdir>/<component>.bin". All images appear
// together only after everything verified; on failure none is written. Encrypted payloads need
// `content_key`.
Result<std::vector<std::string>> ExtractPackage(const std::string& path,
                                                const crypto::TrustSet& trust,
                                                const std::string& outdir, const Clock& clock,
                                                Progress::Mode progress = Progress::Mode::kAuto,
                                                const crypto::ContentKey* content_key = nullptr);

}  // namespace aloft::pkg
