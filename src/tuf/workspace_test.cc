// The offline repository (`aloft repo`): roots and targets reach "published" only with their
// thresholds met, rotations re-stage what a removed key had signed, and what it publishes is what
// a client trusts.
#include "tuf/workspace.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "core/encoding.h"
#include "core/file.h"
#include "core/hash.h"
#include "support/temp_dir.h"
#include "tuf/updater.h"

namespace aloft::tuf {
namespace {

constexpr int64_t kNow = 1'800'000'000'000;

crypto::PrivateKey NewKey() { return *crypto::PrivateKey::Generate(crypto::KeyType::kEd25519); }
Key KeyOf(const crypto::PrivateKey& k) { return *KeyFromPublic(k.public_key()); }

class WorkspaceTest : public ::testing::Test {
 protected:
  WorkspaceTest() {
    for (int i = 0; i < 3; ++i) root_keys_.push_back(NewKey());
  }
  Workspace::InitOptions Options(int bins = 0) {
    Workspace::InitOptions o;
    o.roles["root"] = {{KeyOf(root_keys_[0]), KeyOf(root_keys_[1]), KeyOf(root_keys_[2])}, 2};
    o.roles["targets"] = {{KeyOf(targets_key_)}, 1};
    o.roles["snapshot"] = {{KeyOf(online_key_)}, 1};
    o.roles["timestamp"] = {{KeyOf(online_key_)}, 1};
    o.bins = bins;
    return o;
  }
  // What aloftd adds online: snapshot and timestamp over the workspace's files; then a client's
  // refresh from root version 1.
  Result<Updater> Client(const Workspace& w) {
    ALOFT_ASSIGN_OR_RETURN(auto roots, w.RootFiles());
    ALOFT_ASSIGN_OR_RETURN(TrustedRoot root, TrustedRoot::FromText(roots[0], "1.root.json"));
    for (size_t i = 1; i < roots.size(); ++i) ALOFT_RETURN_IF_ERROR(root.Update(roots[i], "root"));
    ALOFT_ASSIGN_OR_RETURN(std::string targets, w.TargetsFile());
    ALOFT_ASSIGN_OR_RETURN(auto delegated, w.DelegatedFiles());
    delegated_ = delegated;
    json snapshot = NewEnvelope("snapshot", 1, kNow + kSnapshotLifetimeMs);
    auto version = [](const std::string& text) { return json::parse(text)["signed"]["version"]; };
    snapshot["signed"]["meta"]["targets.json"] = MetaEntry(version(targets), targets);
    for (const auto& [role, text] : delegated) {
      snapshot["signed"]["meta"][role + ".json"] = MetaEntry(version(text), text);
    }
    ALOFT_RETURN_IF_ERROR(Sign(snapshot, online_key_));
    json timestamp = NewEnvelope("timestamp", 1, kNow + kTimestampLifetimeMs);
    timestamp["signed"]["meta"]["snapshot.json"] = MetaEntry(1, FileBytes(snapshot));
    ALOFT_RETURN_IF_ERROR(Sign(timestamp, online_key_));
    Updater u(std::move(root));
    ALOFT_RETURN_IF_ERROR(u.UpdateTimestamp(FileBytes(timestamp), kNow));
    ALOFT_RETURN_IF_ERROR(u.UpdateSnapshot(FileBytes(snapshot), kNow));
    ALOFT_RETURN_IF_ERROR(u.UpdateTargets(targets, kNow));
    return u;
  }
  Updater::Fetch Fetcher() {
    return [this](const std::string& role, int64_t, int64_t) -> Result<std::string> {
      auto it = delegated_.find(role);
      if (it == delegated_.end()) return Error(Code::kNotFound, role);
      return it->second;
    };
  }
  std::string Hash(const std::string& s) { return Sha256Hex(AsBytes(s)); }

