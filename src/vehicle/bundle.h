// A vehicle bundle (docs/vehicle-bundle.md): a signed .aloft package for a vehicle model, one
// component per ECU. What the manager needs beyond the package format lives in members the
// signatures cover: each component's "install" object (the ECU's version, hardware number,
// install method, address on the vehicle network, dependencies) and the signed object's
// "vehicle" member (the model and the campaign policy: update mode, preconditions, deadline).
//
//   ALOFT_ASSIGN_OR_RETURN(pkg::PackOptions o, LoadBundleDescription("car-2.0.toml"));
//   ...                                        // keys, output
//   ALOFT_ASSIGN_OR_RETURN(VehicleBundle b, ReadBundle(reader->manifest(), "car.aloft"));
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "core/semver.h"
#include "pkg/package.h"

namespace aloft::vehicle {

inline constexpr std::string_view kBundleDoc = "docs/vehicle-bundle.md";

enum class InstallMethod { kUds, kUdsAb, kAgent };
const char* ToString(InstallMethod m);

// How the driver is involved (docs/rollouts.md maps them onto rollouts): silent installs
// without a word; notify tells and installs; confirm waits for the driver's accept (deferrals
// up to a limit); forced installs without asking, even past the deferral limit.
enum class UpdateMode { kSilent, kNotify, kConfirm, kForced };
const char* ToString(UpdateMode m);
std::optional<UpdateMode> ParseUpdateMode(std::string_view text);

// Conditions on the vehicle signals (COVESA VSS names) for installing; unset ones are not checked.
struct Preconditions {
  std::optional<double> max_speed_kph;    // Vehicle.Speed at most this
  std::vector<int> gears;                 // Vehicle.Powertrain.Transmission.SelectedGear one of
  std::vector<std::string> power_modes;   // Vehicle.LowVoltageSystemState one of
  std::optional<double> min_low_voltage;  // Vehicle.LowVoltageBattery.CurrentVoltage at least
  std::optional<double> min_soc;  // Vehicle.Powertrain.TractionBattery.StateOfCharge.Current
  bool not_charging = false;      // Vehicle.Powertrain.TractionBattery.Charging.IsCharging false
  bool any() const {
    return max_speed_kph || !gears.empty() || !power_modes.empty() || min_low_voltage || min_soc ||
           not_charging;
  }
};

struct CampaignPolicy {
  UpdateMode mode = UpdateMode::kConfirm;
  Preconditions preconditions{};
  std::chrono::seconds max_duration{3600};  // past it, a stopped campaign rolls back
  int max_deferrals = 3;
};

// "ecm >=4.3.0": the version another ECU must run once the campaign is done.
struct VersionConstraint {
  std::string ecu;
  std::string op;  // >=, >, <=, <, =
  SemVer version;
  bool Allows(const SemVer& v) const;
  std::string ToString() const;
};

struct EcuTarget {
  std::string name;      // the component's name: the ECU
  std::string version;   // what it reports (22 F1 89) once it runs the image
  std::string hardware;  // its hardware number (22 F1 91): the image is for that hardware only
  InstallMethod method = InstallMethod::kUds;
  std::string bus;  // a CAN bus of the vehicle, or "doip"
  uint32_t request_id = 0, response_id = 0;
  std::optional<uint16_t> doip_address;
  uint64_t address = 0;                              // where the image is written
  std::vector<std::string> after;                    // ECUs that must be done before this one
  std::vector<VersionConstraint> requires_versions;  // versions other ECUs must end on
  uint64_t security_counter = 0;
  uint64_t size = 0;
  std::string sha256;  // of the image, from the signed manifest
  // A delta component: the payload is a patch against this image, which the ECU must run.
  std::optional<pkg::BaseInfo> base{};
};

struct VehicleBundle {
  std::string name, version;
  std::string model;  // the vehicle model (the package's hardware)
  CampaignPolicy policy;
  std::vector<EcuTarget> ecus;
  const EcuTarget* Find(const std::string& ecu) const;
};

// Reads the vehicle members of a package's manifest; kMalformed naming `origin` and the member
// for anything missing or wrong. The manifest's signatures are the caller's to check first.
Result<VehicleBundle> ReadBundle(const pkg::Manifest& m, const std::string& origin);

// Reads a bundle description (TOML, docs/vehicle-bundle.md) into what `aloft bundle` packs:
// everything but the keys and the output. Image paths are relative to the description's folder.
// kInvalidArgument naming the file, the table and the key for anything wrong.
Result<pkg::PackOptions> LoadBundleDescription(const std::string& path);

// The ECUs in an order that respects every "after" (ties keep the bundle's order); kInvalidArgument
// naming the cycle ("a dependency cycle: abs -> eps -> abs") or an unknown ECU.
Result<std::vector<std::string>> DependencyOrder(const VehicleBundle& b);

}  // namespace aloft::vehicle
