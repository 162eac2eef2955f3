// The simulated fleet's device record and its stages, shared by fleet.cc (native device API,
// downloads, installs) and fleet_mqtt.cc (MQTT push devices). Not for other users.
#pragma once

#include <cstdint>
#include <string>

#include "fleetsim/fleet.h"

namespace aloft::fleetsim {

// Where a device is in its work; each stage says what it does next when its timer fires or the
// request before it was answered.
enum Stage : uint8_t {
  kIdle,           // next: check in
  kCheckingIn,     // a check-in in flight
  kFbDownloading,  // next: "downloading"
  kDownloading,    // next: (resume) the download
  kFbDownloaded,   // next: "downloaded" (its bandwidth's time is up)
  kFbInstalling,   // next: "installing"
  kInstalling,     // installing; next: the health check
  kPowerCut,       // next: the power goes (half-way through the install)
  kFbInstalled,    // next: "installed"
  kFbSuccess,      // next: "success"
  kFbFailure,      // next: "failure"
  kFbCanceled,     // next: "canceled"
  kGone,           // never again
  kInFlight,       // a feedback or download in flight
  kFbProgress,     // a vehicle: next: "installing" with the ECUs flashed so far
};

// An action's fate, decided when it arrives.
enum Fate : uint8_t { kDrop = 1, kHealthFail = 2, kPowerCutFate = 4, kVanishFate = 8 };

struct Fleet::Device {
  std::string token;
  std::string path;    // the action's artifact, without the server's origin
  std::string sha256;  // the artifact's, as offered
  int64_t action = 0;
  uint64_t size = 0;
  int64_t downloaded_ms = 0;  // when the download began (its bandwidth's clock)
  uint32_t gen = 0;
  uint16_t group = 0;
  uint16_t tries = 0;
  int32_t actions = 0;
  uint8_t stage = kIdle;
  uint8_t fate = 0;
  bool new_version = false;  // runs the release's version
  bool registered = false, reported = false;
  bool dropped = false, cut = false;
  uint16_t check_id = 0;  // MQTT: the last otaCheck's id (its answer's reply_to)
  uint8_t batch = 0;      // a vehicle: the ECU batches flashed in this install
  Outcome outcome = Outcome::kNone;
};

}  // namespace aloft::fleetsim
