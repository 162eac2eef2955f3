// aloft-agent: the device side of Aloft. Parses flags and the config file, powers the device on,
// and runs the agent: one cycle with --once, or as a daemon until SIGTERM. Three kinds of device:
//  - simulated: each module's NOR flash file through the boot model; a reboot the agent asks for
//    is a simulated reset (the flash reopened, the boot model deciding what runs);
//  - Linux (file layout): slots are files or block devices, the bootloader is driven by commands,
//    a reboot runs `reboot_command` and the agent resumes from its journal when it starts again;
//  - sub-devices behind this gateway ([[sub_device]]): each has its own agent, journal and slot
//    files in the gateway's state directory, and an install command that puts an image on it.
// With mqtt_url, the daemon keeps an MQTT connection and checks in when aloftd pushes a command
// (push mode), polling over HTTP only while the broker is unreachable. See docs/agent.md and
// docs/mqtt.md.
#include <CLI/CLI.hpp>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <set>
#include <thread>

#include "agent/agent.h"
#include "agent/command.h"
#include "agent/config.h"
#include "agent/push_link.h"
#include "boot/boot_model.h"
#include "core/file.h"
#include "core/text.h"
#include "flash/sim_flash.h"

namespace {

using namespace aloft;

std::atomic<bool> g_stop{false};

int Fail(const Error& e) {
  std::cerr << "aloft-agent: " << e.ToString() << "\n";
  return e.code() == Code::kInvalidArgument ? 2 : 1;
}

class Device {
 public:
  Device(const agent::AgentFile& config, agent::AgentConfig agent)
      : config_(config), agent_config_(std::move(agent)) {}
  virtual ~Device() = default;
  // A boot: the modules' storage opened, what runs decided, the boot id read. Without `boot`
  // (for `status`), storage is only opened: nothing is written, nothing counted.
  virtual Status PowerOn(bool boot = true) = 0;
  // After the agent asked for a reboot: true when the device was reset in-process and the agent
  // goes on; false when the machine is going down (or is to be rebooted by hand).
  virtual Result<bool> Reboot() = 0;
  virtual void PrintStats() const {}

  // `uplink`: push mode's; nullptr: HTTP.
  std::unique_ptr<agent::Agent> MakeAgent(agent::Uplink* uplink) {
    agent::AgentConfig c = agent_config_;
    c.boot_id = boot_id_;
    return std::make_unique<agent::Agent>(c, modules_, staging_.get(), uplink);
  }

 protected:
  void Clear() {
    modules_.clear();
    storages_.clear();
    staging_.reset();
  }
  Status FileStagingIfNone() {
    if (staging_) return OkStatus();
    ALOFT_ASSIGN_OR_RETURN(staging_,
                           agent::MakeFileStaging(agent_config_.state_dir + "/download.part"));
    return OkStatus();
  }
  // A simulated boot's id, "<prefix>-N": N counts boots in <state_dir>/boot-count, one more when
  // `boot`.
  Status CountBoot(const std::string& prefix, bool boot) {
    const std::string count_file = agent_config_.state_dir + "/boot-count";
    uint64_t boots = 0;
    if (auto t = ReadFile(count_file, 64); t.ok()) boots = std::strtoull(t->c_str(), nullptr, 10);
    if (boot) {
      ++boots;
      ALOFT_RETURN_IF_ERROR(WriteFileAtomic(count_file, std::to_string(boots) + "\n"));
    }
    boot_id_ = prefix + "-" + std::to_string(boots);
    return OkStatus();
  }

  const agent::AgentFile& config_;
  agent::AgentConfig agent_config_;
  std::string boot_id_;
  std::vector<std::unique_ptr<agent::Storage>> storages_;
  std::unique_ptr<agent::Staging> staging_;
  std::vector<agent::Module> modules_;
};

// A Linux device: file-layout modules, a real boot id, a real reboot.
class LinuxDevice final : public Device {
 public:
  explicit LinuxDevice(const agent::AgentFile& config) : Device(config, config.agent) {}

  Status PowerOn(bool) override {
    Clear();
    ALOFT_ASSIGN_OR_RETURN(std::string id, ReadFile(config_.boot_id_file, 256));
    boot_id_ = TrimSpace(id);
    if (boot_id_.empty()) {
      return Error(Code::kUnavailable, config_.boot_id_file + ": empty (boot_id_file)");
    }
    for (const auto& m : config_.modules) {
      ALOFT_ASSIGN_OR_RETURN(auto storage, agent::MakeFileStorage(*m.file));
      storages_.push_back(std::move(storage));
      modules_.push_back({m.name, storages_.back().get()});
    }
    return FileStagingIfNone();
  }

