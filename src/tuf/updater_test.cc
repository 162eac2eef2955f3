// The client's checks of timestamp, snapshot and targets (TUF 1.0 sections 5.4 to 5.7), each
// attack of the specification's section 1.5.2 that they stop named in its test.
#include "tuf/updater.h"

#include <gtest/gtest.h>

#include "core/encoding.h"
#include "core/hash.h"

namespace aloft::tuf {
namespace {

constexpr int64_t kNow = 1'800'000'000'000;  // 2027-01-15
constexpr char kFuture[] = "2030-01-01T00:00:00Z";

// A repository's keys and the metadata it would publish.
class Repo {
 public:
  Repo() {
    for (auto* k : {&root_, &targets_, &snapshot_, &timestamp_}) {
      *k = *crypto::PrivateKey::Generate(crypto::KeyType::kEd25519);
    }
  }
  std::string Root(int64_t version = 1) const {
    json keys = json::object();
    json roles = json::object();
    for (auto [name, key] : {std::pair{"root", &root_},
                             {"targets", &targets_},
                             {"snapshot", &snapshot_},
                             {"timestamp", &timestamp_}}) {
      Key k = *KeyFromPublic(key->public_key());
      keys[k.id] = k.object;
      roles[name] = {{"keyids", {k.id}}, {"threshold", 1}};
    }
    json env = Envelope("root", version, kFuture);
    env["signed"]["keys"] = keys;
    env["signed"]["roles"] = roles;
    env["signed"]["consistent_snapshot"] = true;
    EXPECT_TRUE(Sign(env, root_).ok());
    return env.dump();
  }
  std::string Targets(int64_t version, const std::string& payload, const char* expires = kFuture) {
    json env = Envelope("targets", version, expires);
    env["signed"]["targets"] = {
        {"fw/1.2.0.aloft",
         {{"length", payload.size()}, {"hashes", {{"sha256", Sha256Hex(AsBytes(payload))}}}}}};
    EXPECT_TRUE(Sign(env, targets_).ok());
    return env.dump();
  }
  std::string Snapshot(int64_t version, const std::string& targets, int64_t targets_version,
                       const char* expires = kFuture) {
    json env = Envelope("snapshot", version, expires);
    env["signed"]["meta"] = {{"targets.json",
                              {{"version", targets_version},
                               {"length", targets.size()},
                               {"hashes", {{"sha256", Sha256Hex(AsBytes(targets))}}}}}};
    EXPECT_TRUE(Sign(env, snapshot_).ok());
    return env.dump();
  }
  std::string Timestamp(int64_t version, const std::string& snapshot, int64_t snapshot_version,
                        const char* expires = kFuture, const crypto::PrivateKey* key = nullptr) {
    json env = Envelope("timestamp", version, expires);
    env["signed"]["meta"] = {{"snapshot.json",
                              {{"version", snapshot_version},
                               {"length", snapshot.size()},
                               {"hashes", {{"sha256", Sha256Hex(AsBytes(snapshot))}}}}}};
    EXPECT_TRUE(Sign(env, key ? *key : timestamp_).ok());
    return env.dump();
  }
  static json Envelope(const std::string& type, int64_t version, const char* expires) {
    return {
        {"signed",
         {{"_type", type}, {"spec_version", "1.0.31"}, {"version", version}, {"expires", expires}}},
        {"signatures", json::array()}};
  }
  crypto::PrivateKey root_, targets_, snapshot_, timestamp_;
};

class TufUpdater : public ::testing::Test {
 protected:
  Updater Fresh() { return Updater(*TrustedRoot::FromText(repo_.Root(), "1.root.json")); }
  // A whole refresh of version `v` of everything; the payload is what the target is.
  void Publish(int v, const std::string& payload = "firmware 1.2.0") {
    targets_ = repo_.Targets(v, payload);
    snapshot_ = repo_.Snapshot(v, targets_, v);
    timestamp_ = repo_.Timestamp(v, snapshot_, v);
  }
  Status Refresh(Updater& u) {
    ALOFT_RETURN_IF_ERROR(u.UpdateTimestamp(timestamp_, kNow));
    ALOFT_RETURN_IF_ERROR(u.UpdateSnapshot(snapshot_, kNow));
    return u.UpdateTargets(targets_, kNow);
  }
  Repo repo_;
  std::string targets_, snapshot_, timestamp_;
};

TEST_F(TufUpdater, ARefreshTrustsEachRoleInTurn_AndTheTargetIsCheckedBeforeUse) {
  Updater u = Fresh();
  Publish(1);
  ASSERT_TRUE(Refresh(u).ok());
  EXPECT_EQ(u.targets_version(), 1);
  auto t = u.Target("fw/1.2.0.aloft");
  ASSERT_TRUE(t.ok()) << t.error().ToString();
  EXPECT_TRUE(Updater::CheckTarget(*t, 14, Sha256Hex(AsBytes("firmware 1.2.0"))).ok());
  EXPECT_EQ(u.Target("fw/9.9.9.aloft").error().code(), Code::kNotFound);
}

// Spec 1.5.2 "Arbitrary installation attacks": bytes that are not the target's are refused.
TEST_F(TufUpdater, ArbitraryInstallation_OtherBytesAreRefused) {
  Updater u = Fresh();
  Publish(1);
  ASSERT_TRUE(Refresh(u).ok());
  auto t = *u.Target("fw/1.2.0.aloft");
  EXPECT_EQ(Updater::CheckTarget(t, 14, Sha256Hex(AsBytes("firmware EVIL!"))).error().code(),
            Code::kIntegrity);
  EXPECT_EQ(Updater::CheckTarget(t, 15, t.hashes["sha256"]).error().code(), Code::kIntegrity);
}

// "Endless data attacks": a timestamp larger than its limit, a snapshot longer than the
// timestamp says.
TEST_F(TufUpdater, EndlessData_IsCutAtTheLimit) {
  Updater u = Fresh();
  Publish(1);
  EXPECT_EQ(
      u.UpdateTimestamp(std::string(Updater::kMaxTimestampBytes + 1, ' '), kNow).error().code(),
      Code::kOutOfRange);
  ASSERT_TRUE(u.UpdateTimestamp(timestamp_, kNow).ok());
  EXPECT_EQ(u.SnapshotLimit(), static_cast<int64_t>(snapshot_.size()));
  EXPECT_EQ(u.UpdateSnapshot(snapshot_ + std::string(100, ' '), kNow).error().code(),
            Code::kOutOfRange);
}

// "Indefinite freeze attacks": expired metadata is not trusted, whichever role.
TEST_F(TufUpdater, IndefiniteFreeze_ExpiredMetadataIsRefused) {
  Updater u = Fresh();
  const std::string targets = repo_.Targets(1, "x");
  const std::string snapshot = repo_.Snapshot(1, targets, 1);
  auto r = u.UpdateTimestamp(repo_.Timestamp(1, snapshot, 1, "2026-01-01T00:00:00Z"), kNow);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("expired"), std::string::npos);
  EXPECT_FALSE(u.timestamp_version());
  const std::string old_snapshot = repo_.Snapshot(1, targets, 1, "2026-01-01T00:00:00Z");
  ASSERT_TRUE(u.UpdateTimestamp(repo_.Timestamp(1, old_snapshot, 1), kNow).ok());
  EXPECT_FALSE(u.UpdateSnapshot(old_snapshot, kNow).ok());
}

// "Rollback attacks": an older timestamp, a timestamp naming an older snapshot, a snapshot
// naming older targets.
TEST_F(TufUpdater, Rollback_OlderVersionsAreRefused) {
  Updater u = Fresh();
  Publish(3);
  ASSERT_TRUE(Refresh(u).ok());
  Publish(2);
  EXPECT_EQ(u.UpdateTimestamp(timestamp_, kNow).error().code(), Code::kIntegrity);
  // A new timestamp (4) that names the old snapshot 2.
  EXPECT_EQ(u.UpdateTimestamp(repo_.Timestamp(4, snapshot_, 2), kNow).error().code(),
            Code::kIntegrity);
  // A new snapshot (4) that names the old targets 2.
  const std::string s4 = repo_.Snapshot(4, targets_, 2);
  ASSERT_TRUE(u.UpdateTimestamp(repo_.Timestamp(4, s4, 4), kNow).ok());
  auto r = u.UpdateSnapshot(s4, kNow);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("rollback"), std::string::npos);
  EXPECT_EQ(u.snapshot_version(), 3);
  EXPECT_EQ(u.targets_version(), 3);
}

