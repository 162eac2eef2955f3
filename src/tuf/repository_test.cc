// The metadata writers: hashed bins, roots, and metadata written by them read back by the client.
#include "tuf/repository.h"

#include <gtest/gtest.h>

#include <set>

#include "core/encoding.h"
#include "core/hash.h"
#include "tuf/updater.h"

namespace aloft::tuf {
namespace {

constexpr int64_t kNow = 1'800'000'000'000;

TEST(TufBins, EveryPrefixBelongsToExactlyOneBin_AndBinIndexAgreesWithThePrefixes) {
  for (int count : {2, 16, 32, 256, 1024}) {
    auto bins = HashedBins(count);
    ASSERT_TRUE(bins.ok()) << count;
    ASSERT_EQ(bins->size(), static_cast<size_t>(count));
    std::set<std::string> seen, names;
    for (const auto& b : *bins) {
      names.insert(b.name);
      for (const auto& p : b.prefixes) EXPECT_TRUE(seen.insert(p).second) << p;
    }
    EXPECT_EQ(names.size(), static_cast<size_t>(count));
    const size_t digits = bins->front().prefixes.front().size();
    EXPECT_EQ(seen.size(), size_t{1} << (4 * digits)) << count;
    for (int i = 0; i < 200; ++i) {
      const std::string name = "fw/" + std::to_string(i) + ".aloft";
      const std::string hash = Sha256Hex(AsBytes(name));
      const Bin& b = (*bins)[BinIndex(name, count)];
      EXPECT_TRUE(std::any_of(b.prefixes.begin(), b.prefixes.end(),
                              [&](const std::string& p) { return hash.starts_with(p); }))
          << name << " in " << b.name;
    }
  }
  EXPECT_EQ((*HashedBins(16))[10].name, "bins-a");
  EXPECT_EQ((*HashedBins(32))[0].name, "bins-00-07");
  for (int bad : {0, 1, 3, 100, 131072}) {
    EXPECT_EQ(HashedBins(bad).error().code(), Code::kInvalidArgument) << bad;
  }
}

TEST(TufRoot, NewRootNeedsEveryRoleAndASaneThreshold) {
  Key k = *KeyFromPublic(crypto::PrivateKey::Generate(crypto::KeyType::kEd25519)->public_key());
  std::map<std::string, RoleSpec> roles = {
      {"root", {{k}, 1}}, {"targets", {{k}, 1}}, {"snapshot", {{k}, 1}}, {"timestamp", {{k}, 1}}};
  ASSERT_TRUE(NewRoot(1, kNow, roles).ok());
  auto missing = roles;
  missing.erase("snapshot");
  EXPECT_EQ(NewRoot(1, kNow, missing).error().code(), Code::kInvalidArgument);
  auto high = roles;
  high["root"].threshold = 2;
  EXPECT_EQ(NewRoot(1, kNow, high).error().code(), Code::kInvalidArgument);
  auto twice = roles;
  twice["root"] = {{k, k}, 2};  // one key twice cannot meet a threshold of 2
  EXPECT_EQ(NewRoot(1, kNow, twice).error().code(), Code::kInvalidArgument);
}

// Metadata made by the writers, expiry written to the second, is what the client trusts.
TEST(TufWriters, WrittenMetadataIsReadBackByTheClient) {
  auto key = *crypto::PrivateKey::Generate(crypto::KeyType::kEd25519);
  Key k = *KeyFromPublic(key.public_key());
  json root = *NewRoot(
      1, kNow + kRootLifetimeMs,
      {{"root", {{k}, 1}}, {"targets", {{k}, 1}}, {"snapshot", {{k}, 1}}, {"timestamp", {{k}, 1}}});
  EXPECT_EQ(root["signed"]["expires"].get<std::string>().size(), 20u);  // 2027-...T..:..:..Z
  ASSERT_TRUE(Sign(root, key).ok());
  json targets = NewEnvelope("targets", 1, kNow + kTargetsLifetimeMs);
  const std::string payload = "image";
  targets["signed"]["targets"]["fw/1.aloft"] =
      TargetEntry(5, Sha256Hex(AsBytes(payload)), {{"version", "1"}});
  ASSERT_TRUE(Sign(targets, key).ok());
  json snapshot = NewEnvelope("snapshot", 1, kNow + kSnapshotLifetimeMs);
  snapshot["signed"]["meta"]["targets.json"] = MetaEntry(1, FileBytes(targets));
  ASSERT_TRUE(Sign(snapshot, key).ok());
  json timestamp = NewEnvelope("timestamp", 1, kNow + kTimestampLifetimeMs);
  timestamp["signed"]["meta"]["snapshot.json"] = MetaEntry(1, FileBytes(snapshot));
  ASSERT_TRUE(Sign(timestamp, key).ok());

  Updater u(*TrustedRoot::FromText(FileBytes(root), "1.root.json"));
  ASSERT_TRUE(u.UpdateTimestamp(FileBytes(timestamp), kNow).ok());
  ASSERT_TRUE(u.UpdateSnapshot(FileBytes(snapshot), kNow).ok());
  ASSERT_TRUE(u.UpdateTargets(FileBytes(targets), kNow).ok());
  auto t = u.Target("fw/1.aloft");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->custom["version"], "1");
  // A day later the timestamp has expired: a frozen server shows.
  Updater later(*TrustedRoot::FromText(FileBytes(root), "1.root.json"));
  EXPECT_EQ(later.UpdateTimestamp(FileBytes(timestamp), kNow + kDayMs).error().code(),
            Code::kUntrusted);
}

}  // namespace
}  // namespace aloft::tuf
