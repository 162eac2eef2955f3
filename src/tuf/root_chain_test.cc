// Root rotation (TUF 1.0 section 5.3) as a device that was offline sees it: three generations of
// root keys, each rotation cross-signed, applied in turn from the root the device shipped with;
// and what an attacker would try against the chain.
#include "tuf/root_chain.h"

#include <gtest/gtest.h>

#include <vector>

namespace aloft::tuf {
namespace {

struct Generation {
  std::vector<crypto::PrivateKey> root_keys;  // threshold 2 of 3
  crypto::PrivateKey targets_key = *crypto::PrivateKey::Generate(crypto::KeyType::kEd25519);
};

Generation NewGeneration() {
  Generation g;
  for (int i = 0; i < 3; ++i) {
    g.root_keys.push_back(*crypto::PrivateKey::Generate(crypto::KeyType::kEd25519));
  }
  return g;
}

// Root version `version` naming generation `g`'s keys (threshold 2), expiring at `expires`.
json RootOf(const Generation& g, int64_t version,
            const std::string& expires = "2030-01-01T00:00:00Z") {
  json keys = json::object(), root_ids = json::array();
  for (const auto& k : g.root_keys) {
    Key key = *KeyFromPublic(k.public_key());
    keys[key.id] = key.object;
    root_ids.push_back(key.id);
  }
  Key t = *KeyFromPublic(g.targets_key.public_key());
  keys[t.id] = t.object;
  return {{"signed",
           {{"_type", "root"},
            {"spec_version", "1.0.31"},
            {"version", version},
            {"expires", expires},
            {"consistent_snapshot", true},
            {"keys", keys},
            {"roles",
             {{"root", {{"keyids", root_ids}, {"threshold", 2}}},
              {"targets", {{"keyids", {t.id}}, {"threshold", 1}}},
              {"snapshot", {{"keyids", {t.id}}, {"threshold", 1}}},
              {"timestamp", {{"keyids", {t.id}}, {"threshold", 1}}}}}}},
          {"signatures", json::array()}};
}

void SignWith(json& env, const std::vector<const crypto::PrivateKey*>& keys) {
  for (const auto* k : keys) ASSERT_TRUE(Sign(env, *k).ok());
}

class RootRotation : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int i = 0; i < 3; ++i) gens_.push_back(NewGeneration());
    // Version 1: generation 0, self-signed. Versions 2 and 3 rotate to generations 1 and 2, each
    // signed by two keys of the outgoing root and two of its own.
    roots_.push_back(RootOf(gens_[0], 1));
    SignWith(roots_[0], {&gens_[0].root_keys[0], &gens_[0].root_keys[1]});
    for (int v = 2; v <= 3; ++v) {
      json r = RootOf(gens_[v - 1], v);
      SignWith(r, {&gens_[v - 2].root_keys[1], &gens_[v - 2].root_keys[2],
                   &gens_[v - 1].root_keys[0], &gens_[v - 1].root_keys[2]});
      roots_.push_back(r);
    }
  }
  std::vector<Generation> gens_;
  std::vector<json> roots_;
};

TEST_F(RootRotation, AnOfflineDeviceFollowsThreeGenerations_AndTheOldKeysStopCounting) {
  auto trusted = TrustedRoot::FromText(roots_[0].dump(), "1.root.json");
  ASSERT_TRUE(trusted.ok()) << trusted.error().ToString();
  // Targets signed by generation 0's targets key: trusted now.
  json targets = {{"signed",
                   {{"_type", "targets"},
                    {"spec_version", "1.0.31"},
                    {"version", 1},
                    {"expires", "2030-01-01T00:00:00Z"},
                    {"targets", json::object()}}},
                  {"signatures", json::array()}};
  ASSERT_TRUE(Sign(targets, gens_[0].targets_key).ok());
  EXPECT_TRUE(trusted->VerifyRole(targets, "targets", "targets.json").ok());

  // The device was offline through two rotations: it applies 2.root.json, then 3.root.json.
  ASSERT_TRUE(trusted->Update(roots_[1].dump(), "2.root.json").ok());
  ASSERT_TRUE(trusted->Update(roots_[2].dump(), "3.root.json").ok());
  EXPECT_EQ(trusted->version(), 3);
  EXPECT_TRUE(trusted->CheckNotExpired(1'800'000'000'000).ok());

  // Revoked: generation 0's targets key no longer counts; generation 2's does.
  auto old = trusted->VerifyRole(targets, "targets", "targets.json");
  ASSERT_FALSE(old.ok());
  EXPECT_EQ(old.error().code(), Code::kUntrusted);
  ASSERT_TRUE(Sign(targets, gens_[2].targets_key).ok());
  EXPECT_TRUE(trusted->VerifyRole(targets, "targets", "targets.json").ok());
}

