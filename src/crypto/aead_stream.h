// Chunked AES-256-GCM for payloads (docs/encryption.md): a payload of any length is sealed in
// chunks of 64 KiB of plaintext, each with its own 16-byte tag, so a device decrypts it as it
// streams, with memory independent of the payload, and never acts on a byte that did not verify.
//
//   payload key = HKDF-SHA256(ikm = the content key, salt = the payload's 16-byte salt,
//                             info = "aloft payload v1")
//   chunk i     = AES-256-GCM(payload key, nonce = 00 00 00 || i (8 bytes, big-endian) || last,
//                             plaintext = up to 64 KiB, no associated data) || tag
//
// `last` is 01 for the final chunk and 00 for every other, so a stream cut at a chunk boundary
// fails (its new last chunk was sealed as not last), chunks swapped fail (their index is in the
// nonce), and a payload moved to another component fails (another salt, another key). Every
// chunk but the last holds exactly 64 KiB; the last holds 0 to 64 KiB (an empty payload is one
// empty last chunk: its tag alone). The ciphertext is 16 bytes per started chunk longer.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "core/encoding.h"
#include "core/error.h"

namespace aloft::crypto {

constexpr size_t kChunkPlain = 64 * 1024;
constexpr size_t kChunkTag = 16;
constexpr size_t kSaltSize = 16;

using ContentKey = std::array<uint8_t, 32>;
using PayloadSalt = std::array<uint8_t, kSaltSize>;

ContentKey NewContentKey();
PayloadSalt NewPayloadSalt();

// RFC 5869 HKDF with SHA-256: `length` bytes (at most 8160) from `ikm`, `salt` and `info`.
Bytes HkdfSha256(ByteSpan ikm, ByteSpan salt, std::string_view info, size_t length);

// A content key's id (16 hex digits of HKDF(key, info "aloft content key id")): names the key
// in manifests and on the server without revealing it.
std::string ContentKeyId(const ContentKey& key);

// The ciphertext length for `plain` bytes of payload.
uint64_t SealedSize(uint64_t plain);

// Receives each piece of output as it is made.
using Sink = std::function<Status(ByteSpan)>;

// Seals a stream: Write() plaintext in pieces of any size, then Finish() once.
class ChunkSealer {
 public:
  ChunkSealer(const ContentKey& key, const PayloadSalt& salt, Sink out);
  ~ChunkSealer();
  Status Write(ByteSpan plain);
  Status Finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Opens a stream: Write() ciphertext in pieces of any size; plaintext goes to `out` a chunk at a
// time, only once its tag verified. Finish() opens the last chunk. kIntegrity names the chunk
// that failed (tampered, reordered, cut short, another key) or the stream's extra bytes; after
// an error nothing more is accepted.
class ChunkOpener {
 public:
  ChunkOpener(const ContentKey& key, const PayloadSalt& salt, Sink out);
  ~ChunkOpener();
  Status Write(ByteSpan sealed);
  Status Finish();
  uint64_t plain_bytes() const;  // plaintext delivered so far

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace aloft::crypto
