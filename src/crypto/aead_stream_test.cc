// Chunked AES-256-GCM (docs/encryption.md): a known answer made by an independent
// implementation, round trips over every chunk boundary with writes cut anywhere, and each way a
// stream can be broken (a changed byte, chunks swapped, cut short at or between chunk
// boundaries, bytes added, another key or salt) refused without delivering a byte of the chunk
// that failed.
#include "crypto/aead_stream.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>

#include "core/hash.h"
#include "support/matchers.h"

namespace aloft::crypto {
namespace {

using ::testing::_;
using ::testing::HasSubstr;

ContentKey TestKey() {
  ContentKey k;
  for (size_t i = 0; i < k.size(); ++i) k[i] = static_cast<uint8_t>(i);
  return k;
}
PayloadSalt TestSalt() {
  PayloadSalt s;
  for (size_t i = 0; i < s.size(); ++i) s[i] = static_cast<uint8_t>(i);
  return s;
}
Bytes Pattern(size_t n) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>((i * 7) % 251);
  return b;
}

// Feeds `data` to `write` in pieces whose sizes `rng` draws from `sizes`.
template <typename Write>
Status Feed(ByteSpan data, std::mt19937& rng, const std::vector<size_t>& sizes, Write write) {
  while (!data.empty()) {
    const size_t n = std::min(data.size(), sizes[rng() % sizes.size()]);
    ALOFT_RETURN_IF_ERROR(write(data.first(n)));
    data = data.subspan(n);
  }
  return OkStatus();
}

Bytes Seal(ByteSpan plain, const ContentKey& key = TestKey(), const PayloadSalt& salt = TestSalt(),
           std::vector<size_t> pieces = {1 << 20}, uint32_t seed = 1) {
  Bytes out;
  ChunkSealer s(key, salt, [&](ByteSpan b) {
    out.insert(out.end(), b.begin(), b.end());
    return OkStatus();
  });
  std::mt19937 rng(seed);
  EXPECT_THAT(Feed(plain, rng, pieces, [&](ByteSpan b) { return s.Write(b); }), IsOk());
  EXPECT_THAT(s.Finish(), IsOk());
  return out;
}

struct Opened {
  Status status;
  Bytes plain;
};
Opened Open(ByteSpan sealed, const ContentKey& key = TestKey(),
            const PayloadSalt& salt = TestSalt(), std::vector<size_t> pieces = {1 << 20},
            uint32_t seed = 2) {
  Opened o;
  ChunkOpener op(key, salt, [&](ByteSpan b) {
    o.plain.insert(o.plain.end(), b.begin(), b.end());
    return OkStatus();
  });
  std::mt19937 rng(seed);
  o.status = Feed(sealed, rng, pieces, [&](ByteSpan b) { return op.Write(b); });
  if (o.status.ok()) o.status = op.Finish();
  return o;
}

// The same stream made by Python's `cryptography` (HKDF and AESGCM of OpenSSL's bindings, used
// as the format's description says): 70,000 bytes, two chunks.
TEST(AeadStream, KnownAnswer_AsAnIndependentImplementationSealsIt) {
  const Bytes sealed = Seal(Pattern(70000));
  ASSERT_EQ(sealed.size(), 70032u);
  EXPECT_EQ(SealedSize(70000), 70032u);
  EXPECT_EQ(HexEncode(ByteSpan(sealed).first(16)), "bfe425faeddd3aa610d5b3ce17f631ec");
  EXPECT_EQ(HexEncode(ByteSpan(sealed).last(16)), "5eb23ff73a9114d5b7aa4a8e570eeda2");
  EXPECT_EQ(Sha256Hex(sealed), "b58d9a074181b30446ff945ffee0965fec476410ac877ee4410f37c822d35dc0");
}

// Property: for every length around the chunk boundaries, and writes on either side cut at
// random sizes (1 byte to more than a chunk), the stream opens to what was sealed.
TEST(AeadStream, RoundTrip_AcrossChunkBoundaries_WithWritesOfAnySize) {
  const size_t C = kChunkPlain, T = kChunkTag;
  const std::vector<size_t> lengths = {0,     1,     T - 1,     T,     T + 1,     C - 1,        C,
                                       C + 1, C + T, 2 * C - 1, 2 * C, 2 * C + 1, 3 * C + 12345};
  const std::vector<std::vector<size_t>> pieces = {{1, 2, 3, 1000},
                                                   {C - 1, C, C + 1},
                                                   {C + T - 1, C + T, C + T + 1},
                                                   {7, C + T + 1, 4096},
                                                   {1 << 22}};
  uint32_t seed = 0;
  for (size_t n : lengths) {
    const Bytes plain = Pattern(n);
    for (const auto& p : pieces) {
      ++seed;
      const Bytes sealed = Seal(plain, TestKey(), TestSalt(), p, seed);
      ASSERT_EQ(sealed.size(), SealedSize(n)) << n;
      for (const auto& q : pieces) {
        Opened o = Open(sealed, TestKey(), TestSalt(), q, seed * 31);
        ASSERT_THAT(o.status, IsOk()) << "length " << n;
        ASSERT_EQ(o.plain, plain) << "length " << n;
      }
    }
  }
}

// A changed byte anywhere (a chunk's body or its tag, in any chunk) is refused, and nothing of
// the chunk that failed, or after it, is delivered.
TEST(AeadStream, Tampered_AnyByteOfAnyChunk) {
  const Bytes plain = Pattern(2 * kChunkPlain + 500);
  const Bytes sealed = Seal(plain);
  const size_t S = kChunkPlain + kChunkTag;
  for (size_t at :
       {size_t{0}, size_t{1000}, S - 1, S, S + 77, 2 * S - 1, 2 * S, sealed.size() - 1}) {
    Bytes bad = sealed;
    bad[at] ^= 0x01;
    Opened o = Open(bad);
    EXPECT_THAT(o.status, IsError(Code::kIntegrity, _)) << at;
    EXPECT_THAT(o.status.error().message(),
                HasSubstr("chunk " + std::to_string(at / S) + (at / S == 2 ? " (the last)" : "")));
    EXPECT_EQ(o.plain.size(), (at / S) * kChunkPlain) << "only the chunks before it";
  }
}

TEST(AeadStream, Reordered_SwappedChunksAreRefused) {
  const Bytes sealed = Seal(Pattern(3 * kChunkPlain));
  const size_t S = kChunkPlain + kChunkTag;
  Bytes swapped = sealed;
  std::copy(sealed.begin() + S, sealed.begin() + 2 * S, swapped.begin());
  std::copy(sealed.begin(), sealed.begin() + S, swapped.begin() + S);
  Opened o = Open(swapped);
  EXPECT_THAT(o.status, IsError(Code::kIntegrity, _));
  EXPECT_THAT(o.status.error().message(), HasSubstr("chunk 0 does not verify"));
  EXPECT_TRUE(o.plain.empty());
}

TEST(AeadStream, Truncated_AtAChunkBoundaryOrWithinOne) {
  const Bytes sealed = Seal(Pattern(3 * kChunkPlain + 10));
  const size_t S = kChunkPlain + kChunkTag;
  for (size_t keep : {size_t{0}, size_t{10}, S, S + 1, 2 * S, 3 * S, sealed.size() - 1}) {
    Opened o = Open(ByteSpan(sealed).first(keep));
    EXPECT_THAT(o.status, IsError(Code::kIntegrity, _)) << keep;
    EXPECT_LT(o.plain.size(), 3 * kChunkPlain + 10) << keep;
  }
}

TEST(AeadStream, Extended_BytesAfterTheLastChunkAreRefused) {
  const Bytes sealed = Seal(Pattern(kChunkPlain + 5));
  Bytes longer = sealed;
  longer.push_back(0);
  EXPECT_THAT(Open(longer).status, IsError(Code::kIntegrity, _));
  Bytes twice = sealed;
  twice.insert(twice.end(), sealed.begin(), sealed.end());
  EXPECT_THAT(Open(twice).status, IsError(Code::kIntegrity, _));
}

TEST(AeadStream, AnotherKeyOrAnotherSalt_IsRefusedAtTheFirstChunk) {
  const Bytes sealed = Seal(Pattern(1000));
  ContentKey other = TestKey();
  other[31] ^= 0x80;
  PayloadSalt salt = TestSalt();
  salt[0] ^= 1;
  for (const Opened& o : {Open(sealed, other), Open(sealed, TestKey(), salt)}) {
    EXPECT_THAT(o.status, IsError(Code::kIntegrity, _));
    EXPECT_THAT(o.status.error().message(), HasSubstr("chunk 0 (the last)"));
    EXPECT_TRUE(o.plain.empty());
  }
}

TEST(AeadStream, AfterAnErrorNothingMoreIsAccepted) {
  Bytes sealed = Seal(Pattern(2 * kChunkPlain));
  sealed[5] ^= 1;
  ChunkOpener op(TestKey(), TestSalt(), [](ByteSpan) { return OkStatus(); });
  EXPECT_THAT(op.Write(sealed), IsError(Code::kIntegrity, _));
  EXPECT_THAT(op.Write(ByteSpan(sealed).first(1)), IsError(Code::kIntegrity, _));
  EXPECT_THAT(op.Finish(), IsError(Code::kIntegrity, _));
  EXPECT_EQ(op.plain_bytes(), 0u);
}

// The id of the content key 00 01 .. 1f, as Python's `cryptography` derives it (HKDF-SHA256, no
// salt, info "aloft content key id", 8 bytes).
TEST(AeadStream, ContentKeyId_KnownAnswer) {
  EXPECT_EQ(ContentKeyId(TestKey()), "9574730b93fec589");
}

TEST(AeadStream, ContentKeysAndSaltsAreFresh) {
  EXPECT_NE(NewContentKey(), NewContentKey());
  EXPECT_NE(NewPayloadSalt(), NewPayloadSalt());
}

}  // namespace
}  // namespace aloft::crypto
