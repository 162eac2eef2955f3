// A release engineer's offline repository (`aloft repo`; docs/trust.md): the root and targets
// metadata of aloftd's Image repository (or the root of its Director), kept in a directory that
// can live in version control, signed with keys that never reach the server.
//
//   DIR/repo.json             what the repository is: its kind, hashed bins, lifetimes, and the
//                             list of targets (the one thing people edit, through `aloft repo`)
//   DIR/metadata/N.root.json  every root, each complete (signed to its thresholds)
//   DIR/metadata/targets.json the targets metadata, complete; with hashed bins also
//   DIR/metadata/bins-*.json  each bin
//   DIR/staged/...            the next versions of those, waiting for signatures
//
// Staging compares what the list and the newest root call for with what is published and
// stages a new version of each file that differs, would no longer verify (a rotated key), or
// expires soon. Signing adds a key's signature to every staged file that key may sign and
// publishes each file once its thresholds are met. Every write is atomic; a refused step changes
// nothing.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/error.h"
#include "crypto/keys.h"
#include "tuf/repository.h"

namespace aloft::tuf {

class Workspace {
 public:
  enum class Kind { kImage, kDirector };
  struct InitOptions {
    Kind kind = Kind::kImage;
    std::map<std::string, RoleSpec> roles;  // root, targets, snapshot, timestamp
    int bins = 0;                           // hashed bins (power of two) or 0 for none
    int64_t root_lifetime_ms = kRootLifetimeMs;
    int64_t targets_lifetime_ms = kTargetsLifetimeMs;
  };
  // Creates DIR (which must not exist or be empty) and stages root version 1.
  static Result<Workspace> Init(const std::string& dir, const InitOptions& o, int64_t now_ms);
  static Result<Workspace> Open(const std::string& dir);

  // The list of targets (an image repository's only). A name is a relative path of printable
  // ASCII without "." or ".." segments.
  Status AddTarget(const std::string& name, int64_t length, const std::string& sha256_hex,
                   json custom);
  Status RemoveTarget(const std::string& name);
  const json& targets() const { return config_["targets"]; }

  // Stages a new version of each targets file (targets.json, bins) that differs from what the
  // list calls for, no longer verifies under the newest root, expires within `renew_within_ms`
  // (all of them with `renew_within_ms` < 0). The names of the files staged.
  Result<std::vector<std::string>> Stage(int64_t now_ms, int64_t renew_within_ms = 14 * kDayMs);

  // Stages root version N+1 with `roles` (a role not given keeps its keys and threshold). Its
  // signatures must come from the threshold of the current root's root keys and of its own.
  Status StageRoot(const std::map<std::string, RoleSpec>& roles, int64_t now_ms);

  struct Signed {
    std::string file;
    int have = 0, need = 0;  // for a root: the fewer of the old and new thresholds' counts
    bool published = false;
  };
  // Signs every staged file `key` may sign (a root: a root key of it or of the root before; a
  // targets file: a targets key of the newest published root), publishes those now complete,
  // and stages what a published root changed. kNotFound when the key may sign nothing staged.
  Result<std::vector<Signed>> Sign(const crypto::PrivateKey& key, int64_t now_ms);

  // The repository as `aloft repo status` shows it.
  Result<json> Describe(int64_t now_ms) const;

  // What `aloft repo push` sends: published roots in order, targets.json, the bins.
  Result<std::vector<std::string>> RootFiles() const;
  Result<std::string> TargetsFile() const;
  Result<std::map<std::string, std::string>> DelegatedFiles() const;

  Kind kind() const { return kind_; }
  int64_t root_version() const { return root_version_; }

 private:
  Workspace(std::string dir, json config);
  Status SaveConfig() const;
  Result<Root> PublishedRoot() const;
  std::string Path(const std::string& sub) const { return dir_ + "/" + sub; }

  std::string dir_;
  json config_;
  Kind kind_ = Kind::kImage;
  int64_t root_version_ = 0;  // newest published root, 0 for none
};

// Whether `name` may name a target (see AddTarget); kInvalidArgument says why not.
Status CheckTargetName(const std::string& name);

}  // namespace aloft::tuf