// "Mix-and-match attacks": a snapshot whose version or bytes are not the timestamp's, targets
// whose version or bytes are not the snapshot's.
TEST_F(TufUpdater, MixAndMatch_FilesOfDifferentTimesAreRefused) {
  Updater u = Fresh();
  Publish(1);
  const std::string t1 = targets_, s1 = snapshot_;
  Publish(2);
  ASSERT_TRUE(u.UpdateTimestamp(timestamp_, kNow).ok());
  EXPECT_EQ(u.UpdateSnapshot(s1, kNow).error().code(), Code::kIntegrity);  // other bytes
  ASSERT_TRUE(u.UpdateSnapshot(snapshot_, kNow).ok());
  EXPECT_EQ(u.UpdateTargets(t1, kNow).error().code(), Code::kIntegrity);
  // A snapshot signed right but of another version than the timestamp names (no hashes given).
  Updater v = Fresh();
  json ts = json::parse(repo_.Timestamp(5, snapshot_, 3));
  ts["signed"]["meta"]["snapshot.json"].erase("hashes");
  ts["signed"]["meta"]["snapshot.json"].erase("length");
  ts["signatures"] = json::array();
  ASSERT_TRUE(Sign(ts, repo_.timestamp_).ok());
  ASSERT_TRUE(v.UpdateTimestamp(ts.dump(), kNow).ok());
  auto r = v.UpdateSnapshot(snapshot_, kNow);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("mix-and-match"), std::string::npos);
}

