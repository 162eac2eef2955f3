#include "tuf/metadata.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>

#include "core/encoding.h"
#include "core/file.h"
#include "core/hash.h"
#include "support/temp_dir.h"

namespace aloft::tuf {
namespace {

crypto::PrivateKey NewKey(crypto::KeyType type = crypto::KeyType::kEd25519) {
  return *crypto::PrivateKey::Generate(type);
}

json Envelope(const std::string& type, int64_t version) {
  return {{"signed",
           {{"_type", type},
            {"spec_version", "1.0.31"},
            {"version", version},
            {"expires", "2030-01-01T00:00:00Z"}}},
          {"signatures", json::array()}};
}

TEST(TufKeys, Ed25519KeyObjectAndIdAreTheSpecifications) {
  // RFC 8032's first test key: its public key is d75a9801...
  const Bytes seed = *HexDecode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
  auto priv = crypto::PrivateKey::FromRawEd25519(seed);
  ASSERT_TRUE(priv.ok());
  auto k = KeyFromPublic(priv->public_key());
  ASSERT_TRUE(k.ok()) << k.error().ToString();
  EXPECT_EQ(k->object["keyval"]["public"],
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
  // The id is the SHA-256 of the canonical key object (keys sorted, no spaces).
  const std::string canonical =
      R"({"keytype":"ed25519","keyval":{"public":"d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"},"scheme":"ed25519"})";
  EXPECT_EQ(k->id, Sha256Hex(AsBytes(canonical)));
  auto back = KeyFromObject(k->id, k->object);
  ASSERT_TRUE(back.ok()) << back.error().ToString();
  // A key listed under another id is refused (it could be counted twice).
  EXPECT_FALSE(KeyFromObject(std::string(64, 'a'), k->object).ok());
}

TEST(TufKeys, EcdsaKeysRoundTrip_UnknownSchemesAreUnsupported) {
  auto key = NewKey(crypto::KeyType::kEcdsaP256);
  auto k = KeyFromPublic(key.public_key());
  ASSERT_TRUE(k.ok());
  EXPECT_EQ(k->object["scheme"], "ecdsa-sha2-nistp256");
  EXPECT_TRUE(KeyFromObject(k->id, k->object).ok());
  json rsa = {{"keytype", "rsa"}, {"scheme", "rsassa-pss-sha256"}, {"keyval", {{"public", "x"}}}};
  auto r = KeyFromObject("x", rsa);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Code::kUnsupported);
}

class TufThreshold : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int i = 0; i < 3; ++i) {
      privs_.push_back(NewKey(i == 2 ? crypto::KeyType::kEcdsaP256 : crypto::KeyType::kEd25519));
      Key k = *KeyFromPublic(privs_.back().public_key());
      role_.keyids.push_back(k.id);
      keys_.emplace(k.id, k);
    }
    role_.threshold = 2;
  }
  std::vector<crypto::PrivateKey> privs_;
  std::map<std::string, Key> keys_;
  RoleKeys role_;
};

TEST_F(TufThreshold, TwoOfThreeKeysMeetTheThreshold_OneDoesNot) {
  json env = Envelope("targets", 1);
  ASSERT_TRUE(Sign(env, privs_[0]).ok());
  auto one = VerifyRole(env, keys_, role_, "targets.json");
  ASSERT_FALSE(one.ok());
  EXPECT_EQ(one.error().code(), Code::kUntrusted);
  EXPECT_NE(one.error().message().find("signed by 1"), std::string::npos);
  ASSERT_TRUE(Sign(env, privs_[2]).ok());
  EXPECT_TRUE(VerifyRole(env, keys_, role_, "targets.json").ok());
}

TEST_F(TufThreshold, OneKeySigningTwiceCountsOnce) {
  json env = Envelope("targets", 1);
  ASSERT_TRUE(Sign(env, privs_[0]).ok());
  json twice = env;
  twice["signatures"].push_back(env["signatures"][0]);
  EXPECT_EQ(twice["signatures"].size(), 2u);
  EXPECT_FALSE(VerifyRole(twice, keys_, role_, "targets.json").ok());
  // Signing again with the same key replaces its signature.
  ASSERT_TRUE(Sign(env, privs_[0]).ok());
  EXPECT_EQ(env["signatures"].size(), 1u);
}

