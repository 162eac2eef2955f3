#include "fleetsim/scenario.h"

#include <algorithm>

#include "core/toml_reader.h"

namespace aloft::fleetsim {
namespace {

constexpr char kDoc[] = "docs/fleet-sim.md";

Error Bad(const std::string& where, const std::string& key, const std::string& what) {
  return Error(Code::kInvalidArgument, where + ": key '" + key + "' " + what);
}

// A number (integer or float) from `lo` to `hi`.
Status Number(const std::string& where, const toml::table& t, const char* key, double lo, double hi,
              double& out) {
  auto node = t[key];
  if (!node) return OkStatus();
  double v = 0;
  if (auto i = node.value<int64_t>(); node.is_integer() && i) {
    v = static_cast<double>(*i);
  } else if (auto f = node.value<double>(); node.is_floating_point() && f) {
    v = *f;
  } else {
    return Bad(where, key, "must be a number");
  }
  if (v < lo || v > hi) {
    return Bad(where, key, "must be from " + std::to_string(lo) + " to " + std::to_string(hi));
  }
  out = v;
  return OkStatus();
}

// Seconds (a number) into milliseconds.
Status Seconds(const std::string& where, const toml::table& t, const char* key,
               std::chrono::milliseconds& out) {
  double s = -1;
  ALOFT_RETURN_IF_ERROR(Number(where, t, key, 0, 365.0 * 86400, s));
  if (s >= 0) out = std::chrono::milliseconds(static_cast<int64_t>(s * 1000));
  return OkStatus();
}

Status Faults(const std::string& where, const toml::table& t, DeviceFaults& f) {
  TomlReader r(where, t);
  ALOFT_RETURN_IF_ERROR(r.Known(
      {"download_drop", "health_fail", "power_cut", "vanish", "do", "at_s", "at_wave"}, kDoc));
  ALOFT_RETURN_IF_ERROR(Number(where, t, "download_drop", 0, 1, f.download_drop));
  ALOFT_RETURN_IF_ERROR(Number(where, t, "health_fail", 0, 1, f.health_fail));
  ALOFT_RETURN_IF_ERROR(Number(where, t, "power_cut", 0, 1, f.power_cut));
  ALOFT_RETURN_IF_ERROR(Number(where, t, "vanish", 0, 1, f.vanish));
  return OkStatus();
}

Result<DeviceGroup> Group(const std::string& where, const toml::table& t) {
  TomlReader r(where, t);
  ALOFT_RETURN_IF_ERROR(r.Known({"name", "count", "protocol", "version", "poll_s", "bandwidth_kbps",
                                 "install_s", "reboot_s", "faults", "ecus", "parallel_ecus"},
                                kDoc));
  DeviceGroup g;
  ALOFT_RETURN_IF_ERROR(r.Str("name", g.name));
  std::string protocol = "native";
  ALOFT_RETURN_IF_ERROR(r.Str("protocol", protocol));
  if (protocol == "native") {
    g.protocol = Protocol::kNative;
  } else if (protocol == "mqtt") {
    g.protocol = Protocol::kMqtt;
  } else if (protocol == "ddi") {
    g.protocol = Protocol::kDdi;
  } else {
    return Bad(where, "protocol", "must be native, mqtt or ddi, not '" + protocol + "'");
  }
  ALOFT_RETURN_IF_ERROR(r.Int("count", g.count));
  if (g.count == 0) return Bad(where, "count", "must be at least 1");
  ALOFT_RETURN_IF_ERROR(r.Str("version", g.version));
  ALOFT_RETURN_IF_ERROR(Seconds(where, t, "poll_s", g.poll));
  if (g.poll.count() < 100) return Bad(where, "poll_s", "must be at least 0.1");
  double kbps = -1;
  ALOFT_RETURN_IF_ERROR(Number(where, t, "bandwidth_kbps", 1, 1e7, kbps));
  if (kbps > 0) g.bandwidth_bps = static_cast<uint64_t>(kbps * 1000 / 8);
  ALOFT_RETURN_IF_ERROR(Seconds(where, t, "install_s", g.install));
  ALOFT_RETURN_IF_ERROR(Seconds(where, t, "reboot_s", g.reboot));
  ALOFT_RETURN_IF_ERROR(r.StrList("ecus", g.ecus));
  for (const std::string& ecu : g.ecus) {
    const bool good =
        !ecu.empty() && ecu.size() <= 32 && ecu != "main" &&
        ecu.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_-") == std::string::npos;
    if (!good) {
      return Bad(where, "ecus",
                 "'" + ecu + "' is not a module name (a-z, 0-9, _ and -, up to 32, not main)");
    }
  }
  ALOFT_RETURN_IF_ERROR(r.Int("parallel_ecus", g.parallel_ecus));
  if (g.parallel_ecus < 0 || (g.parallel_ecus > 0 && g.ecus.empty())) {
    return Bad(where, "parallel_ecus", "needs ecus, and must be 1 or more");
  }
  if (g.vehicle() && g.protocol == Protocol::kDdi) {
    return Bad(where, "ecus", "vehicles speak native or mqtt (aloft-vehicle's uplinks), not ddi");
  }
  if (auto f = t["faults"].as_table()) {
    ALOFT_RETURN_IF_ERROR(Faults(where + " [faults]", *f, g.faults));
  } else if (t["faults"]) {
    return Bad(where, "faults", "must be a table");
  }
  return g;
}

Result<Event> ParseEvent(const std::string& where, const toml::table& t) {
  TomlReader r(where, t);
  Event e;
  std::string what;
  ALOFT_RETURN_IF_ERROR(r.Str("do", what));
  if (what == "faults") {
    e.kind = Event::Kind::kFaults;
    ALOFT_RETURN_IF_ERROR(Faults(where, t, e.faults));
  } else {
    ALOFT_RETURN_IF_ERROR(r.Known({"do", "at_s", "at_wave", "server", "for_s"}, kDoc));
    if (what == "kill-server") {
      e.kind = Event::Kind::kKillServer;
    } else if (what == "start-server") {
      e.kind = Event::Kind::kStartServer;
    } else if (what == "restart-postgres") {
      e.kind = Event::Kind::kRestartPostgres;
    } else if (what == "restart-broker") {
      e.kind = Event::Kind::kRestartBroker;
    } else if (what == "cut-network") {
      e.kind = Event::Kind::kCutNetwork;
    } else {
      return Bad(where, "do",
                 "must be kill-server, start-server, restart-postgres, restart-broker, "
                 "cut-network or faults, not '" +
                     what + "'");
    }
    ALOFT_RETURN_IF_ERROR(r.Int("server", e.server));
    ALOFT_RETURN_IF_ERROR(Seconds(where, t, "for_s", e.duration));
    if ((e.kind == Event::Kind::kCutNetwork) != (e.duration.count() > 0)) {
      return Bad(where, "for_s",
                 e.kind == Event::Kind::kCutNetwork ? "must be given (how long the cut lasts)"
                                                    : "belongs to cut-network only");
    }
  }
  std::chrono::milliseconds at{-1};
  ALOFT_RETURN_IF_ERROR(Seconds(where, t, "at_s", at));
  if (at.count() >= 0) e.at = at;
  int wave = 0;
  ALOFT_RETURN_IF_ERROR(r.Int("at_wave", wave));
  if (wave > 0) e.at_wave = wave;
  if (e.at.has_value() == e.at_wave.has_value()) {
    return Error(Code::kInvalidArgument, where + ": give at_s or at_wave (one of them)");
  }
  return e;
}

Status Parse(const toml::table& t, const std::string& path, Scenario& s) {
  TomlReader r(path, t);
  ALOFT_RETURN_IF_ERROR(r.Known({"name", "database", "servers", "connections", "register_s",
                                 "timeout_s", "release", "devices", "rollout", "event", "expect"},
                                kDoc));
  s.path = path;
  s.name = path.substr(path.find_last_of('/') + 1);
  if (s.name.ends_with(".toml")) s.name.resize(s.name.size() - 5);
  ALOFT_RETURN_IF_ERROR(r.Str("name", s.name));
  ALOFT_RETURN_IF_ERROR(r.Str("database", s.database));
  if (s.database != "sqlite" && s.database != "postgres") {
    return Bad(path, "database", "must be sqlite or postgres, not '" + s.database + "'");
  }
  ALOFT_RETURN_IF_ERROR(r.Int("servers", s.servers));
  if (s.servers < 1 || s.servers > 8) return Bad(path, "servers", "must be from 1 to 8");
  if (s.servers > 1 && s.database != "postgres") {
    return Bad(path, "servers", "above 1 needs database = \"postgres\" (SQLite serves one)");
  }
  ALOFT_RETURN_IF_ERROR(r.Int("connections", s.connections));
  if (s.connections < 1 || s.connections > 4096) {
    return Bad(path, "connections", "must be from 1 to 4096");
  }
  ALOFT_RETURN_IF_ERROR(Seconds(path, t, "register_s", s.register_window));
  ALOFT_RETURN_IF_ERROR(Seconds(path, t, "timeout_s", s.timeout));
  if (auto rel = t["release"].as_table()) {
    const std::string where = path + " [release]";
    TomlReader rr(where, *rel);
    ALOFT_RETURN_IF_ERROR(rr.Known({"name", "version", "size"}, kDoc));
    ALOFT_RETURN_IF_ERROR(rr.Str("name", s.release_name));
    ALOFT_RETURN_IF_ERROR(rr.Str("version", s.release_version));
    ALOFT_RETURN_IF_ERROR(rr.Int("size", s.release_size));
    if (s.release_size == 0 || s.release_size > (64 << 20)) {
      return Bad(where, "size", "must be from 1 to 67108864 bytes");
    }
  }
  const toml::array* groups = t["devices"].as_array();
  if (!groups || groups->empty()) {
    return Error(Code::kInvalidArgument, path + ": no [[devices]]: the fleet needs devices");
  }
  for (size_t i = 0; i < groups->size(); ++i) {
    const toml::table* g = (*groups)[i].as_table();
    const std::string where = path + " [[devices]] #" + std::to_string(i + 1);
    if (!g) return Error(Code::kInvalidArgument, where + ": must be a table");
    ALOFT_ASSIGN_OR_RETURN(DeviceGroup group, Group(where, *g));
    s.groups.push_back(std::move(group));
  }
  if (s.devices() > 2'000'000) return Bad(path, "count", "adds up to more than 2,000,000 devices");
  if (auto ro = t["rollout"].as_table()) {
    const std::string where = path + " [rollout]";
    TomlReader rr(where, *ro);
    ALOFT_RETURN_IF_ERROR(rr.Known({"waves"}, kDoc));
    if (const toml::array* waves = (*ro)["waves"].as_array()) {
      for (size_t i = 0; i < waves->size(); ++i) {
        const toml::table* w = (*waves)[i].as_table();
        const std::string wwhere = where + " waves #" + std::to_string(i + 1);
        if (!w) return Error(Code::kInvalidArgument, wwhere + ": must be a table");
        TomlReader wr(wwhere, *w);
        ALOFT_RETURN_IF_ERROR(wr.Known({"percent", "success_threshold", "error_threshold"}, kDoc));
        Wave wave;
        ALOFT_RETURN_IF_ERROR(Number(wwhere, *w, "percent", 0.001, 100, wave.percent));
        ALOFT_RETURN_IF_ERROR(wr.Int("success_threshold", wave.success_threshold));
        ALOFT_RETURN_IF_ERROR(wr.Int("error_threshold", wave.error_threshold));
        if (wave.success_threshold > 100 || wave.error_threshold > 100) {
          return Error(Code::kInvalidArgument, wwhere + ": thresholds are percentages (0-100)");
        }
        s.waves.push_back(wave);
      }
    }
  }
  if (s.waves.empty()) s.waves.push_back({});
  if (const toml::array* events = t["event"].as_array()) {
    for (size_t i = 0; i < events->size(); ++i) {
      const toml::table* e = (*events)[i].as_table();
      const std::string where = path + " [[event]] #" + std::to_string(i + 1);
      if (!e) return Error(Code::kInvalidArgument, where + ": must be a table");
      ALOFT_ASSIGN_OR_RETURN(Event ev, ParseEvent(where, *e));
      if ((ev.kind == Event::Kind::kKillServer || ev.kind == Event::Kind::kStartServer) &&
          ev.server >= s.servers) {
        return Bad(where, "server",
                   "must name one of the " + std::to_string(s.servers) + " servers (0 to " +
                       std::to_string(s.servers - 1) + ")");
      }
      if (ev.kind == Event::Kind::kRestartPostgres && s.database != "postgres") {
        return Error(Code::kInvalidArgument,
                     where + ": restart-postgres needs database = postgres");
      }
      if (ev.kind == Event::Kind::kRestartBroker && !s.Uses(Protocol::kMqtt)) {
        return Error(Code::kInvalidArgument,
                     where + ": restart-broker needs devices with protocol = \"mqtt\"");
      }
      s.events.push_back(ev);
    }
  }
  if (auto ex = t["expect"].as_table()) {
    const std::string where = path + " [expect]";
    TomlReader er(where, *ex);
    ALOFT_RETURN_IF_ERROR(er.Known({"rollout", "wave"}, kDoc));
    ALOFT_RETURN_IF_ERROR(er.Str("rollout", s.expect.rollout));
    if (s.expect.rollout != "finished" && s.expect.rollout != "paused") {
      return Bad(where, "rollout", "must be finished or paused");
    }
    int wave = 0;
    ALOFT_RETURN_IF_ERROR(er.Int("wave", wave));
    if (wave > 0) s.expect.wave = wave;
  }
  return OkStatus();
}

}  // namespace

std::string Event::Describe() const {
  std::string when = at ? "at " + std::to_string(at->count() / 1000.0).substr(0, 5) + " s"
                        : "at wave " + std::to_string(at_wave.value_or(0));
  switch (kind) {
    case Kind::kKillServer:
      return when + ": kill -9 aloftd " + std::to_string(server);
    case Kind::kStartServer:
      return when + ": start aloftd " + std::to_string(server);
    case Kind::kRestartPostgres:
      return when + ": restart PostgreSQL";
    case Kind::kRestartBroker:
      return when + ": restart the MQTT broker";
    case Kind::kCutNetwork:
      return when + ": cut the network for " +
             std::to_string(duration.count() / 1000.0).substr(0, 5) + " s";
    case Kind::kFaults:
      return when + ": faults now health_fail " + std::to_string(faults.health_fail) +
             ", power_cut " + std::to_string(faults.power_cut);
  }
  return when;
}

const char* ToString(Protocol p) {
  switch (p) {
    case Protocol::kNative:
      return "native";
    case Protocol::kMqtt:
      return "mqtt";
    case Protocol::kDdi:
      return "ddi";
  }
  return "?";
}

bool Scenario::Uses(Protocol p) const {
  for (const auto& g : groups) {
    if (g.protocol == p) return true;
  }
  return false;
}

bool Scenario::HasVehicles() const {
  for (const auto& g : groups) {
    if (g.vehicle()) return true;
  }
  return false;
}

bool Scenario::HasBoards() const {
  for (const auto& g : groups) {
    if (!g.vehicle()) return true;
  }
  return false;
}

std::vector<std::string> Scenario::Ecus() const {
  std::vector<std::string> out;
  for (const auto& g : groups) {
    for (const std::string& e : g.ecus) {
      if (std::find(out.begin(), out.end(), e) == out.end()) out.push_back(e);
    }
  }
  return out;
}

bool Scenario::Proxied() const {
  for (const auto& e : events) {
    if (e.kind == Event::Kind::kCutNetwork) return true;
  }
  return false;
}

uint32_t Scenario::devices() const {
  uint64_t n = 0;
  for (const auto& g : groups) n += g.count;
  return static_cast<uint32_t>(std::min<uint64_t>(n, UINT32_MAX));
}

Result<Scenario> ParseScenario(const std::string& text, const std::string& path) {
  toml::table t;
  try {
    t = toml::parse(text, path);
  } catch (const toml::parse_error& e) {
    const auto& where = e.source().begin;
    return Error(Code::kInvalidArgument, path + ":" + std::to_string(where.line) + ":" +
                                             std::to_string(where.column) + ": " +
                                             std::string(e.description()));
  }
  Scenario s;
  ALOFT_RETURN_IF_ERROR(Parse(t, path, s));
  return s;
}

Result<Scenario> LoadScenario(const std::string& path) {
  ALOFT_ASSIGN_OR_RETURN(toml::table t, ParseToml(path));
  Scenario s;
  ALOFT_RETURN_IF_ERROR(Parse(t, path, s));
  return s;
}

}  // namespace aloft::fleetsim