// "Malicious mirrors" and "key compromise below the threshold": metadata signed by a key the
// root does not give the role is refused, whoever serves it.
TEST_F(TufUpdater, AKeyOutsideTheRoleIsNotTheRole) {
  Updater u = Fresh();
  Publish(1);
  // Signed by the snapshot key: a valid key of the repository, but not the timestamp role's.
  auto r = u.UpdateTimestamp(repo_.Timestamp(1, snapshot_, 1, kFuture, &repo_.snapshot_), kNow);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Code::kUntrusted);
  EXPECT_FALSE(u.timestamp_version());
  // In order: a snapshot before any timestamp is refused.
  EXPECT_EQ(u.UpdateSnapshot(snapshot_, kNow).error().code(), Code::kInvalidArgument);
}

// Spec 1.5.2 "Fast-forward attacks" (and 5.3.11): an attacker with the timestamp key pushes the
// timestamp's version far ahead, so that the honest next versions look like rollbacks. Rotating
// the timestamp key in a new root makes the client forget the fast-forwarded timestamp.
TEST_F(TufUpdater, FastForward_RecoveredByRotatingTheTimestampKey) {
  Updater u = Fresh();
  Publish(1);
  ASSERT_TRUE(Refresh(u).ok());
  ASSERT_TRUE(u.UpdateTimestamp(repo_.Timestamp(1000, snapshot_, 1), kNow).ok());
  Publish(2);
  EXPECT_EQ(u.UpdateTimestamp(timestamp_, kNow).error().code(), Code::kIntegrity);
  // Root 2 hands the timestamp role to a new key.
  const Root before = u.root().root();
  repo_.timestamp_ = *crypto::PrivateKey::Generate(crypto::KeyType::kEd25519);
  ASSERT_TRUE(u.root().Update(repo_.Root(2), "2.root.json").ok());
  u.AfterRootUpdate(before);
  EXPECT_FALSE(u.timestamp_version()) << "the fast-forwarded timestamp is forgotten";
  Publish(2);
  ASSERT_TRUE(Refresh(u).ok());
  EXPECT_EQ(u.timestamp_version(), 2);
  // A rotation that keeps the timestamp and snapshot keys forgets nothing.
  const Root same = u.root().root();
  ASSERT_TRUE(u.root().Update(repo_.Root(3), "3.root.json").ok());
  u.AfterRootUpdate(same);
  EXPECT_EQ(u.timestamp_version(), 2);
}

TEST(TufPaths, ShellStylePatternsMatchWithinSegments) {
  EXPECT_TRUE(PathMatches("fw/*.aloft", "fw/1.2.0.aloft"));
  EXPECT_TRUE(PathMatches("fw/1.?.0.aloft", "fw/1.2.0.aloft"));
  EXPECT_TRUE(PathMatches("*", "anything"));
  EXPECT_FALSE(PathMatches("*", "fw/1.2.0.aloft"));  // '*' stays within one segment
  EXPECT_FALSE(PathMatches("fw/*.aloft", "fw/x/1.2.0.aloft"));
  EXPECT_FALSE(PathMatches("fw/*.aloft", "app/1.2.0.aloft"));
  EXPECT_TRUE(PathMatches("a*b*c", "aXXbYYc"));
  EXPECT_FALSE(PathMatches("a*b*c", "aXXbYY"));
}

