#include "core/hash.h"

#include <gtest/gtest.h>

namespace aloft {
namespace {

struct Vector {
  const char* name;
  HashAlgorithm algorithm;
  std::string input;
  const char* hex;
};

// FIPS 180-2 appendix examples and RFC 1321 section A.5.
const Vector kVectors[] = {
    {"sha256_empty", HashAlgorithm::kSha256, "",
     "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
    {"sha256_abc", HashAlgorithm::kSha256, "abc",
     "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
    {"sha256_two_blocks", HashAlgorithm::kSha256,
     "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
     "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
    {"sha256_million_a", HashAlgorithm::kSha256, std::string(1000000, 'a'),
     "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"},
    {"sha1_empty", HashAlgorithm::kSha1, "", "da39a3ee5e6b4b0d3255bfef95601890afd80709"},
    {"sha1_abc", HashAlgorithm::kSha1, "abc", "a9993e364706816aba3e25717850c26c9cd0d89d"},
    {"md5_empty", HashAlgorithm::kMd5, "", "d41d8cd98f00b204e9800998ecf8427e"},
    {"md5_abc", HashAlgorithm::kMd5, "abc", "900150983cd24fb0d6963f7d28e17f72"},
    {"md5_alphabet", HashAlgorithm::kMd5, "abcdefghijklmnopqrstuvwxyz",
     "c3fcd3d76192e4007dfb496cca67e13b"},
};

void PrintTo(const Vector& v, std::ostream* os) { *os << v.name; }

class HashVectors : public ::testing::TestWithParam<Vector> {};

TEST_P(HashVectors, OneShotAndStreamingAgree) {
  const Vector& v = GetParam();
  Hasher whole(v.algorithm);
  whole.Update(AsBytes(v.input));
  EXPECT_EQ(whole.FinishHex(), v.hex);

  // Odd-sized pieces across block boundaries give the same digest.
  Hasher pieces(v.algorithm);
  for (size_t i = 0; i < v.input.size(); i += 997) {
    pieces.Update(AsBytes(std::string_view(v.input).substr(i, 997)));
  }
  EXPECT_EQ(pieces.bytes_hashed(), v.input.size());
  EXPECT_EQ(pieces.FinishHex(), v.hex);
  // Finish resets: the same object hashes the next stream from scratch.
  pieces.Update(AsBytes(v.input));
  EXPECT_EQ(pieces.FinishHex(), v.hex);
}

INSTANTIATE_TEST_SUITE_P(Published, HashVectors, ::testing::ValuesIn(kVectors),
                         [](const auto& param_info) { return std::string(param_info.param.name); });

}  // namespace
}  // namespace aloft

namespace aloft {
namespace {

// RFC 4231 test case 2.
TEST(Hmac, Sha256_Rfc4231) {
  const std::string key = "Jefe", data = "what do ya want for nothing?";
  EXPECT_EQ(
      HexEncode(HmacSha256(ByteSpan(reinterpret_cast<const uint8_t*>(key.data()), key.size()),
                           ByteSpan(reinterpret_cast<const uint8_t*>(data.data()), data.size()))),
      "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(SecureRandom, FillsAndDiffers) {
  std::vector<uint8_t> a(32), b(32);
  SecureRandom(a);
  SecureRandom(b);
  EXPECT_NE(a, b);
}

}  // namespace
}  // namespace aloft
