// Test helpers shared by the agent's device tests: the check-in answer a FaultServer gives for a
// package, an agent configuration for a simulated device, and its staging.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "agent/agent.h"
#include "boot/layout.h"
#include "core/hash.h"
#include "flash/flash.h"
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

// Makes `server` offer `package` (with `manifest` in the check-in answer) as action 1.
inline void OfferPackage(FaultServer& server, const Bytes& package,
                         const nlohmann::json& manifest) {
  server.SetArtifact(package);
  server.SetAction(
      {{"id", 1},
       {"release", "fw"},
       {"version", manifest["signed"].value("version", "?")},
       {"mode", "forced"},
       {"download",
        {{"url", server.artifact_url()}, {"size", package.size()}, {"sha256", Sha256Hex(package)}}},
       {"manifest", manifest}});
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

}  // namespace aloft::testing
