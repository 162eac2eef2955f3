// manifest.json: the signed description of an .aloft package (docs/package-format.md).
//
//   {"signatures": [{"keyid": "...", "method": "ed25519", "sig": "<base64>"}],
//    "signed": {"_type": "aloft.package", "format": "1.0", "name": "fw", "version": "1.2.0",
//               "hardware": ["board-a"], "created": "...", "components": [...]}}
//
// Signatures are over the RFC 8785 canonical JSON of "signed", and the whole file is itself stored
// in canonical form, so each manifest has exactly one byte representation. Fields this version does
// not know are kept in `signed_json` and so stay covered by signatures when the package is
// re-signed.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/semver.h"
#include "crypto/aead_stream.h"
#include "crypto/trust.h"
#include "pkg/compress.h"

namespace aloft::pkg {

inline constexpr std::string_view kManifestType = "aloft.package";
inline constexpr std::string_view kManifestEntry = "manifest.json";
inline constexpr int kFormatMajor = 1;
inline constexpr int kFormatMinor = 0;
inline constexpr uint64_t kMaxManifestSize = 1 << 20;

struct PayloadInfo {
  std::string file;  // the tar entry holding the payload
  Compression compression = Compression::kZstd;
  uint64_t size = 0;               // bytes in the archive (compressed)
  std::string sha256;              // of those bytes
  uint64_t uncompressed_size = 0;  // bytes after decompression
};

struct ImageInfo {
  uint64_t size = 0;  // the installed image
  std::string sha256;
  std::string filename;  // the image's original file name (for people and the hawkBit API)
};

struct BaseInfo {  // delta components only: the image the delta applies to
  std::string version;
  uint64_t size = 0;
  std::string sha256;
};

// An encrypted payload (docs/encryption.md): the archive entry is the payload (compressed as
// `compression` says) sealed by crypto::ChunkSealer under the package's content key.
struct EncryptionInfo {
  crypto::PayloadSalt salt{};  // "salt": base64 of 16 bytes
  std::string key_id;          // "key_id": crypto::ContentKeyId of the content key
  uint64_t size = 0;           // "size": the payload's bytes before sealing
};
constexpr char kEncryptionMethod[] = "aes-256-gcm-chunked-64k";

enum class ComponentType { kFull, kDelta };

struct Component {
  std::string name;  // module / ECU, e.g. "main", "bms"
  ComponentType type = ComponentType::kFull;
  PayloadInfo payload;
  ImageInfo image;
  std::optional<BaseInfo> base;
  uint64_t security_counter = 0;  // anti-rollback: devices refuse a lower counter
  std::optional<EncryptionInfo> encryption;
  nlohmann::json install;  // free-form install hints, or null
};

struct Manifest {
  int format_major = kFormatMajor, format_minor = kFormatMinor;
  std::string name;
  SemVer version;
  std::vector<std::string> hardware;
  std::string created;
  std::vector<Component> components;
  nlohmann::json signed_json;  // exactly what is signed, unknown fields included
};

struct Envelope {
  Manifest manifest;
  std::vector<crypto::Signature> signatures;
};

// Builds `signed_json` from the typed fields (for packing).
nlohmann::json ToSignedJson(const Manifest& m);

// Validates and reads a "signed" object. Errors are kMalformed and name the field:
// "components[1].payload.sha256: expected 64 lower-case hex digits". An unknown major format
// version is kUnsupported.
Result<Manifest> ParseSigned(const nlohmann::json& signed_json);

// Parses manifest.json. Besides the checks of ParseSigned: the signature list's shape, and that the
// text is exactly the canonical JSON of what it holds (kMalformed otherwise).
Result<Envelope> ParseEnvelope(std::string_view text);

// The canonical text of the envelope, for writing manifest.json.
Result<std::string> SerializeEnvelope(const Envelope& e);

// The bytes signatures cover: the canonical JSON of signed_json.
Result<std::string> SigningInput(const Manifest& m);

// Adds (or replaces) the signature of `key`.
Status Sign(Envelope& e, const crypto::PrivateKey& key);

// Checks the signatures against `trust` (see crypto::TrustSet::Check).
Status VerifySignatures(const Envelope& e, const crypto::TrustSet& trust,
                        crypto::SignatureReport* report = nullptr);

// Package and component names ([A-Za-z0-9][A-Za-z0-9._-], at most 64) and payload file names
// (the same, at most 100).
bool IsValidName(std::string_view name, size_t max_length = 64);

}  // namespace aloft::pkg
