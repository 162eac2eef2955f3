// aloftd's TUF Image repository (issue 24; docs/trust.md): it keeps what release engineers push
// from `aloft repo` (roots, and targets signed offline, with their hashed bins), checks each push
// as a client would, and adds the online roles: a snapshot of the targets files and a timestamp
// of the snapshot, signed with the server's keys and signed again before they expire. Every
// version of every file stays servable (consistent snapshots).
//
// Thread-safe: each push and refresh is one serialized transaction, so that servers sharing one
// PostgreSQL never publish two snapshots of one version.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <string>

#include "core/error.h"
#include "crypto/keys.h"
#include "server/store.h"
#include "tuf/metadata.h"
#include "tuf/root_chain.h"

namespace aloft::server {

// The server's key for an online role, and the setting that names its file (for errors).
struct OnlineKey {
  std::string id, setting;
};
// Roots pushed for `repo` (an array of root files' text), accepted in order as a client would
// follow them: each chains from the newest held (the first one is version 1, signed by its own
// threshold); one already held must be that very file. The newest must not be expired and must
// make each of `online`'s keys its role's only key needed (threshold 1). `changed` is set when a
// root was stored. The newest root.
Result<tuf::TrustedRoot> AcceptRoots(Tx& tx, const std::string& repo, const tuf::json& roots,
                                     const std::map<std::string, OnlineKey>& online, int64_t now_ms,
                                     bool& changed);

class ImageRepository {
 public:
  struct Options {
    int64_t snapshot_lifetime_ms = 7 * 86'400'000LL;
    int64_t timestamp_lifetime_ms = 86'400'000LL;
  };
  static Result<std::unique_ptr<ImageRepository>> Create(Store& store,
                                                         crypto::PrivateKey snapshot_key,
                                                         crypto::PrivateKey timestamp_key,
                                                         Options o);

  // A push of `aloft repo push`: {"roots": [text...], "targets": text, "delegated": {role: text}}.
  // Roots must chain from the newest root held (or, the first time, be signed by their own
  // threshold), name this server's snapshot and timestamp keys; targets and each delegated role
  // must verify under the newest root and their delegator, not go back in version, and not be
  // expired. Then a new snapshot and timestamp are signed. Nothing is kept from a refused push.
  // Answers the versions now served and the targets whose file the server does not hold.
  Result<tuf::json> Push(const tuf::json& body, const std::string& actor, int64_t now_ms);
  // Signs a new timestamp (and snapshot) when the served one is within half its lifetime of
  // expiring. Cheap when nothing is due: one read.
  Status Refresh(int64_t now_ms);
  // The file a client asks for: "N.root.json", "root.json", "timestamp.json",
  // "N.snapshot.json", "N.targets.json", "N.<delegated role>.json" (or without "N.": the
  // newest). kNotFound when there is none.
  Result<TufFile> File(const std::string& name);
  // A consistent-snapshot target path "[dir/]<sha256>.<base name>" (or the plain name): the
  // listed target, when the newest metadata lists it with that hash.
  Result<TufTarget> Target(const std::string& path);
  // Versions and expiries served, the online keys, how many targets.
  Result<tuf::json> Describe(int64_t now_ms);

  static constexpr char kRepo[] = "image";

 private:
  ImageRepository(Store& store, crypto::PrivateKey snapshot_key, crypto::PrivateKey timestamp_key,
                  Options o)
      : store_(store),
        snapshot_key_(std::move(snapshot_key)),
        timestamp_key_(std::move(timestamp_key)),
        o_(o) {}
  // Signs and stores a snapshot of the newest targets files, and a timestamp of it.
  Status PublishSnapshot(Tx& tx, int64_t now_ms);
  Status PublishTimestamp(Tx& tx, const TufFile& snapshot, int64_t now_ms);

  Store& store_;
  crypto::PrivateKey snapshot_key_, timestamp_key_;
  std::string snapshot_id_, timestamp_id_;  // TUF key ids
  Options o_;
};

}  // namespace aloft::server
