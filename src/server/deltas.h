// Server-side deltas (docs/rollouts.md, "Deltas"): when a device with an open action runs a
// version the server also has as a package, it is offered a delta package from that version to
// the action's release instead of the full image, if one is ready.
//
// Deltas come from two places: uploaded by a release engineer (`aloft delta` output, signed by
// their keys), or made here, in the background, once per (release, base version), with the delta
// engine, and signed with the server's delta key (`delta_key`). Without a delta key the server
// makes none: devices refuse unsigned packages.
//
//   DeltaService deltas(store, artifacts, key, log);
//   ALOFT_ASSIGN_OR_RETURN(auto offer, deltas.ForAction(action, release, device, now)); // check-in
//   ALOFT_ASSIGN_OR_RETURN(int made, deltas.RunQueue(now));   // the background thread
//
// Thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "core/clock.h"
#include "crypto/keys.h"
#include "server/artifacts.h"
#include "server/content_keys.h"
#include "server/store.h"

namespace aloft::server {

struct Delta {
  int64_t id = 0;
  int64_t release_id = 0;
  std::string base_version;
  std::string source;    // "uploaded" | "generated"
  std::string state;     // "queued" | "generating" | "ready" | "failed"
  Artifact artifact;     // when ready
  std::string manifest;  // the delta package's signed envelope, when ready
  std::string error;     // when failed
};

class DeltaService {
 public:
  // `content_keys`: the keys of encrypted releases (docs/encryption.md); a delta from or to one
  // is made with them and sealed with the target's key. Without them (or without a release's
  // key) no delta of an encrypted release is made: its devices get the full package.
  DeltaService(Store& store, ArtifactStore& artifacts, std::optional<crypto::PrivateKey> key,
               ContentKeys* content_keys, std::ostream& log);

  // The delta the device gets for `action`: the one already chosen, or, while the action is
  // pending, a ready delta from the version the device runs (its release's first module), which
  // is then recorded on the action. Queues a delta to make when none exists and the base is a
  // package on this server. nullopt: the full image.
  Result<std::optional<Delta>> ForAction(const Action& action, const Release& release,
                                         const Device& device, int64_t now);
  Result<Delta> Get(int64_t id);
  // Every delta of `release_id` (any state), by base version.
  Result<std::vector<Delta>> ListFor(Tx& tx, int64_t release_id);

  // Records an uploaded delta package (already verified by the caller) of `release` from
  // `base_version`, stored as `artifact`, with its audit entry by `actor`.
  Result<Delta> AddUploaded(const Release& release, const std::string& base_version,
                            const Artifact& artifact, const std::string& manifest,
                            const std::string& actor, int64_t now);

  // Makes every queued delta; returns how many were made. A failure is recorded on the delta
  // ("failed", with the error) and does not stop the others. A delta left 'generating' for
  // kStaleGeneratingMs (its worker died) is queued again first.
  Result<int> RunQueue(const Clock& clock);
  static constexpr int64_t kStaleGeneratingMs = 30 * 60 * 1000;

 private:
  Status Generate(Delta& d, const Clock& clock);
  // Whether a delta between `base` and `target` can be made here: every encrypted one's key held.
  Result<bool> KeysHeld(Tx& tx, const Release& base, const Release& target);

  Store& store_;
  ArtifactStore& artifacts_;
  std::optional<crypto::PrivateKey> key_;
  ContentKeys* content_keys_;
  std::ostream& log_;
};

}  // namespace aloft::server
