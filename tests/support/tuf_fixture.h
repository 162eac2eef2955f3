// A TUF repository for tests: its keys (root 2 of 2, one each for targets, snapshot and
// timestamp) and the files it would publish, made with the project's writers (tuf/repository.h).
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "crypto/keys.h"
#include "tuf/repository.h"

namespace aloft::testing {

using tuf::json;

inline crypto::PrivateKey NewKey() {
  return *crypto::PrivateKey::Generate(crypto::KeyType::kEd25519);
}
inline tuf::Key KeyOf(const crypto::PrivateKey& k) { return *tuf::KeyFromPublic(k.public_key()); }

// One TUF repository's keys and the files it serves.
struct Repo {
  std::vector<crypto::PrivateKey> root_keys{NewKey(), NewKey()};  // threshold 2
  crypto::PrivateKey targets = NewKey(), snapshot = NewKey(), timestamp = NewKey();

  json Root(int64_t version, int64_t now_ms) const {
    json r = *tuf::NewRoot(version, now_ms + tuf::kRootLifetimeMs,
                           {{"root", {{KeyOf(root_keys[0]), KeyOf(root_keys[1])}, 2}},
                            {"targets", {{KeyOf(targets)}, 1}},
                            {"snapshot", {{KeyOf(snapshot)}, 1}},
                            {"timestamp", {{KeyOf(timestamp)}, 1}}});
    for (const auto& k : root_keys) EXPECT_TRUE(tuf::Sign(r, k).ok());
    return r;
  }
  // targets.json, snapshot.json and timestamp.json of version `v` listing `targets`.
  struct Files {
    std::string targets, snapshot, timestamp;
  };
  Files Publish(int64_t v, const json& targets_json, int64_t now_ms,
                int64_t lifetime_ms = tuf::kDayMs) const {
    Files f;
    json t = tuf::NewEnvelope("targets", v, now_ms + lifetime_ms);
    t["signed"]["targets"] = targets_json;
    EXPECT_TRUE(tuf::Sign(t, targets).ok());
    f.targets = tuf::FileBytes(t);
    json s = tuf::NewEnvelope("snapshot", v, now_ms + lifetime_ms);
    s["signed"]["meta"]["targets.json"] = tuf::MetaEntry(v, f.targets);
    EXPECT_TRUE(tuf::Sign(s, snapshot).ok());
    f.snapshot = tuf::FileBytes(s);
    json ts = tuf::NewEnvelope("timestamp", v, now_ms + lifetime_ms);
    ts["signed"]["meta"]["snapshot.json"] = tuf::MetaEntry(v, f.snapshot);
    EXPECT_TRUE(tuf::Sign(ts, timestamp).ok());
    f.timestamp = tuf::FileBytes(ts);
    return f;
  }
};

}  // namespace aloft::testing
