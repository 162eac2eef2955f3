// aloftd's Uptane Director (issue 24; docs/trust.md): for each device (a vehicle's gateway is
// one) its own targets metadata naming what its ECUs must install, signed online with a short
// life, and its own snapshot and timestamp; the Director's root is signed offline (`aloft repo
// init --director`, pushed like the Image repository's). A device enrols its key with its first
// signed version manifest and sends one with every check-in: what runs on each ECU, and a counter
// that must rise (a replayed manifest is refused).
//
// Thread-safe: each device's metadata is written in one transaction.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/error.h"
#include "crypto/keys.h"
#include "server/store.h"
#include "tuf/metadata.h"

namespace aloft::server {

class Director {
 public:
  struct Options {
    int64_t lifetime_ms = 86'400'000LL;  // of each device's targets, snapshot and timestamp
  };
  // `key`: the online key the Director's root names for targets, snapshot and timestamp.
  static Result<std::unique_ptr<Director>> Create(Store& store, crypto::PrivateKey key, Options o);

  // `aloft repo push` of a Director repository: {"roots": [text...]}, each chaining from the
  // newest held (the first signed by its own threshold) and naming this server's key for the
  // online roles with threshold 1.
  Result<tuf::json> PushRoots(const tuf::json& body, const std::string& actor, int64_t now_ms);
  // "N.root.json" or "root.json" (the newest).
  Result<TufFile> RootFile(const std::string& name);

  // What a device is offered now: its open action and the release's package.
  struct Offer {
    int64_t action = 0;
    std::string release;  // "name@version"
    std::string sha256;
    int64_t length = 0;
    // The modules (a vehicle's ECUs) the release updates: the Director names the manifest's ECUs
    // whose "module" is one of them (all of them when the manifest names no modules).
    std::vector<std::string> modules;
    // An encrypted release: its content key wrapped for this device, the action's "encryption"
    // ({"key_id", "recipient", "wrapped_key"} or {"key_id", "error"}; docs/encryption.md). It
    // goes into the target's custom, signed with the rest; a wrap already signed for the same
    // key and the same device key is kept, so that a check-in does not re-sign the metadata.
    tuf::json encryption;
  };
  // A check-in's "uptane" part, {"manifest": envelope, "have": {"root": N, "timestamp": M}},
  // from `device` with `offer` open: the manifest, when sent (the first check-in, and whenever
  // what the device runs changed), is checked (enrolling its key the first time); the device's
  // Director metadata is brought up to date, and the answer's "director" part given: the roots
  // above N and, when newer than M, timestamp, snapshot and targets. A check-in without a
  // manifest from a device that holds the newest is answered from memory (looked up again at
  // least every kRecheckMs). kInvalidArgument for a bad manifest or none from a device never
  // enrolled, kUntrusted for a bad signature, kAlreadyExists for a replayed counter.
  Result<tuf::json> CheckIn(const Device& device, const tuf::json& uptane,
                            const std::optional<Offer>& offer, int64_t now_ms);

  static constexpr char kRepo[] = "director";

 private:
  Director(Store& store, crypto::PrivateKey key, Options o)
      : store_(store), key_(std::move(key)), o_(o) {}
  static constexpr int64_t kRecheckMs = 60'000;
  static constexpr size_t kMaxSeen = 1 << 20;
  // What a device was last answered: the versions it then held, and for which open action.
  struct Seen {
    int64_t root = 0, timestamp = 0, expires_ms = 0, action = 0, checked_ms = 0;
  };
  // A check-in without a manifest that the device's last answer still covers (kRecheckMs).
  bool Unchanged(int64_t device, int64_t action, int64_t root, int64_t timestamp, int64_t now_ms);
  // The manifest verified with the device's key (enrolled with its first one) and its counter
  // above the last; the ECUs it names (without one: those of the last).
  Result<tuf::json> AcceptManifest(Tx& tx, const Device& device, const tuf::json* manifest,
                                   int64_t now_ms);
  // A new targets (listing `wanted`), snapshot and timestamp of the device's repository `repo`.
  Status SignSet(Tx& tx, const std::string& repo, const tuf::json& wanted, int64_t now_ms,
                 std::optional<TufFile>& targets, std::optional<TufFile>& timestamp);

  Store& store_;
  crypto::PrivateKey key_;
  std::string key_id_;
  Options o_;
  std::mutex mu_;
  std::unordered_map<int64_t, Seen> seen_;  // by device id
};

}  // namespace aloft::server
