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
#include <optional>
#include <string>

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
  };
  // A check-in's "uptane" part, {"manifest": envelope, "have": {"root": N, "timestamp": M}},
  // from `device` with `offer` open: the manifest is checked (enrolling its key the first time),
  // the device's Director metadata brought up to date, and the answer's "director" part given:
  // the roots above N and, when newer than M, timestamp, snapshot and targets. kInvalidArgument
  // for a bad manifest, kUntrusted for a bad signature, kAlreadyExists for a replayed counter.
  Result<tuf::json> CheckIn(const Device& device, const tuf::json& uptane,
                            const std::optional<Offer>& offer, int64_t now_ms);

  static constexpr char kRepo[] = "director";

 private:
  Director(Store& store, crypto::PrivateKey key, Options o)
      : store_(store), key_(std::move(key)), o_(o) {}
  Store& store_;
  crypto::PrivateKey key_;
  std::string key_id_;
  Options o_;
};

}  // namespace aloft::server
