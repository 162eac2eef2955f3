// Test helpers shared by the agent's device tests: the check-in answer a FaultServer gives for a
// package, an agent configuration for a simulated device, and its staging.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>

#include "agent/agent.h"
#include "boot/boot_model.h"
#include "boot/layout.h"
#include "core/hash.h"
#include "flash/flash.h"
#include "flash/sim_flash.h"
#include "support/fault_server.h"
#include "support/package_fixture.h"

namespace aloft::testing {

// The manifest.json of a package, as JSON.
inline nlohmann::json ManifestOf(const Bytes& package) {
  for (const auto& e : TarEntries(package)) {
    if (e.name == "manifest.json") return nlohmann::json::parse(e.data.begin(), e.data.end());
  }
  return nullptr;
}

// The check-in answer's action 1 offering `package` (with `manifest`) from `server`.
inline nlohmann::json PackageAction(const FaultServer& server, const Bytes& package,
                                    const nlohmann::json& manifest) {
  return {
      {"id", 1},
      {"release", "fw"},
      {"version", manifest["signed"].value("version", "?")},
      {"mode", "forced"},
      {"download",
       {{"url", server.artifact_url()}, {"size", package.size()}, {"sha256", Sha256Hex(package)}}},
      {"manifest", manifest}};
}

// Makes `server` offer `package` (with `manifest` in the check-in answer) as action 1.
inline void OfferPackage(FaultServer& server, const Bytes& package,
                         const nlohmann::json& manifest) {
  server.SetArtifact(package);
  server.SetAction(PackageAction(server, package, manifest));
}

// A board-a device "dev" of `server`, its state in `state_dir`.
inline agent::AgentConfig DeviceConfig(const FaultServer& server, const std::string& state_dir,
                                       crypto::TrustSet trust) {
  agent::AgentConfig c;
  c.server = server.base();
  c.device = "dev";
  c.token = "t";
  c.device_type = "board-a";
  c.state_dir = state_dir;
  c.boot_id = "boot-1";
  c.trust = std::move(trust);
  return c;
}

// The backup layout stages in its download region; ab in <state_dir>/download.part.
inline std::unique_ptr<agent::Staging> StagingFor(flash::Flash& flash, const boot::Layout& layout,
                                                  const std::string& state_dir) {
  if (layout.kind == boot::LayoutKind::kBackup)
    return agent::MakeFlashStaging(flash, layout.download);
  return agent::MakeFileStaging(state_dir + "/download.part").value();
}

// A simulated A/B flash device in `dir`, provisioned with `factory` as version 1.0.0 and booted:
// its flash, the storage of the booted slot and the staging of downloads (`dir`/state).
struct SimAbDevice {
  static constexpr flash::FlashGeometry kGeometry{256 * 1024, 4096, 8};

  SimAbDevice(const std::string& directory, const Bytes& factory_image,
              flash::FlashGeometry g = kGeometry)
      : dir(directory), factory(factory_image), geometry(g) {
    layout = boot::Layout::Compute(boot::LayoutKind::kAb, geometry).value();
    std::filesystem::create_directories(dir + "/state");
    {
      auto f = flash::SimFlash::Create(dir + "/flash", geometry).value();
      if (!boot::Provision(f, layout, factory, "1.0.0", 0).ok())
        throw std::runtime_error("provision");
    }
    flash.emplace(flash::SimFlash::Open(dir + "/flash", geometry).value());
    auto booted = boot::Boot(*flash, layout).value();
    storage = agent::MakeFlashStorage(*flash, layout, booted.slot);
    staging = StagingFor(*flash, layout, dir + "/state");
  }
  // After a reboot: the factory image runs, committed (no trial of anything else).
  bool BootsFactoryImage() const {
    auto again = flash::SimFlash::Open(dir + "/flash", geometry);
    if (!again.ok()) return false;
    auto reboot = boot::Boot(*again, layout);
    return reboot.ok() && !reboot->trial && agent::SlotSha256(reboot->image) == Sha256Hex(factory);
  }
  std::vector<agent::Module> Modules() const { return {{"main", storage.get()}}; }

  std::string dir;
  Bytes factory;
  flash::FlashGeometry geometry;
  boot::Layout layout;
  std::optional<flash::SimFlash> flash;
  std::unique_ptr<agent::Storage> storage;
  std::unique_ptr<agent::Staging> staging;
};

}  // namespace aloft::testing