  Result<bool> Reboot() override {
    if (config_.reboot_command.empty()) {
      std::cerr << "aloft-agent: the update is installed; reboot the device to try it "
                   "(reboot_command is not set)\n";
      return false;
    }
    std::cerr << "aloft-agent: rebooting: " << config_.reboot_command << "\n";
    auto out = agent::RunCommand(config_.reboot_command, std::chrono::seconds(60));
    if (!out.ok()) return out.error().WithContext("reboot_command");
    return false;
  }
};

// The simulated device: each module's flash, booted through the boot model.
class SimDevice final : public Device {
 public:
  explicit SimDevice(const agent::AgentFile& config) : Device(config, config.agent) {}

  // A reset: flash files reopened, the boot model run for each module, a new boot id.
  Status PowerOn(bool boot = true) override {
    for (const auto& f : flashes_) {
      flash_time_ += f->elapsed();
      flash_ops_ += f->operations();
    }
    flashes_.clear();
    Clear();
    ALOFT_RETURN_IF_ERROR(CountBoot("sim-boot", boot));
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
    return FileStagingIfNone();
  }

  Result<bool> Reboot() override {
    std::cerr << "aloft-agent: rebooting (simulated reset)\n";
    ALOFT_RETURN_IF_ERROR(PowerOn());
    return true;
  }

  // Simulated flash time and erase/program operations since the process started.
  void PrintStats() const override {
    std::chrono::nanoseconds t = flash_time_;
    uint64_t n = flash_ops_;
    for (const auto& f : flashes_) {
      t += f->elapsed();
      n += f->operations();
    }
    std::fprintf(stderr, "flash (simulated): %llu erase/program operations, %.3f s\n",
                 static_cast<unsigned long long>(n), std::chrono::duration<double>(t).count());
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

  std::vector<std::unique_ptr<flash::SimFlash>> flashes_;
  std::chrono::nanoseconds flash_time_{0};
  uint64_t flash_ops_ = 0;
};

// A sub-device behind this gateway: its slot files, whose "bootloader" is its install command
// (agent/config.h); a reboot is a new boot id, the install command having already run.
class SubDevice final : public Device {
 public:
  SubDevice(const agent::AgentFile& config, const agent::SubDeviceConfig& sub)
      : Device(config, agent::SubDeviceAgent(config, sub)), sub_(sub) {}

  Status PowerOn(bool boot = true) override {
    Clear();
    ALOFT_RETURN_IF_ERROR(CountBoot("sub-boot", boot));
    auto storage = agent::MakeFileStorage(agent::SubDeviceSlots(config_, sub_));
    if (!storage.ok()) {
      return storage.error().WithContext("sub-device " + sub_.name +
                                         " (run `aloft-agent provision --sub-device " + sub_.name +
                                         "`)");
    }
    storages_.push_back(std::move(storage).value());
    modules_.push_back({sub_.module, storages_.back().get()});
    return FileStagingIfNone();
  }

  Result<bool> Reboot() override {
    ALOFT_RETURN_IF_ERROR(PowerOn());
    return true;
  }