TEST_F(TufThreshold, KeysOutsideTheRoleAndBadSignaturesCountForNothing) {
  json env = Envelope("targets", 1);
  auto outsider = NewKey();
  Key out = *KeyFromPublic(outsider.public_key());
  auto keys = keys_;
  keys.emplace(out.id, out);  // known to root, but not a key of this role (revoked from it)
  ASSERT_TRUE(Sign(env, privs_[0]).ok());
  ASSERT_TRUE(Sign(env, outsider).ok());
  EXPECT_FALSE(VerifyRole(env, keys, role_, "targets.json").ok());
  ASSERT_TRUE(Sign(env, privs_[1]).ok());
  EXPECT_TRUE(VerifyRole(env, keys, role_, "targets.json").ok());
  // A change to what was signed voids every signature.
  json tampered = env;
  tampered["signed"]["version"] = 2;
  EXPECT_FALSE(VerifyRole(tampered, keys, role_, "targets.json").ok());
  json garbage = env;
  garbage["signatures"][0]["sig"] = "zz";
  garbage["signatures"][2]["sig"] = std::string(128, '0');
  EXPECT_FALSE(VerifyRole(garbage, keys, role_, "targets.json").ok());
}

TEST(TufEnvelope, ParsesTheCommonFieldsAndRefusesWhatIsWrong) {
  json env = Envelope("timestamp", 7);
  auto ok = ParseEnvelope(env.dump(), "timestamp", "timestamp.json");
  ASSERT_TRUE(ok.ok()) << ok.error().ToString();
  auto c = CommonOf(*ok, "timestamp.json");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->version, 7);
  EXPECT_EQ(c->expires_ms, 1893456000000);
  EXPECT_FALSE(ParseEnvelope(env.dump(), "snapshot", "x").ok());  // wrong _type
  for (const auto& [field, value] : std::vector<std::pair<std::string, json>>{
           {"version", 0}, {"version", "1"}, {"expires", "tomorrow"}, {"spec_version", "2.0.0"}}) {
    json bad = env;
    bad["signed"][field] = value;
    EXPECT_FALSE(ParseEnvelope(bad.dump(), "timestamp", "x").ok()) << field;
  }
  EXPECT_FALSE(ParseEnvelope("{\"signed\":{},\"signed\":{}}", "timestamp", "x").ok());
  EXPECT_FALSE(ParseEnvelope("[]", "timestamp", "x").ok());
  // One canonical form only: a non-ASCII or control character, or a float, is not signed.
  json odd = env;
  odd["signed"]["custom"] = "caf\xc3\xa9";
  EXPECT_FALSE(Sign(odd, NewKey()).ok());
  odd["signed"]["custom"] = 1.5;
  EXPECT_FALSE(Sign(odd, NewKey()).ok());
}

TEST(TufCanonical, IsOlpcCanonicalJson_NotRfc8785) {
  json j = {{"b", 1}, {"a", {true, nullptr, "x\"y\\z"}}, {"pem", "-----BEGIN\nK\n"}};
  auto bytes = SignedBytes(j);
  ASSERT_TRUE(bytes.ok());
  // Newlines stay raw (RFC 8785 would write \n); only the quote and the backslash are escaped.
  EXPECT_EQ(*bytes, "{\"a\":[true,null,\"x\\\"y\\\\z\"],\"b\":1,\"pem\":\"-----BEGIN\nK\n\"}");
}

