// Writing TUF 1.0 metadata: what a repository publishes, as the release engineer's offline tools
// (`aloft repo`: root, targets, hashed bins) and aloftd's online roles (snapshot, timestamp)
// make it (issue 24; docs/trust.md). Reading and checking it is updater.h's and root_chain.h's.
//
//   json t = NewEnvelope("targets", 7, now + 90 days);
//   t["signed"]["targets"]["fw/1.2.0.aloft"] = TargetEntry(size, sha256, {{"version", "1.2.0"}});
//   ALOFT_RETURN_IF_ERROR(Sign(t, targets_key));
//   std::string file = FileBytes(t);  // what is served as 7.targets.json
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "tuf/metadata.h"

namespace aloft::tuf {

// The version of the specification aloft's metadata follows.
inline constexpr char kSpecVersion[] = "1.0.31";

// Default lifetimes: offline roles long, online roles short (a frozen server shows within a day).
inline constexpr int64_t kDayMs = 86'400'000;
inline constexpr int64_t kRootLifetimeMs = 365 * kDayMs;
inline constexpr int64_t kTargetsLifetimeMs = 90 * kDayMs;
inline constexpr int64_t kSnapshotLifetimeMs = 7 * kDayMs;
inline constexpr int64_t kTimestampLifetimeMs = kDayMs;

// An unsigned envelope of role `type` ("root", "targets", "snapshot", "timestamp"), version
// `version`, expiring at `expires_ms` (written to the second, as python-tuf reads it).
json NewEnvelope(std::string_view type, int64_t version, int64_t expires_ms);

// The bytes a repository serves for `envelope`: compact JSON that parses back to it.
std::string FileBytes(const json& envelope);

// A timestamp's or snapshot's "meta" entry for a file: its version, length and SHA-256.
json MetaEntry(int64_t version, std::string_view file_bytes);
// A targets "targets" entry: length, SHA-256, and what aloft adds in "custom".
json TargetEntry(int64_t length, const std::string& sha256_hex, json custom);

// A role of root: its keys and threshold.
struct RoleSpec {
  std::vector<Key> keys;
  int threshold = 1;
};
// An unsigned root naming the four top-level roles' keys (consistent snapshots on).
// kInvalidArgument when a role is missing or its threshold is not within 1..keys.
Result<json> NewRoot(int64_t version, int64_t expires_ms,
                     const std::map<std::string, RoleSpec>& roles);

// Hashed-bin delegation (TUF's "hash bin" pattern, PEP 458): the 16^k prefixes of a target
// name's SHA-256 (k hex digits, the fewest that give `count` bins) split evenly over `count`
// bins, each a delegated role named "bins-<first>-<last>" ("bins-<prefix>" for one prefix).
struct Bin {
  std::string name;
  std::vector<std::string> prefixes;
};
// `count` is a power of two from 2 to 65536; kInvalidArgument otherwise.
Result<std::vector<Bin>> HashedBins(int count);
// The index in HashedBins(count) of the bin that holds target `name`.
size_t BinIndex(const std::string& name, int count);
// The "delegations" of a top-level targets role that hands every target to `bins`, each signed
// by `threshold` of `keys`.
json BinDelegations(const std::vector<Bin>& bins, const std::vector<Key>& keys, int threshold);

}  // namespace aloft::tuf
