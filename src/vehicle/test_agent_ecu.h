// For tests: a Linux ECU that runs aloft-agent (the agent library, module "main" on a simulated
// A/B flash provisioned with 1.0.0) against the gateway's in-car device API over loopback.
// Step() runs its agent once (one check-in, and whatever the answer asks), restarting it when
// it asks to.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "agent/agent.h"
#include "agent/test_device.h"
#include "boot/boot_model.h"
#include "core/hash.h"
#include "flash/sim_flash.h"

namespace aloft::testing {

class AgentEcuDevice {
 public:
  static constexpr flash::FlashGeometry kGeometry{256 * 1024, 4096, 8};

  AgentEcuDevice(std::filesystem::path dir, uint16_t gateway_port, std::string name,
                 std::string token, crypto::TrustSet trust)
      : dir_(std::move(dir)),
        port_(gateway_port),
        name_(std::move(name)),
        token_(std::move(token)),
        trust_(std::move(trust)) {
    layout_ = boot::Layout::Compute(boot::LayoutKind::kAb, kGeometry).value();
    std::filesystem::create_directories(dir_ / "state");
    auto f = flash::SimFlash::Create(dir_ / "flash", kGeometry);
    if (f.ok()) (void)boot::Provision(*f, layout_, RandomBytes(40000, 1), "1.0.0", 0);
    Boot();
  }

  // The ECU starts (again): its bootloader picks a slot, its agent begins from its journal.
  void Boot() {
    agent_.reset();
    staging_.reset();
    storage_.reset();
    flash_.reset();
    auto opened = flash::SimFlash::Open(dir_ / "flash", kGeometry);
    if (!opened.ok()) return;
    flash_.emplace(std::move(opened).value());
    auto booted = boot::Boot(*flash_, layout_);
    if (!booted.ok()) return;
    storage_ = agent::MakeFlashStorage(*flash_, layout_, booted->slot);
    staging_ = StagingFor(*flash_, layout_, dir_ / "state");
    agent::AgentConfig c;
    c.server = "http://127.0.0.1:" + std::to_string(port_);
    c.device = name_;
    c.token = token_;
    c.device_type = "board-a";
    c.state_dir = dir_ / "state";
    c.boot_id = "boot-" + std::to_string(++boots_);
    c.trust = trust_;
    agent_.emplace(c, std::vector<agent::Module>{{"main", storage_.get()}}, staging_.get());
  }

  // One run of its agent; a restart when it asked for one.
  Result<agent::Agent::Step> Step() {
    if (!agent_) return Error(Code::kInternal, "the device did not start");
    auto step = agent_->Run();
    if (step.ok() && *step == agent::Agent::Step::kReboot) Boot();
    return step;
  }

  agent::Agent& agent() { return *agent_; }
  int boots() const { return boots_; }

 private:
  std::filesystem::path dir_;
  uint16_t port_;
  std::string name_, token_;
  crypto::TrustSet trust_;
  boot::Layout layout_;
  std::optional<flash::SimFlash> flash_;
  std::unique_ptr<agent::Storage> storage_;
  std::unique_ptr<agent::Staging> staging_;
  std::optional<agent::Agent> agent_;
  int boots_ = 0;
};

}  // namespace aloft::testing