TEST(TufRoot, ReadsKeysAndRoles_RefusesRolesNamingUnknownKeysOrImpossibleThresholds) {
  auto a = NewKey(), b = NewKey(crypto::KeyType::kEcdsaP256);
  Key ka = *KeyFromPublic(a.public_key()), kb = *KeyFromPublic(b.public_key());
  json env = Envelope("root", 1);
  env["signed"]["consistent_snapshot"] = true;
  env["signed"]["keys"] = {{ka.id, ka.object}, {kb.id, kb.object}};
  env["signed"]["roles"] = {{"root", {{"keyids", {ka.id, kb.id}}, {"threshold", 2}}},
                            {"targets", {{"keyids", {ka.id}}, {"threshold", 1}}},
                            {"snapshot", {{"keyids", {kb.id}}, {"threshold", 1}}},
                            {"timestamp", {{"keyids", {kb.id}}, {"threshold", 1}}}};
  auto root = ParseRoot(env, "1.root.json");
  ASSERT_TRUE(root.ok()) << root.error().ToString();
  EXPECT_TRUE(root->consistent_snapshot);
  EXPECT_EQ(root->roles["root"].threshold, 2);
  ASSERT_TRUE(Sign(env, a).ok());
  ASSERT_TRUE(Sign(env, b).ok());
  EXPECT_TRUE(VerifyRole(env, root->keys, root->roles["root"], "1.root.json").ok());

  json unknown = env;
  unknown["signed"]["roles"]["targets"]["keyids"] = {std::string(64, 'f')};
  EXPECT_FALSE(ParseRoot(unknown, "x").ok());
  json too_high = env;
  too_high["signed"]["roles"]["snapshot"]["threshold"] = 2;
  EXPECT_FALSE(ParseRoot(too_high, "x").ok());
  json missing = env;
  missing["signed"]["roles"].erase("timestamp");
  EXPECT_FALSE(ParseRoot(missing, "x").ok());
}

// An independent peer: securesystemslib (python-tuf's signing library, Debian's
// python3-securesystemslib) computes the same canonical bytes and key ids and accepts the
// signatures of both key types; a changed "signed" makes it refuse them.
TEST(TufPeer, SecuresystemslibVerifiesOurSignatures) {
  if (std::system("/usr/bin/python3 -c 'import securesystemslib' 2>/dev/null") != 0) {
    if (std::getenv("ALOFT_REQUIRE_PEERS")) {
      FAIL() << "python3-securesystemslib is required (scripts/setup.sh)";
    }
    GTEST_SKIP() << "Debian's python3-securesystemslib is not installed (scripts/setup.sh)";
  }
  testing::TempDir dir;
  auto a = NewKey(), b = NewKey(crypto::KeyType::kEcdsaP256);
  Key ka = *KeyFromPublic(a.public_key()), kb = *KeyFromPublic(b.public_key());
  json env = Envelope("targets", 3);
  env["signed"]["targets"] = {{"fw/1.2.0.aloft",
                               {{"length", 1234},
                                {"hashes", {{"sha256", std::string(64, 'a')}}},
                                {"custom", {{"note", "quote \" and backslash \\"}}}}}};
  ASSERT_TRUE(Sign(env, a).ok());
  ASSERT_TRUE(Sign(env, b).ok());
  json keys = {{ka.id, ka.object}, {kb.id, kb.object}};
  auto run = [&](const json& envelope) {
    EXPECT_TRUE(WriteFileAtomic(dir / "env.json", envelope.dump()).ok());
    EXPECT_TRUE(WriteFileAtomic(dir / "keys.json", keys.dump()).ok());
    const std::string cmd = "/usr/bin/python3 " ALOFT_SOURCE_DIR
                            "/src/tuf/securesystemslib_peer_test.py " +
                            (dir / "env.json") + " " + (dir / "keys.json") + " 2>&1";
    FILE* p = ::popen(cmd.c_str(), "r");
    std::string out;
    char buf[256];
    while (p && std::fgets(buf, sizeof buf, p)) out += buf;
    EXPECT_EQ(p ? ::pclose(p) : -1, 0) << out;
    return out;
  };
  EXPECT_EQ(run(env), ka.id.substr(0, 8) + " ok\n" + kb.id.substr(0, 8) + " ok\n");
  json changed = env;
  changed["signed"]["version"] = 4;
  EXPECT_EQ(run(changed), ka.id.substr(0, 8) + " bad\n" + kb.id.substr(0, 8) + " bad\n");
}

}  // namespace
}  // namespace aloft::tuf
