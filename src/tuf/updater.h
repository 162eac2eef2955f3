// A TUF client's checks of the top-level roles after the root (TUF 1.0 sections 5.4 to 5.6 and
// 5.7's target checks), without any network: the caller fetches bytes (with the size limits this
// gives it) and hands them over; each update either is trusted whole or leaves what was trusted
// unchanged, with an error that names the file and the attack it stopped.
//
//   Updater u(std::move(trusted_root));
//   ALOFT_RETURN_IF_ERROR(u.root().CheckNotExpired(now));
//   ALOFT_RETURN_IF_ERROR(u.UpdateTimestamp(bytes, now));   // at most kMaxTimestampBytes
//   ALOFT_RETURN_IF_ERROR(u.UpdateSnapshot(bytes, now));    // at most u.SnapshotLimit()
//   ALOFT_RETURN_IF_ERROR(u.UpdateTargets(bytes, now));     // at most u.TargetsLimit()
//   ALOFT_ASSIGN_OR_RETURN(auto t, u.Target("fw/1.2.0.aloft"));  // then download t.length bytes
//   ALOFT_RETURN_IF_ERROR(Updater::CheckTarget(t, length, sha256_hex));
//
// A target the top-level targets role does not list is searched through its delegations
// (FindTarget).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tuf/root_chain.h"

namespace aloft::tuf {

// What a role lists for a file: version, and when given its length and hashes.
struct MetaFile {
  int64_t version = 0;
  std::optional<int64_t> length;
  std::map<std::string, std::string> hashes;  // algorithm -> hex
};

struct TargetInfo {
  std::string name;
  int64_t length = 0;
  std::map<std::string, std::string> hashes;
  json custom;
};

class Updater {
 public:
  // Limits for files whose length no trusted metadata gives (endless-data attack).
  static constexpr int64_t kMaxTimestampBytes = 16 << 10;
  static constexpr int64_t kDefaultMaxBytes = 4 << 20;

  explicit Updater(TrustedRoot root) : root_(std::move(root)) {}

  // 5.4: signed by the timestamp role; not older than the trusted timestamp (an equal version
  // changes nothing); its snapshot version not older than the trusted snapshot's; not expired.
  Status UpdateTimestamp(std::string_view bytes, int64_t now_ms);
  // 5.5: the length and hashes the timestamp gives; signed by the snapshot role; exactly the
  // version the timestamp names; no targets file older than or missing from the trusted
  // snapshot; not expired.
  Status UpdateSnapshot(std::string_view bytes, int64_t now_ms);
  // 5.6: the length and hashes the snapshot gives; signed by the targets role; exactly the
  // version the snapshot names; not expired.
  Status UpdateTargets(std::string_view bytes, int64_t now_ms);

  // The most bytes to fetch for snapshot.json and targets.json: what the trusted metadata says
  // they are, else kDefaultMaxBytes.
  int64_t SnapshotLimit() const;
  int64_t TargetsLimit() const;

  // 5.7: the trusted targets metadata's entry for `name`; kNotFound when it lists none.
  Result<TargetInfo> Target(const std::string& name) const;

  // Fetches delegated targets metadata `role`.json (version `version`: with consistent
  // snapshots the file is "<version>.<role>.json") of at most `max_bytes` bytes.
  using Fetch = std::function<Result<std::string>(const std::string& role, int64_t version,
                                                  int64_t max_bytes)>;
  // 5.6.7: `name` in the top-level targets, else searched through the delegations in order,
  // depth first (at most kMaxDelegations roles): a delegation whose "paths" (shell-style, '*'
  // and '?' within one path segment) or "path_hash_prefixes" (of the SHA-256 of the name) match
  // is loaded (the snapshot's version, length and hashes; its delegator's keys and threshold;
  // not expired); a terminating one that does not list it ends the search. kNotFound when no
  // trusted role lists it.
  Result<TargetInfo> FindTarget(const std::string& name, const Fetch& fetch, int64_t now_ms);
  static constexpr int kMaxDelegations = 32;
  // Whether downloaded bytes of `length` with SHA-256 `sha256_hex` are that target (kIntegrity).
  static Status CheckTarget(const TargetInfo& t, int64_t length, const std::string& sha256_hex);

  // Every top-level target the trusted targets metadata lists (not its delegations').
  Result<std::vector<TargetInfo>> Targets() const;
  // What the trusted metadata lists for `file`: "snapshot.json" (the timestamp's entry), or
  // "targets.json" and delegated roles' files (the snapshot's). kNotFound when nothing does.
  Result<MetaFile> Listed(const std::string& file) const;
  // Whether the root and every role trusted are unexpired at `now_ms` (kUntrusted names the
  // first that expired: no fresh metadata reached the device: a freeze or dropped requests).
  Status CheckFresh(int64_t now_ms) const;
  // TUF 5.3.11: after a root rotation that changed the timestamp or snapshot keys, the trusted
  // timestamp and snapshot are forgotten (recovery from a fast-forward attack), and with them
  // targets. Call after root().Update; `before` is the root trusted before.
  void AfterRootUpdate(const Root& before);

  const TrustedRoot& root() const { return root_; }
  TrustedRoot& root() { return root_; }
  std::optional<int64_t> timestamp_version() const;
  std::optional<int64_t> snapshot_version() const;
  std::optional<int64_t> targets_version() const;

 private:
  struct Trusted {
    json envelope;
    Common common;
  };
  // Parses and checks the signatures of a role's file; `what` names it.
  Result<Trusted> Load(std::string_view bytes, const std::string& role, const std::string& what);
  // A file another trusted file lists (snapshot by timestamp, targets and delegated targets by
  // snapshot): at most its listed length, its listed hashes, a threshold of its role's keys (the
  // root's, or `keys`/`role_keys` for a delegated role), exactly its listed version, not expired.
  struct ListedFile {
    std::string what;    // the file, for errors: "snapshot.json"
    std::string type;    // its "_type" and, without `keys`, its role in the root
    std::string lister;  // "timestamp" or "snapshot"
    MetaFile want;
    const std::map<std::string, Key>* keys = nullptr;
    const RoleKeys* role_keys = nullptr;
  };
  Result<Trusted> LoadListed(std::string_view bytes, const ListedFile& listed, int64_t now_ms);

  // A delegated role's metadata, loaded and checked (cached by name while the snapshot holds).
  Result<json> LoadDelegated(const std::string& role, const json& delegations,
                             const json& delegation, const Fetch& fetch, int64_t now_ms);
  enum class Found { kYes, kNo, kStop };
  Result<Found> Search(const json& envelope, const std::string& name, const Fetch& fetch,
                       int64_t now_ms, int& visited, TargetInfo& out);

  TrustedRoot root_;
  std::optional<Trusted> timestamp_, snapshot_, targets_;
  std::map<std::string, json> delegated_;
};

// Whether target `name` matches a delegation's shell-style `pattern`: the same number of '/'
// separated segments, each matching with '*' (any characters) and '?' (one character).
bool PathMatches(const std::string& pattern, const std::string& name);

// The "meta" entry `name` of a timestamp or snapshot.
Result<MetaFile> MetaOf(const json& envelope, const std::string& name, const std::string& what);

}  // namespace aloft::tuf
