// Helpers for package tests: keys, images, packing into memory, and taking archives apart and
// putting them back together (in the right order or deliberately not).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "crypto/keys.h"
#include "pkg/package.h"
#include "support/temp_dir.h"

namespace aloft::testing {

struct RawEntry {
  std::string name;
  Bytes data;
};

// Deterministic pseudo-random bytes.
Bytes RandomBytes(size_t n, uint32_t seed);
// Text-like bytes that compress well.
Bytes TextBytes(size_t n);

// Reads every entry of a tar archive (no package checks).
std::vector<RawEntry> TarEntries(const Bytes& archive);
// Writes entries as a well-formed tar archive.
Bytes BuildTar(const std::vector<RawEntry>& entries);
// A ustar header block with an arbitrary name (even an unsafe one) and a valid checksum.
Bytes RawHeader(const std::string& name, uint64_t size, char type = '0');

// Collects the payloads a reader hands out.
class CollectSink final : public pkg::PayloadSink {
 public:
  Status Begin(const pkg::Component& c) override;
  Status Write(ByteSpan data) override;
  Status End(const pkg::Component& c) override;
  std::vector<std::pair<std::string, Bytes>> images;  // name -> bytes, ended components only
  std::vector<std::string> begun;

 private:
  Bytes current_;
};

// Opens `archive` with `trust` (or unverified when null) and reads all payloads.
Status ReadPackage(const Bytes& archive, const crypto::TrustSet* trust, CollectSink* sink = nullptr,
                   const crypto::ContentKey* content_key = nullptr);

class PackageFixture {
 public:
  PackageFixture();
  // Packs the given components (name -> bytes) with keys_[i] for i in `signers`.
  Bytes Pack(const std::vector<std::pair<std::string, Bytes>>& components,
             pkg::Compression compression, std::vector<int> signers = {0},
             const std::string& version = "1.2.0");
  // The delta package from package `from` to package `to`, signed by keys_[i] for i in `signers`.
  // Encrypted packages need their content keys (the delta is sealed with `to_key`).
  Bytes Delta(const Bytes& from, const Bytes& to, std::vector<int> signers = {0},
              std::optional<crypto::ContentKey> from_key = std::nullopt,
              std::optional<crypto::ContentKey> to_key = std::nullopt);
  crypto::TrustSet Trust(std::vector<int> keys, size_t threshold) const;

  // Set: Pack encrypts every payload with it (docs/encryption.md).
  std::optional<crypto::ContentKey> content_key;
  TempDir dir;
  std::vector<crypto::PrivateKey> keys;
};

}  // namespace aloft::testing
