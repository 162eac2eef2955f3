// Uptane full verification on a device (a vehicle's gateway verifies for its ECUs): the Director's
// metadata for this device, which comes with each check-in, and the Image repository's, fetched
// when an update is offered; an offer is installed only when the Director lists it for this ECU's
// serial and hardware id and the Image repository, signed offline, lists the same target with
// the same length and hashes (Uptane 1.0 sections 5.4.4.2 and 5.4.4.3; docs/trust.md). Each
// repository's trusted metadata is kept in a directory of its own and only ever replaced whole by
// newer metadata that verified; the device's version manifest is signed with its own key and
// carries a counter that rises with each check-in (kept before it is used).
//
//   auto c = UptaneClient::Open(options);               // shipped roots the first time
//   body["uptane"] = *c->CheckInPart(installed);        // the signed manifest, what it holds
//   c->ApplyDirector(answer["director"], now);          // roots, timestamp, snapshot, targets
//   auto t = c->VerifyOffer(action, serial, hw, fetch, now);  // then the download's hash = t's
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "core/error.h"
#include "crypto/keys.h"
#include "tuf/updater.h"

namespace aloft::tuf {

class UptaneClient {
 public:
  struct Options {
    std::string state_dir;                    // director/ and image/ metadata, the counter
    std::string director_root, image_root;    // the roots shipped (text), used the first time
    std::string device;                       // the manifest's "device"
    std::shared_ptr<crypto::PrivateKey> key;  // the device's own key
    json ecus;                                // {serial: {"hardware_id": ...}}
  };
  static Result<std::unique_ptr<UptaneClient>> Open(Options o);

  // The check-in's "uptane": {"have": {"root", "timestamp"} (the Director's versions trusted),
  // "manifest": the version manifest (its ECUs, each with `installed`, signed, counter + 1, the
  // public key until the Director acknowledged it), sent only when the Director has not taken
  // this one yet (after a start, when what runs changed)}.
  Result<json> CheckInPart(const json& installed);

  // The check-in answer's "director": its roots in order, then timestamp, snapshot and targets;
  // kept only when every one verified. An answer without a timestamp changes nothing.
  Status ApplyDirector(const json& director, int64_t now_ms);

  // Fetches Image repository file `name` ("2.root.json", "timestamp.json", "7.snapshot.json",
  // "3.targets.json", "4.bins-a.json") of at most `max_bytes`; kNotFound when there is none.
  using Fetch = std::function<Result<std::string>(const std::string& name, int64_t max_bytes)>;

  // Full verification of offered action `action` for ECU `serial` of hardware `hardware_id`
  // (an empty `serial`: a gateway, whose ECUs CheckEcus checks once it read the bundle):
  // the Director's metadata fresh (drop-request and freeze attacks) and listing a target for the
  // action that names this ECU and hardware; the Image repository refreshed and listing that
  // target with the same length and SHA-256. The verified target, as the Director lists it
  // (its custom: the action, the ECUs, a content key wrapped for this device).
  Result<TargetInfo> VerifyOffer(int64_t action, const std::string& serial,
                                 const std::string& hardware_id, const Fetch& fetch,
                                 int64_t now_ms);

  // Uptane's partial-bundle check, once the verified bundle is read: the ECUs it updates
  // (`bundle`: serial -> hardware id) must be exactly those the Director's target for `action`
  // names, each with its hardware id. kUntrusted names the ECU left out or added.
  Status CheckEcus(int64_t action, const std::map<std::string, std::string>& bundle) const;
  // The ECUs the manifest reports (a vehicle's change as its inventory is read).
  void SetEcus(json ecus) { o_.ecus = std::move(ecus); }

  const Updater& director() const { return *director_; }
  const Updater& image() const { return *image_; }

 private:
  explicit UptaneClient(Options o) : o_(std::move(o)) {}
  Status Persist(const std::string& repo, const std::string& role, std::string_view bytes);
  Status RefreshImage(const Fetch& fetch, int64_t now_ms);
  // The Director's target naming `action` in its custom; kUntrusted when none does.
  Result<TargetInfo> DirectorTargetFor(int64_t action) const;

  Options o_;
  std::unique_ptr<Updater> director_, image_;
  int64_t counter_ = 0;
  std::string last_sent_, pending_;  // the ECUs of the manifest last taken, and last sent
  bool enrolled_ = false;
};

}  // namespace aloft::tuf