  testing::TempDir dir_;
  std::vector<crypto::PrivateKey> root_keys_;
  crypto::PrivateKey targets_key_ = NewKey(), online_key_ = NewKey();
  std::map<std::string, std::string> delegated_;
};

TEST_F(WorkspaceTest, RootAndTargetsArePublishedOnlyOnceTheirThresholdsSigned) {
  const std::string dir = dir_ / "repo";
  auto w = Workspace::Init(dir, Options(), kNow);
  ASSERT_TRUE(w.ok()) << w.error().ToString();
  EXPECT_EQ(w->root_version(), 0);
  // One root key of two: staged, not published.
  auto s = w->Sign(root_keys_[0], kNow);
  ASSERT_TRUE(s.ok()) << s.error().ToString();
  ASSERT_EQ(s->size(), 1u);
  EXPECT_EQ((*s)[0].have, 1);
  EXPECT_EQ((*s)[0].need, 2);
  EXPECT_FALSE((*s)[0].published);
  // The targets key may sign nothing yet: no root is published.
  EXPECT_EQ(w->Sign(targets_key_, kNow).error().code(), Code::kNotFound);
  // The second root key publishes root 1, and targets.json (empty) is staged by itself.
  s = w->Sign(root_keys_[2], kNow);
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE((*s)[0].published);
  EXPECT_EQ(w->root_version(), 1);
  ASSERT_TRUE(w->AddTarget("fw/1.0.0.aloft", 5, Hash("image"), {{"version", "1.0.0"}}).ok());
  auto staged = w->Stage(kNow);
  ASSERT_TRUE(staged.ok());
  EXPECT_EQ(*staged, std::vector<std::string>{"targets.json"});
  s = w->Sign(targets_key_, kNow);
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE((*s)[0].published);
  // Nothing changed: nothing to stage; a key that signs nothing is told so.
  EXPECT_TRUE(w->Stage(kNow)->empty());
  EXPECT_EQ(w->Sign(NewKey(), kNow).error().code(), Code::kNotFound);

  auto reopened = Workspace::Open(dir);
  ASSERT_TRUE(reopened.ok());
  auto u = Client(*reopened);
  ASSERT_TRUE(u.ok()) << u.error().ToString();
  auto t = u->Target("fw/1.0.0.aloft");
  ASSERT_TRUE(t.ok());
  EXPECT_TRUE(Updater::CheckTarget(*t, 5, Hash("image")).ok());
}

TEST_F(WorkspaceTest, RotatingTheTargetsKeyRestagesTargets_AndTheOldKeyNoLongerCounts) {
  const std::string dir = dir_ / "repo";
  auto w = *Workspace::Init(dir, Options(), kNow);
  ASSERT_TRUE(w.Sign(root_keys_[0], kNow).ok());
  ASSERT_TRUE(w.Sign(root_keys_[1], kNow).ok());
  ASSERT_TRUE(w.AddTarget("fw/1.0.0.aloft", 5, Hash("image"), json::object()).ok());
  ASSERT_TRUE(w.Stage(kNow).ok());
  ASSERT_TRUE(w.Sign(targets_key_, kNow).ok());

  // Root 2: a new targets key, and root key 0 replaced by a new one (threshold 2 of 3).
  auto new_targets = NewKey(), new_root = NewKey();
  ASSERT_TRUE(
      w.StageRoot({{"targets", {{KeyOf(new_targets)}, 1}},
                   {"root", {{KeyOf(new_root), KeyOf(root_keys_[1]), KeyOf(root_keys_[2])}, 2}}},
                  kNow)
          .ok());
  // Old root keys 0 and 1 meet the old threshold, but the new root has only key 1's signature.
  ASSERT_TRUE(w.Sign(root_keys_[0], kNow).ok());
  auto s = w.Sign(root_keys_[1], kNow);
  ASSERT_TRUE(s.ok());
  EXPECT_FALSE((*s)[0].published);
  EXPECT_EQ((*s)[0].have, 1);  // of the new root's keys
  s = w.Sign(new_root, kNow);
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE((*s)[0].published);
  EXPECT_EQ(w.root_version(), 2);
  // targets.json, signed by the removed key, no longer verifies: staged again, and only the new
  // key may sign it.
  auto desc = *w.Describe(kNow);
  ASSERT_EQ(desc["staged"].size(), 1u);
  EXPECT_EQ(desc["staged"][0]["file"], "targets.json");
  EXPECT_EQ(desc["staged"][0]["version"], 2);
  EXPECT_EQ(w.Sign(targets_key_, kNow).error().code(), Code::kNotFound);
  ASSERT_TRUE(w.Sign(new_targets, kNow).ok());
  auto u = Client(w);
  ASSERT_TRUE(u.ok()) << u.error().ToString();
  EXPECT_EQ(u->root().version(), 2);
  EXPECT_EQ(u->targets_version(), 2);
}

TEST_F(WorkspaceTest, HashedBins_OnlyTheChangedBinGetsANewVersion_AndTheClientFindsTargets) {
  auto w = *Workspace::Init(dir_ / "repo", Options(16), kNow);
  ASSERT_TRUE(w.Sign(root_keys_[0], kNow).ok());
  ASSERT_TRUE(w.Sign(root_keys_[1], kNow).ok());
  for (int i = 0; i < 100; ++i) {
    const std::string p = "image " + std::to_string(i);
    ASSERT_TRUE(w.AddTarget("fw/" + std::to_string(i) + ".aloft", static_cast<int64_t>(p.size()),
                            Hash(p), json::object())
                    .ok());
  }
  auto staged = w.Stage(kNow);
  ASSERT_TRUE(staged.ok());
  EXPECT_EQ(staged->size(), 16u);  // the bins; targets.json was staged when root 1 was published
  EXPECT_EQ(w.Describe(kNow)->at("staged").size(), 17u);
  ASSERT_TRUE(w.Sign(targets_key_, kNow).ok());
  EXPECT_EQ(w.DelegatedFiles()->size(), 16u);
  // One more target: only its bin changes.
  ASSERT_TRUE(w.AddTarget("fw/new.aloft", 3, Hash("new"), json::object()).ok());
  staged = w.Stage(kNow);
  ASSERT_TRUE(staged.ok());
  ASSERT_EQ(staged->size(), 1u);
  EXPECT_EQ((*staged)[0], (*HashedBins(16))[BinIndex("fw/new.aloft", 16)].name + ".json");
  ASSERT_TRUE(w.Sign(targets_key_, kNow).ok());
  auto u = Client(w);
  ASSERT_TRUE(u.ok()) << u.error().ToString();
  EXPECT_EQ(u->Target("fw/7.aloft").error().code(), Code::kNotFound);  // not in targets.json
  auto t = u->FindTarget("fw/7.aloft", Fetcher(), kNow);
  ASSERT_TRUE(t.ok()) << t.error().ToString();
  EXPECT_EQ(t->hashes["sha256"], Hash("image 7"));
  EXPECT_TRUE(u->FindTarget("fw/new.aloft", Fetcher(), kNow).ok());
}

TEST_F(WorkspaceTest, BadInputIsRefusedAndChangesNothing) {
  const std::string dir = dir_ / "repo";
  auto w = *Workspace::Init(dir, Options(), kNow);
  EXPECT_EQ(Workspace::Init(dir, Options(), kNow).error().code(), Code::kAlreadyExists);
  EXPECT_EQ(Workspace::Init(dir_ / "other", Options(3), kNow).error().code(),
            Code::kInvalidArgument);
  EXPECT_FALSE(std::filesystem::exists(dir_ / "other"));
  for (const char* bad : {"", "/abs", "a//b", "a/../b", "a b", "café", "x?y", "dir/"}) {
    EXPECT_EQ(w.AddTarget(bad, 1, Hash("x"), json::object()).error().code(), Code::kInvalidArgument)
        << bad;
  }
  EXPECT_EQ(w.AddTarget("ok", 1, "abc", json::object()).error().code(), Code::kInvalidArgument);
  EXPECT_EQ(w.AddTarget("ok", 1, Hash("x"), {{"note", "é"}}).error().code(),
            Code::kInvalidArgument);
  EXPECT_TRUE(w.targets().empty());
  EXPECT_EQ(w.Stage(kNow).error().code(), Code::kInvalidArgument);  // no root published yet
  EXPECT_EQ(Workspace::Open(dir_ / "nothing").error().code(), Code::kNotFound);
}

}  // namespace
}  // namespace aloft::tuf
