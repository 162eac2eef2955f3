#include "crypto/password.h"

#include <gtest/gtest.h>

namespace aloft::crypto {
namespace {

// Small parameters keep the tests fast; the format and the checks are the same.
constexpr ScryptParams kFast{10, 8, 1};

TEST(Password, RightPasswordMatchesWrongOneDoesNot) {
  auto h = HashPassword("correct horse", kFast);
  ASSERT_TRUE(h.ok()) << h.error().ToString();
  EXPECT_TRUE(h->starts_with("$scrypt$ln=10,r=8,p=1$")) << *h;
  EXPECT_TRUE(*VerifyPassword("correct horse", *h));
  EXPECT_FALSE(*VerifyPassword("correct horse ", *h));
  EXPECT_FALSE(*VerifyPassword("", *h));
}

TEST(Password, SaltMakesEveryHashDifferent) {
  auto a = HashPassword("same", kFast), b = HashPassword("same", kFast);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(*a, *b);
  EXPECT_TRUE(*VerifyPassword("same", *b));
}

TEST(Password, DefaultsAreMemoryHard) {
  auto h = HashPassword("x");
  ASSERT_TRUE(h.ok()) << h.error().ToString();
  EXPECT_TRUE(h->starts_with("$scrypt$ln=15,r=8,p=1$")) << *h;
  EXPECT_TRUE(*VerifyPassword("x", *h));
}

TEST(Password, MalformedOrHostileStoredHashesAreRefused) {
  auto good = *HashPassword("pw", kFast);
  const std::string salt_and_hash = good.substr(good.find("$", 8));
  for (const std::string& bad :
       {std::string(""), std::string("plain"), std::string("$argon2id$v=19$m=1,t=1,p=1$a$b"),
        "$scrypt$ln=10,r=8$" + salt_and_hash.substr(1), "$scrypt$ln=10,r=8,p=1,x=2" + salt_and_hash,
        "$scrypt$ln=30,r=8,p=1" + salt_and_hash, "$scrypt$ln=20,r=64,p=1" + salt_and_hash,
        "$scrypt$ln=a,r=8,p=1" + salt_and_hash, std::string("$scrypt$ln=10,r=8,p=1$!!!$AAAA"),
        good + "$extra"}) {
    auto r = VerifyPassword("pw", bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_EQ(r.error().code(), Code::kInvalidArgument) << bad;
    }
  }
}

}  // namespace
}  // namespace aloft::crypto