TEST_F(RootRotation, ARootNotSignedByTheTrustedRootsKeysIsRefused) {
  auto trusted = *TrustedRoot::FromText(roots_[0].dump(), "1.root.json");
  // An attacker's root 2 that names their own keys and is signed only by them.
  Generation attacker = NewGeneration();
  json evil = RootOf(attacker, 2);
  SignWith(evil, {&attacker.root_keys[0], &attacker.root_keys[1], &attacker.root_keys[2]});
  auto r = trusted.Update(evil.dump(), "2.root.json");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Code::kUntrusted);
  EXPECT_NE(r.error().message().find("trusted root version 1"), std::string::npos);
  // Below the threshold: one stolen key of the trusted root (threshold 2) is not enough.
  json one = RootOf(attacker, 2);
  SignWith(one, {&gens_[0].root_keys[0], &attacker.root_keys[0], &attacker.root_keys[1]});
  EXPECT_FALSE(trusted.Update(one.dump(), "2.root.json").ok());
  // A new root that its own keys did not sign (they may not even exist) is refused too.
  json unsigned_by_new = RootOf(gens_[1], 2);
  SignWith(unsigned_by_new, {&gens_[0].root_keys[0], &gens_[0].root_keys[1]});
  EXPECT_FALSE(trusted.Update(unsigned_by_new.dump(), "2.root.json").ok());
  EXPECT_EQ(trusted.version(), 1);  // unchanged by every refusal
}

TEST_F(RootRotation, RollbackAndSkippedVersionsAreRefused) {
  auto trusted = *TrustedRoot::FromText(roots_[0].dump(), "1.root.json");
  // Version 3 straight after 1: generation 0's keys never signed it (and its version is wrong).
  EXPECT_FALSE(trusted.Update(roots_[2].dump(), "3.root.json").ok());
  ASSERT_TRUE(trusted.Update(roots_[1].dump(), "2.root.json").ok());
  // A replayed older root, even correctly signed, is a rollback.
  json again = RootOf(gens_[1], 2);
  SignWith(again, {&gens_[1].root_keys[0], &gens_[1].root_keys[1]});
  auto r = trusted.Update(again.dump(), "2.root.json");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Code::kIntegrity);
  // A version that skips one, signed by the right keys, is refused as well.
  json skip = RootOf(gens_[1], 4);
  SignWith(skip, {&gens_[1].root_keys[0], &gens_[1].root_keys[1]});
  EXPECT_EQ(trusted.Update(skip.dump(), "4.root.json").error().code(), Code::kIntegrity);
  EXPECT_EQ(trusted.version(), 2);
}

TEST_F(RootRotation, AnExpiredRootIsAFrozenRepository) {
  json stale = RootOf(gens_[0], 1, "2020-01-01T00:00:00Z");
  SignWith(stale, {&gens_[0].root_keys[0], &gens_[0].root_keys[1]});
  auto trusted = *TrustedRoot::FromText(stale.dump(), "1.root.json");
  auto r = trusted.CheckNotExpired(1'800'000'000'000);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("frozen"), std::string::npos);
  // The shipped root must itself carry its threshold.
  json weak = RootOf(gens_[0], 1);
  SignWith(weak, {&gens_[0].root_keys[0]});
  EXPECT_FALSE(TrustedRoot::FromText(weak.dump(), "1.root.json").ok());
}

}  // namespace
}  // namespace aloft::tuf
