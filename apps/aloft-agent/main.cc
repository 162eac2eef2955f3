// aloft-agent: the device side of Aloft. Parses flags and the config file, powers the simulated
// device on (each module's flash file through the boot model), and runs the agent: one cycle with
// --once, or as a daemon until SIGTERM. Reboots the agent asks for are simulated resets: the
// flash is reopened and the boot model decides what runs. See docs/agent.md.
#include <CLI/CLI.hpp>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <thread>

#include "agent/agent.h"
#include "agent/config.h"
#include "boot/boot_model.h"
#include "core/file.h"
#include "flash/sim_flash.h"

namespace {

using namespace aloft;

std::atomic<bool> g_stop{false};

int Fail(const Error& e) {
  std::cerr << "aloft-agent: " << e.ToString() << "\n";
  return e.code() == Code::kInvalidArgument ? 2 : 1;
}

// The simulated device: each module's flash, booted through the boot model.
class SimDevice {
 public:
  explicit SimDevice(const agent::AgentFile& config) : config_(config) {}

  // A reset: flash files reopened, the boot model run for each module, a new boot id. Without
  // `boot`, the flash is only opened (for `status`: nothing is written, nothing counted).
  Status PowerOn(bool boot = true) {
    for (const auto& f : flashes_) {
      flash_time_ += f->elapsed();
      flash_ops_ += f->operations();
    }
    flashes_.clear();
    modules_.clear();
    storages_.clear();
    staging_.reset();
    const std::string count_file = config_.agent.state_dir + "/boot-count";
    uint64_t boots = 0;
    if (auto t = ReadFile(count_file, 64); t.ok()) boots = std::strtoull(t->c_str(), nullptr, 10);
    if (boot) {
      ++boots;
      ALOFT_RETURN_IF_ERROR(WriteFileAtomic(count_file, std::to_string(boots) + "\n"));
    }
    boot_id_ = "sim-boot-" + std::to_string(boots);
    for (const auto& m : config_.modules) {
      ALOFT_ASSIGN_OR_RETURN(boot::Layout layout, boot::Layout::Compute(m.layout, m.geometry));
      auto flash = flash::SimFlash::Open(m.flash, m.geometry);
      if (!flash.ok()) {
        return flash.error().WithContext("module " + m.name + " (run `aloft-agent provision`)");
      }
      auto f = std::make_unique<flash::SimFlash>(std::move(flash).value());
      int slot = -1;
      if (boot) {
        auto booted = boot::Boot(*f, layout);
        if (!booted.ok()) return booted.error().WithContext("module " + m.name + ": boot");
        for (std::string_view line : Lines(booted->log)) {
          std::cerr << "[boot] " << m.name << ": " << line << "\n";
        }
        slot = booted->slot;
      }
      storages_.push_back(agent::MakeFlashStorage(*f, layout, slot));
      if (!staging_ && storages_.back()->staging_region()) {
        staging_ = agent::MakeFlashStaging(*f, *storages_.back()->staging_region());
      }
      modules_.push_back({m.name, storages_.back().get()});
      flashes_.push_back(std::move(f));
    }
    if (!staging_) {
      ALOFT_ASSIGN_OR_RETURN(staging_,
                             agent::MakeFileStaging(config_.agent.state_dir + "/download.part"));
    }
    return OkStatus();
  }

  std::unique_ptr<agent::Agent> MakeAgent() {
    agent::AgentConfig c = config_.agent;
    c.boot_id = boot_id_;
    return std::make_unique<agent::Agent>(c, modules_, staging_.get());
  }

  // Simulated flash time and erase/program operations since the process started.
  std::chrono::nanoseconds flash_time() const {
    std::chrono::nanoseconds t = flash_time_;
    for (const auto& f : flashes_) t += f->elapsed();
    return t;
  }
  uint64_t flash_operations() const {
    uint64_t n = flash_ops_;
    for (const auto& f : flashes_) n += f->operations();
    return n;
  }

 private:
  static std::vector<std::string_view> Lines(std::string_view s) {
    std::vector<std::string_view> out;
    while (!s.empty()) {
      size_t nl = s.find('\n');
      out.push_back(s.substr(0, nl));
      if (nl == std::string_view::npos) break;
      s.remove_prefix(nl + 1);
    }
    return out;
  }

