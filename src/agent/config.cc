#include "agent/config.h"

#include <filesystem>

#include "core/file.h"
#include "core/text.h"
#include "core/toml_reader.h"
#include "mqtt/client.h"
#include "pkg/compress.h"
#include "pkg/manifest.h"

namespace aloft::agent {
namespace {

Status ReadFileModule(TomlReader& r, const toml::table& t, ModuleConfig& m) {
  ALOFT_RETURN_IF_ERROR(r.Known({"name", "layout", "slots", "slot_size", "booted_command",
                                 "activate_command", "commit_command", "command_timeout_s"},
                                "docs/agent.md"));
  FileSlots f;
  f.module = m.name;
  std::vector<std::string> paths;
  int64_t timeout = f.command_timeout.count();
  ALOFT_RETURN_IF_ERROR(r.StrList("slots", paths));
  ALOFT_RETURN_IF_ERROR(r.Int("slot_size", f.slot_size));
  ALOFT_RETURN_IF_ERROR(r.Str("booted_command", f.booted_command));
  ALOFT_RETURN_IF_ERROR(r.Str("activate_command", f.activate_command));
  ALOFT_RETURN_IF_ERROR(r.Str("commit_command", f.commit_command));
  ALOFT_RETURN_IF_ERROR(r.Int("command_timeout_s", timeout));
  if (paths.size() != 2 || paths[0].empty() || paths[1].empty() || paths[0] == paths[1]) {
    return r.Bad("slots", "two different paths (files or block devices)");
  }
  f.paths = {paths[0], paths[1]};
  for (const char* key : {"booted_command", "activate_command", "commit_command"}) {
    if (!t[key]) return r.Bad(key, "set (a shell command; see docs/agent.md)");
  }
  f.command_timeout = std::chrono::seconds(std::max<int64_t>(1, timeout));
  m.file = std::move(f);
  return OkStatus();
}

Status ReadModule(const std::string& where, const toml::table& t, ModuleConfig& m) {
  TomlReader r(where, t);
  ALOFT_RETURN_IF_ERROR(r.Str("name", m.name));
  std::string layout = "ab";
  ALOFT_RETURN_IF_ERROR(r.Str("layout", layout));
  if (layout == "file") return ReadFileModule(r, t, m);
  ALOFT_RETURN_IF_ERROR(r.Known(
      {"name", "layout", "flash", "flash_size", "erase_block", "write_unit"}, "docs/agent.md"));
  auto kind = boot::ParseLayoutKind(layout);
  if (!kind.ok()) return kind.error().WithContext(where + " (or \"file\")");
  m.layout = *kind;
  ALOFT_RETURN_IF_ERROR(r.Str("flash", m.flash));
  ALOFT_RETURN_IF_ERROR(r.Int("flash_size", m.geometry.size));
  ALOFT_RETURN_IF_ERROR(r.Int("erase_block", m.geometry.erase_block));
  ALOFT_RETURN_IF_ERROR(r.Int("write_unit", m.geometry.write_unit));
  if (m.flash.empty()) return r.Bad("flash", "the path of the module's flash file");
  if (Status s = m.geometry.Validate(); !s.ok()) return s.error().WithContext(where);
  if (auto l = boot::Layout::Compute(m.layout, m.geometry); !l.ok()) {
    return l.error().WithContext(where);
  }
  return OkStatus();
}

Result<SubDeviceConfig> ReadSubDevice(const std::string& where, const toml::table& t) {
  TomlReader r(where, t);
  ALOFT_RETURN_IF_ERROR(r.Known({"name", "device_type", "module", "install_command", "health_check",
                                 "max_image_size", "command_timeout_s"},
                                "docs/agent.md"));
  SubDeviceConfig s;
  int64_t timeout = s.command_timeout.count();
  ALOFT_RETURN_IF_ERROR(r.Str("name", s.name));
  ALOFT_RETURN_IF_ERROR(r.Str("device_type", s.device_type));
  ALOFT_RETURN_IF_ERROR(r.Str("module", s.module));
  ALOFT_RETURN_IF_ERROR(r.Str("install_command", s.install_command));
  ALOFT_RETURN_IF_ERROR(r.Str("health_check", s.health_check));
  ALOFT_RETURN_IF_ERROR(r.Int("max_image_size", s.max_image_size));
  ALOFT_RETURN_IF_ERROR(r.Int("command_timeout_s", timeout));
  for (const char* key : {"name", "device_type", "install_command"}) {
    if (!t[key]) return r.Bad(key, "set (it is required)");
  }
  if (!pkg::IsValidName(s.name, 128)) {
    return r.Bad("name", "a device name: letters, digits, '.', '_', '-'");
  }
  if (s.max_image_size == 0) return r.Bad("max_image_size", "more than 0 bytes");
  s.command_timeout = std::chrono::seconds(std::max<int64_t>(1, timeout));
  return s;
}

}  // namespace

Result<std::string> ReadTokenFile(const std::string& path) {
  ALOFT_ASSIGN_OR_RETURN(std::string token, ReadFile(path, 4096));
  while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();
  return token;
}

Status ReadTrustTable(const toml::table& t, const std::string& path, const std::string& doc,
                      crypto::TrustSet& trust) {
  const toml::table* table = t["trust"].as_table();
  if (!table) {
    return Error(Code::kInvalidArgument,
                 path + ": key 'trust' must be a table with keys = [public key files]");
  }
  TomlReader tr(path + " [trust]", *table);
  ALOFT_RETURN_IF_ERROR(tr.Known({"keys", "threshold"}, doc));
  std::vector<std::string> keys;
  size_t threshold = 1;
  ALOFT_RETURN_IF_ERROR(tr.StrList("keys", keys));
  ALOFT_RETURN_IF_ERROR(tr.Int("threshold", threshold));
  for (const auto& k : keys) {
    ALOFT_ASSIGN_OR_RETURN(crypto::PublicKey key, crypto::PublicKey::Load(k));
    trust.Add(std::move(key));
  }
  trust.set_threshold(threshold);
  if (Status s = trust.Validate(); !s.ok()) return s.error().WithContext(path + " [trust]");
  return OkStatus();
}

Status ReadDownloadTable(const toml::table& t, const std::string& path, const std::string& doc,
                         DownloadOptions& download) {
  const toml::table* d = t["download"].as_table();
  if (!d) return OkStatus();
  TomlReader dr(path + " [download]", *d);
  ALOFT_RETURN_IF_ERROR(dr.Known({"connect_timeout_ms", "stall_timeout_ms", "max_bytes_per_s",
                                  "backoff_initial_ms", "backoff_max_ms", "max_attempts"},
                                 doc));
  int64_t connect = download.connect_timeout.count(), stall = download.stall_timeout.count(),
          b0 = download.backoff_initial.count(), b1 = download.backoff_max.count();
  ALOFT_RETURN_IF_ERROR(dr.Int("connect_timeout_ms", connect));
  ALOFT_RETURN_IF_ERROR(dr.Int("stall_timeout_ms", stall));
  ALOFT_RETURN_IF_ERROR(dr.Int("max_bytes_per_s", download.max_bytes_per_s));
  ALOFT_RETURN_IF_ERROR(dr.Int("backoff_initial_ms", b0));
  ALOFT_RETURN_IF_ERROR(dr.Int("backoff_max_ms", b1));
  ALOFT_RETURN_IF_ERROR(dr.Int("max_attempts", download.max_attempts));
  download.connect_timeout = std::chrono::milliseconds(connect);
  download.stall_timeout = std::chrono::milliseconds(stall);
  download.backoff_initial = std::chrono::milliseconds(b0);
  download.backoff_max = std::chrono::milliseconds(b1);
  return OkStatus();
}

Result<AgentFile> LoadAgentConfig(const std::string& path) {
  ALOFT_ASSIGN_OR_RETURN(toml::table t, ParseToml(path));
  TomlReader r(path, t);
  ALOFT_RETURN_IF_ERROR(r.Known({"server",
                                 "device",
                                 "token",
                                 "token_file",
                                 "device_type",
                                 "state_dir",
                                 "ca_file",
                                 "cert_file",
                                 "key_file",
                                 "health_check",
                                 "health_timeout_s",
                                 "tries",
                                 "allow_downgrade",
                                 "poll_interval_s",
                                 "max_window",
                                 "reboot_command",
                                 "boot_id_file",
                                 "trust",
                                 "download",
                                 "module",
                                 "attributes",
                                 "mqtt_url",
                                 "mqtt_ca_file",
                                 "push_poll_interval_s",
                                 "mqtt_reply_timeout_ms",
                                 "sub_device",
                                 "uptane",
                                 "encryption_key_file"},
                                "docs/agent.md"));
  AgentFile out;
  AgentConfig& c = out.agent;
  std::string token_file;
  int64_t health_timeout = 60, poll = 300, tries = 3;
  ALOFT_RETURN_IF_ERROR(r.Str("server", c.server));
  ALOFT_RETURN_IF_ERROR(r.Str("device", c.device));
  ALOFT_RETURN_IF_ERROR(r.Str("token", c.token));
  ALOFT_RETURN_IF_ERROR(r.Str("token_file", token_file));
  ALOFT_RETURN_IF_ERROR(r.Str("device_type", c.device_type));
  ALOFT_RETURN_IF_ERROR(r.Str("state_dir", c.state_dir));
  ALOFT_RETURN_IF_ERROR(r.Str("ca_file", c.ca_file));
  ALOFT_RETURN_IF_ERROR(r.StrPair("cert_file", "key_file", c.cert_file, c.key_file));
  ALOFT_RETURN_IF_ERROR(r.Str("encryption_key_file", c.encryption_key_file));
  ALOFT_RETURN_IF_ERROR(r.Str("health_check", c.health_check));
  ALOFT_RETURN_IF_ERROR(r.Int("health_timeout_s", health_timeout));
  ALOFT_RETURN_IF_ERROR(r.Int("tries", tries));
  ALOFT_RETURN_IF_ERROR(r.Bool("allow_downgrade", c.allow_downgrade));
  ALOFT_RETURN_IF_ERROR(r.Int("poll_interval_s", poll));
  ALOFT_RETURN_IF_ERROR(r.Str("reboot_command", out.reboot_command));
  ALOFT_RETURN_IF_ERROR(r.Str("boot_id_file", out.boot_id_file));
  ALOFT_RETURN_IF_ERROR(r.Str("mqtt_url", out.mqtt_url));
  ALOFT_RETURN_IF_ERROR(r.Str("mqtt_ca_file", out.mqtt_ca_file));
  int64_t push_poll = out.push_poll_interval.count(), reply = out.mqtt_reply_timeout.count();
  ALOFT_RETURN_IF_ERROR(r.Int("push_poll_interval_s", push_poll));
  ALOFT_RETURN_IF_ERROR(r.Int("mqtt_reply_timeout_ms", reply));
  out.push_poll_interval = std::chrono::seconds(std::max<int64_t>(1, push_poll));
  out.mqtt_reply_timeout = std::chrono::milliseconds(std::max<int64_t>(100, reply));
  if (!out.mqtt_url.empty()) {
    if (auto u = mqtt::ParseUrl(out.mqtt_url); !u.ok()) {
      return u.error().WithContext(path + ": mqtt_url");
    }
  }
  std::string max_window;
  ALOFT_RETURN_IF_ERROR(r.Str("max_window", max_window));
  if (!max_window.empty()) {
    auto w = pkg::ParseWindow(max_window);
    if (!w.ok()) return r.Bad("max_window", "a power of two from 4K to 128M, e.g. \"1M\"");
    c.max_window = *w;
  }
  for (const char* key : {"server", "device", "device_type", "state_dir"}) {
    if (!t[key]) return r.Bad(key, "set (it is required)");
  }
  if (tries < 1 || tries > 255) return r.Bad("tries", "between 1 and 255");
  c.tries = static_cast<uint8_t>(tries);
  c.health_timeout = std::chrono::seconds(health_timeout);
  c.poll_interval = std::chrono::seconds(std::max<int64_t>(1, poll));
  if (!token_file.empty()) {
    ALOFT_ASSIGN_OR_RETURN(c.token, ReadTokenFile(token_file));
  }
  if (c.token.empty() && c.cert_file.empty()) {
    return r.Bad("token", "set (or token_file, or cert_file and key_file)");
  }

  ALOFT_RETURN_IF_ERROR(ReadTrustTable(t, path, "docs/agent.md", c.trust));
  ALOFT_RETURN_IF_ERROR(ReadDownloadTable(t, path, "docs/agent.md", c.download));
  ALOFT_ASSIGN_OR_RETURN(c.uptane, ReadUptaneTable(t, path, c.state_dir));
  if (const toml::table* a = t["attributes"].as_table()) {
    for (const auto& [k, v] : *a) {
      if (auto s = v.value<std::string>())
        c.attributes[std::string(k.str())] = *s;
      else if (auto i = v.value<int64_t>())
        c.attributes[std::string(k.str())] = *i;
      else if (auto b = v.value<bool>())
        c.attributes[std::string(k.str())] = *b;
      else
        return r.Bad("attributes", "a table of strings, integers or booleans");
    }
  }
  const toml::array* mods = t["module"].as_array();
  if (!mods || mods->empty()) return r.Bad("module", "one or more [[module]] tables");
  for (size_t i = 0; i < mods->size(); ++i) {
    const toml::table* mt = (*mods)[i].as_table();
    if (!mt) return r.Bad("module", "an array of tables ([[module]])");
    ModuleConfig m;
    const std::string where = path + " [[module]] " + std::to_string(i + 1);
    ALOFT_RETURN_IF_ERROR(ReadModule(where, *mt, m));
    if (m.file) m.file->record = c.state_dir + "/" + m.name + ".slots.json";
    for (const auto& other : out.modules) {
      if (other.name == m.name) {
        return Error(Code::kInvalidArgument, where + ": module '" + m.name + "' is given twice");
      }
      if (other.file.has_value() != m.file.has_value()) {
        return Error(Code::kInvalidArgument,
                     where +
                         ": file-layout modules (a Linux device) cannot be mixed with "
                         "simulated flash modules in one agent");
      }
    }
    out.modules.push_back(std::move(m));
  }
  if (const toml::node_view subs = t["sub_device"]; subs) {
    const toml::array* a = subs.as_array();
    if (!a) return r.Bad("sub_device", "an array of tables ([[sub_device]])");
    for (size_t i = 0; i < a->size(); ++i) {
      const toml::table* st = (*a)[i].as_table();
      if (!st) return r.Bad("sub_device", "an array of tables ([[sub_device]])");
      const std::string where = path + " [[sub_device]] " + std::to_string(i + 1);
      ALOFT_ASSIGN_OR_RETURN(SubDeviceConfig s, ReadSubDevice(where, *st));
      for (const auto& other : out.sub_devices) {
        if (other.name == s.name) {
          return Error(Code::kInvalidArgument,
                       where + ": sub-device '" + s.name + "' is given twice");
        }
      }
      if (s.name == c.device) {
        return Error(Code::kInvalidArgument, where + ": a sub-device cannot be the gateway itself");
      }
      out.sub_devices.push_back(std::move(s));
    }
  }
  return out;
}

std::string SubDeviceDir(const AgentFile& gateway, const SubDeviceConfig& s) {
  return gateway.agent.state_dir + "/sub/" + s.name;
}

FileSlots SubDeviceSlots(const AgentFile& gateway, const SubDeviceConfig& s) {
  // The sub-device's "bootloader" is the gateway: `booted` names the slot the sub-device runs,
  // `installing` marks an install_command that has not finished (the sub-device may hold half
  // an image). Activating installs; committing, or rolling back, to a slot the sub-device does
  // not run (or may not fully run) installs that slot's image again.
  const std::string dir = SubDeviceDir(gateway, s);
  const std::string booted = ShellQuote(dir + "/booted"),
                    installing = ShellQuote(dir + "/installing");
  const std::string install =
      "export ALOFT_IMAGE=\"$ALOFT_SLOT_PATH\" ALOFT_DEVICE=" + ShellQuote(s.name) +
      "; echo \"$ALOFT_SLOT_INDEX\" >" + installing + " && (" + s.install_command +
      ") && echo \"$ALOFT_SLOT_INDEX\" >" + booted + " && rm -f " + installing;
  FileSlots f;
  f.module = s.module;
  f.paths = {dir + "/slot-a.img", dir + "/slot-b.img"};
  f.slot_size = s.max_image_size;
  f.booted_command = "cat " + booted;
  f.activate_command = install;
  f.commit_command = "if [ -e " + installing + " ] || [ \"$(cat " + booted +
                     ")\" != \"$ALOFT_SLOT_INDEX\" ]; then " + install + "; fi";
  f.record = dir + "/" + s.module + ".slots.json";
  f.command_timeout = s.command_timeout;
  return f;
}

AgentConfig SubDeviceAgent(const AgentFile& gateway, const SubDeviceConfig& s) {
  AgentConfig c = gateway.agent;  // server, token (the gateway's), trust, download, limits
  c.device = s.name;
  c.device_type = s.device_type;
  c.state_dir = SubDeviceDir(gateway, s);
  c.health_check = s.health_check;
  c.attributes = nlohmann::json::object();
  return c;
}

Status ProvisionSubDevice(const AgentFile& gateway, const SubDeviceConfig& s,
                          const std::string& image, const std::string& version,
                          uint64_t security_counter) {
  const FileSlots slots = SubDeviceSlots(gateway, s);
  std::error_code ec;
  std::filesystem::create_directories(SubDeviceDir(gateway, s), ec);
  if (ec) return Error(Code::kIo, SubDeviceDir(gateway, s) + ": " + ec.message());
  ALOFT_ASSIGN_OR_RETURN(std::string bytes, ReadFile(image, s.max_image_size));
  ALOFT_RETURN_IF_ERROR(WriteFileAtomic(slots.paths[0], bytes, 0600));
  ALOFT_RETURN_IF_ERROR(WriteFileAtomic(SubDeviceDir(gateway, s) + "/booted", "0\n", 0600));
  std::filesystem::remove(slots.paths[1], ec);
  return ProvisionFileSlots(slots, image, version, security_counter);
}

}  // namespace aloft::agent