// Hashed-bin delegations (TUF's "succinct" bins): the top-level targets role delegates to 16 bins
// by the first hex digit of the SHA-256 of a target's name; each bin is a role of its own key.
class TufDelegations : public ::testing::Test {
 protected:
  void SetUp() override {
    Key bk = *KeyFromPublic(bin_key_.public_key());
    json roles = json::array();
    for (int i = 0; i < 16; ++i) {
      const std::string prefix(1, "0123456789abcdef"[i]);
      roles.push_back({{"name", "bin-" + prefix},
                       {"keyids", {bk.id}},
                       {"threshold", 1},
                       {"path_hash_prefixes", {prefix}},
                       {"terminating", true}});
    }
    json top = Repo::Envelope("targets", 1, kFuture);
    top["signed"]["targets"] = json::object();
    top["signed"]["delegations"] = {{"keys", {{bk.id, bk.object}}}, {"roles", roles}};
    EXPECT_TRUE(Sign(top, repo_.targets_).ok());
    // The target goes into its own bin; every bin is published.
    bin_ = "bin-" + Sha256Hex(AsBytes(kName)).substr(0, 1);
    json meta = json::object();
    for (int i = 0; i < 16; ++i) {
      const std::string role = "bin-" + std::string(1, "0123456789abcdef"[i]);
      json env = Repo::Envelope("targets", 1, kFuture);
      env["signed"]["targets"] = json::object();
      if (role == bin_) {
        env["signed"]["targets"][kName] = {{"length", 7},
                                           {"hashes", {{"sha256", Sha256Hex(AsBytes("payload"))}}}};
      }
      EXPECT_TRUE(Sign(env, bin_key_).ok());
      files_[role] = env.dump();
      meta[role + ".json"] = {{"version", 1}};
    }
    const std::string targets = top.dump();
    meta["targets.json"] = {{"version", 1}};
    json snap = Repo::Envelope("snapshot", 1, kFuture);
    snap["signed"]["meta"] = meta;
    EXPECT_TRUE(Sign(snap, repo_.snapshot_).ok());
    snapshot_ = snap.dump();
    targets_ = targets;
    timestamp_ = repo_.Timestamp(1, snapshot_, 1);
  }
  Updater Ready() {
    Updater u(*TrustedRoot::FromText(repo_.Root(), "1.root.json"));
    EXPECT_TRUE(u.UpdateTimestamp(timestamp_, kNow).ok());
    EXPECT_TRUE(u.UpdateSnapshot(snapshot_, kNow).ok());
    EXPECT_TRUE(u.UpdateTargets(targets_, kNow).ok());
    return u;
  }
  Updater::Fetch Fetcher() {
    return [this](const std::string& role, int64_t version, int64_t) -> Result<std::string> {
      fetched_.push_back(role + "@" + std::to_string(version));
      auto it = files_.find(role);
      if (it == files_.end()) return Error(Code::kNotFound, role + ".json");
      return it->second;
    };
  }
  static constexpr char kName[] = "fw/1.2.0.aloft";
  Repo repo_;
  crypto::PrivateKey bin_key_ = *crypto::PrivateKey::Generate(crypto::KeyType::kEd25519);
  crypto::PrivateKey other_key_ = *crypto::PrivateKey::Generate(crypto::KeyType::kEd25519);
  std::string bin_, targets_, snapshot_, timestamp_;
  std::map<std::string, std::string> files_;
  std::vector<std::string> fetched_;
};

TEST_F(TufDelegations, TheTargetIsFoundInItsBin_FetchingThatBinOnly) {
  Updater u = Ready();
  auto t = u.FindTarget(kName, Fetcher(), kNow);
  ASSERT_TRUE(t.ok()) << t.error().ToString();
  EXPECT_EQ(t->length, 7);
  EXPECT_EQ(fetched_, std::vector<std::string>{bin_ + "@1"});
  // Another name hashes to another bin, which does not list it: not found (terminating).
  auto missing = u.FindTarget("fw/9.9.9.aloft", Fetcher(), kNow);
  EXPECT_EQ(missing.error().code(), Code::kNotFound);
}

TEST_F(TufDelegations, ABinSignedByAKeyTheDelegationDoesNotNameIsRefused) {
  json env = json::parse(files_[bin_]);
  env["signatures"] = json::array();
  ASSERT_TRUE(Sign(env, other_key_).ok());
  files_[bin_] = env.dump();
  Updater u = Ready();
  auto t = u.FindTarget(kName, Fetcher(), kNow);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.error().code(), Code::kUntrusted);
}

TEST_F(TufDelegations, ABinOfAnotherVersionThanTheSnapshotNamesIsRefused) {
  json env = json::parse(files_[bin_]);
  env["signed"]["version"] = 2;
  env["signatures"] = json::array();
  ASSERT_TRUE(Sign(env, bin_key_).ok());
  files_[bin_] = env.dump();
  Updater u = Ready();
  EXPECT_EQ(u.FindTarget(kName, Fetcher(), kNow).error().code(), Code::kIntegrity);
}

}  // namespace
}  // namespace aloft::tuf