  const agent::AgentFile& config_;
  std::string boot_id_;
  std::vector<std::unique_ptr<flash::SimFlash>> flashes_;
  std::vector<std::unique_ptr<agent::Storage>> storages_;
  std::unique_ptr<agent::Staging> staging_;
  std::vector<agent::Module> modules_;
  std::chrono::nanoseconds flash_time_{0};
  uint64_t flash_ops_ = 0;
};

void Report(const agent::Agent& a) {
  if (!a.last_outcome()) return;
  const auto& o = *a.last_outcome();
  std::cout << (o.success ? "update succeeded" : "update failed");
  for (const auto& d : o.details) std::cout << "; " << d;
  std::cout << "\n";
}

// Runs cycles until idle; reboots are simulated resets. Returns the Run error, if any.
Status Cycle(SimDevice& device, std::unique_ptr<agent::Agent>& a, bool& updated) {
  for (int reboots = 0; reboots < 16 && !g_stop; ++reboots) {
    ALOFT_ASSIGN_OR_RETURN(agent::Agent::Step step, a->Run());
    if (step == agent::Agent::Step::kIdle) {
      updated = a->last_outcome().has_value();
      Report(*a);
      return OkStatus();
    }
    std::cerr << "aloft-agent: rebooting (simulated reset)\n";
    a.reset();
    ALOFT_RETURN_IF_ERROR(device.PowerOn());
    a = device.MakeAgent();
  }
  return Error(Code::kInternal, "more than 16 reboots in one cycle");
}

int Provision(const agent::AgentFile& config, const std::string& module, const std::string& image,
              const std::string& version, uint64_t counter) {
  for (const auto& m : config.modules) {
    if (!module.empty() && m.name != module) continue;
    auto bytes = ReadFile(image, 1ull << 32);
    if (!bytes.ok()) return Fail(bytes.error());
    auto layout = boot::Layout::Compute(m.layout, m.geometry);
    if (!layout.ok()) return Fail(layout.error());
    std::filesystem::create_directories(config.agent.state_dir);
    std::filesystem::remove(m.flash);
    auto flash = flash::SimFlash::Create(m.flash, m.geometry);
    if (!flash.ok()) return Fail(flash.error());
    Status s = boot::Provision(*flash, *layout, AsBytes(*bytes), version, counter);
    if (!s.ok()) return Fail(s.error());
    std::cout << "module " << m.name << ": " << m.flash << " provisioned with " << image << " ("
              << version << ", " << bytes->size() << " bytes)\n"
              << layout->Describe();
    return 0;
  }
  return Fail(Error(Code::kNotFound, "no module '" + module + "' in the config"));
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "aloft-agent: checks for updates, downloads with resume, verifies, installs into A/B or\n"
      "backup flash, health-checks, commits or rolls back, and reports to aloftd.\n"
      "Flash is simulated (NOR files with a boot model); see docs/agent.md."};
  std::string config_file;
  bool once = false;
  app.add_option("-c,--config", config_file, "The agent's TOML file")->required();
  app.add_flag("--once", once, "One check-and-update cycle, then exit");
  auto* status = app.add_subcommand("status", "Print the state, versions and slots");
  auto* provision =
      app.add_subcommand("provision", "Create a module's simulated flash with a factory image");
  std::string image, version = "1.0.0", module;
  uint64_t counter = 0;
  provision->add_option("--image", image, "The factory image file")->required();
  provision->add_option("--version", version, "Its version")->capture_default_str();
  provision->add_option("--module", module, "Which module (default: the first)");
  provision->add_option("--security-counter", counter, "The device's initial security counter");
  CLI11_PARSE(app, argc, argv);

  auto config = agent::LoadAgentConfig(config_file);
  if (!config.ok()) return Fail(config.error());
  std::filesystem::create_directories(config->agent.state_dir);
  if (provision->parsed()) return Provision(*config, module, image, version, counter);

  SimDevice device(*config);
  if (Status s = device.PowerOn(!status->parsed()); !s.ok()) return Fail(s.error());
  auto agent = device.MakeAgent();
  if (status->parsed()) {
    auto text = agent->StatusText();
    if (!text.ok()) return Fail(text.error());
    std::cout << *text;
    return 0;
  }
  std::signal(SIGTERM, [](int) { g_stop = true; });
  std::signal(SIGINT, [](int) { g_stop = true; });
  if (once) {
    bool updated = false;
    Status s = Cycle(device, agent, updated);
    if (!s.ok()) return Fail(s.error());
    if (!updated) std::cout << "no update\n";
    std::fprintf(stderr, "flash (simulated): %llu erase/program operations, %.3f s\n",
                 static_cast<unsigned long long>(device.flash_operations()),
                 std::chrono::duration<double>(device.flash_time()).count());
    return 0;
  }
  std::cerr << "aloft-agent: " << config->agent.device << " polling " << config->agent.server
            << "\n";
  auto backoff = std::chrono::seconds(5);
  while (!g_stop) {
    bool updated = false;
    Status s = Cycle(device, agent, updated);
    auto wait = agent->poll_interval();
    if (!s.ok()) {
      std::cerr << "aloft-agent: " << s.error().ToString() << " (retrying in " << backoff.count()
                << " s)\n";
      wait = backoff;
      backoff = std::min(backoff * 2, std::chrono::seconds(300));
    } else {
      backoff = std::chrono::seconds(5);
    }
    for (auto t = std::chrono::seconds(0); t < wait && !g_stop; t += std::chrono::seconds(1)) {
      std::this_thread::sleep_for(std::chrono::seconds(1));
    }
  }
  return 0;
}