 private:
  const agent::SubDeviceConfig& sub_;
};

// One device this process updates: the device itself, or a sub-device behind it.
struct Unit {
  std::string name;
  bool sub = false;
  std::unique_ptr<Device> device;
  std::unique_ptr<agent::Uplink> http;  // push mode only: the fallback of `push`
  std::unique_ptr<agent::Uplink> push;  // push mode only; null: the agent's own HTTP uplink
  std::unique_ptr<agent::Agent> agent;
  void MakeAgent() { agent = device->MakeAgent(push.get()); }
};

void Report(const Unit& u) {
  if (!u.agent->held_reason().empty()) {
    std::cout << (u.sub ? u.name + ": " : "") << "not installing yet: " << u.agent->held_reason()
              << std::endl;
  }
  if (!u.agent->last_outcome()) return;
  const auto& o = *u.agent->last_outcome();
  if (u.sub) std::cout << u.name << ": ";
  std::cout << (o.success ? "update succeeded" : "update failed");
  for (const auto& d : o.details) std::cout << "; " << d;
  std::cout << std::endl;
}

// Runs the agent until idle or until the machine reboots; simulated resets go on in-process.
// `updated`: an update finished (or is waiting for the reboot). Returns the Run error, if any.
Status Cycle(Unit& u, bool& updated) {
  for (int reboots = 0; reboots < 16 && !g_stop; ++reboots) {
    ALOFT_ASSIGN_OR_RETURN(agent::Agent::Step step, u.agent->Run());
    if (step == agent::Agent::Step::kIdle) {
      updated = u.agent->last_outcome().has_value();
      Report(u);
      return OkStatus();
    }
    updated = true;
    u.agent.reset();
    auto goes_on = u.device->Reboot();
    u.MakeAgent();  // even after a failed reboot: the next cycle needs an agent
    if (!goes_on.ok()) return goes_on.error();
    if (!*goes_on) return OkStatus();
  }
  return Error(Code::kInternal, "more than 16 reboots in one cycle");
}

int Provision(const agent::AgentFile& config, const std::string& module, const std::string& image,
              const std::string& version, uint64_t counter) {
  for (const auto& m : config.modules) {
    if (!module.empty() && m.name != module) continue;
    if (m.file) {
      if (Status s = agent::ProvisionFileSlots(*m.file, image, version, counter); !s.ok()) {
        return Fail(s.error());
      }
      std::cout << "module " << m.name << ": recorded " << image << " (" << version
                << ") as the booted slot's image in " << m.file->record << "\n";
      return 0;
    }
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

int ProvisionSub(const agent::AgentFile& config, const std::string& name, const std::string& image,
                 const std::string& version, uint64_t counter) {
  for (const auto& s : config.sub_devices) {
    if (s.name != name) continue;
    if (Status st = agent::ProvisionSubDevice(config, s, image, version, counter); !st.ok()) {
      return Fail(st.error().WithContext("sub-device " + name));
    }
    std::cout << "sub-device " << name << ": runs " << image << " (" << version << "); kept in "
              << agent::SubDeviceDir(config, s) << "\n";
    return 0;
  }
  return Fail(Error(Code::kNotFound, "no [[sub_device]] named '" + name + "' in the config"));
}

// The daemon: cycles every unit, then waits for a pushed command (push mode, while the broker is
// connected: aloftd says when), or polls after the server's poll interval (HTTP, or push mode
// while the broker is unreachable). A unit whose cycle failed is retried with backoff.
int Daemon(const agent::AgentFile& config, std::vector<Unit>& units, agent::PushLink* link) {
  std::set<std::string> due, retry;
  for (const auto& u : units) due.insert(u.name);
  // The first cycle checks every unit: what the link's first connect woke is covered by it.
  if (link) link->Wait(std::chrono::milliseconds(0), std::chrono::milliseconds(0), &g_stop);
  auto backoff = std::chrono::seconds(5);
  while (!g_stop) {
    for (auto& u : units) {
      if (g_stop) break;
      if (!due.count(u.name)) continue;
      bool updated = false;
      Status s = Cycle(u, updated);
      if (s.ok()) {
        retry.erase(u.name);
        continue;
      }
      std::cerr << "aloft-agent: " << (u.sub ? u.name + ": " : "") << s.error().ToString()
                << " (retrying in " << backoff.count() << " s)\n";
      retry.insert(u.name);
    }
    auto wait = units.front().agent->poll_interval();
    for (const auto& u : units) wait = std::min(wait, u.agent->poll_interval());
    auto push_wait = config.push_poll_interval;
    if (!retry.empty()) {
      wait = std::min(wait, backoff);
      push_wait = std::min(push_wait, backoff);
      backoff = std::min(backoff * 2, std::chrono::seconds(300));
    } else {
      backoff = std::chrono::seconds(5);
    }
    due.clear();
    if (link) {
      due = link->Wait(push_wait, wait, &g_stop);
    } else {
      for (auto t = std::chrono::seconds(0); t < wait && !g_stop; t += std::chrono::seconds(1)) {
        std::this_thread::sleep_for(std::chrono::seconds(1));
      }
    }
    if (due.empty()) {
      for (const auto& u : units) due.insert(u.name);  // the poll interval ran out
    }
    due.insert(retry.begin(), retry.end());
  }
  if (link) {
    auto n = link->counts();
    std::cerr << "aloft-agent: push: " << n.commands << " commands received; check-ins "
              << n.mqtt_checkins << " over MQTT, " << n.http_checkins << " over HTTP; reports "
              << n.mqtt_reports << " over MQTT, " << n.http_reports << " over HTTP\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "aloft-agent: checks for updates, downloads with resume, verifies, installs into A/B or\n"
      "backup flash, health-checks, commits or rolls back, and reports to aloftd.\n"
      "Modules are simulated NOR flash (ab, backup: files with a boot model) or, on Linux,\n"
      "file-layout slots (files or block devices and bootloader commands); see docs/agent.md.\n"
      "With mqtt_url it waits for commands pushed over MQTT; with [[sub_device]] tables it is\n"
      "also the gateway of those devices (docs/mqtt.md)."};
  std::string config_file;
  bool once = false;
  app.add_option("-c,--config", config_file, "The agent's TOML file")->required();
  app.add_flag("--once", once, "One check-and-update cycle (each sub-device too), then exit");
  auto* status = app.add_subcommand("status", "Print the state, versions and slots");
  auto* provision =
      app.add_subcommand("provision",
                         "Simulated flash: create a module's flash with a factory image. File "
                         "layout: record the image the booted slot holds (no slot is written). "
                         "Sub-device: record the image it runs");
  std::string image, version = "1.0.0", module, sub_device;
  uint64_t counter = 0;
  provision->add_option("--image", image, "The factory image file")->required();
  provision->add_option("--version", version, "Its version")->capture_default_str();
  provision->add_option("--module", module, "Which module (default: the first)");
  provision->add_option("--sub-device", sub_device, "A sub-device of this gateway instead");
  provision->add_option("--security-counter", counter, "The device's initial security counter");
  CLI11_PARSE(app, argc, argv);

  auto config = agent::LoadAgentConfig(config_file);
  if (!config.ok()) return Fail(config.error());
  std::filesystem::create_directories(config->agent.state_dir);
  if (provision->parsed()) {
    if (!sub_device.empty()) return ProvisionSub(*config, sub_device, image, version, counter);
    return Provision(*config, module, image, version, counter);
  }

  std::vector<Unit> units;
  units.push_back({config->agent.device, false, nullptr, nullptr, nullptr, nullptr});
  if (config->file_layout()) {
    units[0].device = std::make_unique<LinuxDevice>(*config);
  } else {
    units[0].device = std::make_unique<SimDevice>(*config);
  }
  for (const auto& s : config->sub_devices) {
    units.push_back(
        {s.name, true, std::make_unique<SubDevice>(*config, s), nullptr, nullptr, nullptr});
  }
  for (auto& u : units) {
    if (Status s = u.device->PowerOn(!status->parsed()); !s.ok()) return Fail(s.error());
  }
  if (status->parsed()) {
    for (auto& u : units) {
      u.MakeAgent();
      auto text = u.agent->StatusText();
      if (!text.ok()) return Fail(text.error());
      std::cout << *text;
    }
    return 0;
  }
  std::signal(SIGTERM, [](int) { g_stop = true; });
  std::signal(SIGINT, [](int) { g_stop = true; });
  std::unique_ptr<agent::PushLink> link;
  if (!once && !config->mqtt_url.empty()) {
    agent::PushLinkOptions o;
    o.url = config->mqtt_url;
    o.ca_file = config->mqtt_ca_file;
    o.user = config->agent.device;
    o.token = config->agent.token;
    o.cert_file = config->agent.cert_file;
    o.key_file = config->agent.key_file;
    o.reply_timeout = config->mqtt_reply_timeout;
    auto started = agent::PushLink::Start(o, std::cerr);
    if (!started.ok()) return Fail(started.error().WithContext("mqtt_url"));
    link = std::move(started).value();
  }
  for (auto& u : units) {
    if (link) {
      u.http = agent::MakeHttpUplink(config->agent.server, u.name, config->agent.token,
                                     config->agent.tls());
      u.push = link->UplinkFor(u.name, u.http.get());
    }
    u.MakeAgent();
  }
  if (once) {
    for (auto& u : units) {
      bool updated = false;
      Status s = Cycle(u, updated);
      if (!s.ok()) return Fail(u.sub ? s.error().WithContext("sub-device " + u.name) : s.error());
      if (!updated) std::cout << (u.sub ? u.name + ": " : "") << "no update\n";
      u.device->PrintStats();
    }
    return 0;
  }
  if (link) {
    const bool ready = link->WaitReady(config->mqtt_reply_timeout);
    std::cerr << "aloft-agent: " << config->agent.device << " waits for commands over "
              << config->mqtt_url
              << (ready ? "" : " (not connected yet: polling " + config->agent.server + ")")
              << "\n";
  } else {
    std::cerr << "aloft-agent: " << config->agent.device << " polling " << config->agent.server
              << "\n";
  }
  return Daemon(*config, units, link.get());
}
