#include "ecusim/vehicle_spec.h"

#include <set>

#include "core/encoding.h"
#include "core/file.h"
#include "core/toml_reader.h"

namespace aloft::ecusim {

namespace {

Status Range(const std::string& where, const char* key, uint64_t value, uint64_t max) {
  if (value > max) {
    return Error(Code::kInvalidArgument,
                 where + ": key '" + key + "' is above " + std::to_string(max));
  }
  return OkStatus();
}

Status Double(const toml::table& t, const std::string& where, const char* key, double& out) {
  auto node = t[key];
  if (!node) return OkStatus();
  if (auto v = node.value<double>()) {
    out = *v;
    return OkStatus();
  }
  return Error(Code::kInvalidArgument, where + ": key '" + key + "' must be a number");
}

Result<BusSpec> ParseBus(const toml::table& t, const std::string& where) {
  TomlReader r(where, t);
  ALOFT_RETURN_IF_ERROR(
      r.Known({"name", "bitrate", "data_bitrate", "error_rate"}, "docs/vehicle-network.md"));
  BusSpec b;
  ALOFT_RETURN_IF_ERROR(r.Str("name", b.name));
  if (b.name.empty() || b.name == "doip") {
    return Error(Code::kInvalidArgument, where + ": a bus needs a name (not 'doip')");
  }
  ALOFT_RETURN_IF_ERROR(r.Int("bitrate", b.rates.nominal));
  ALOFT_RETURN_IF_ERROR(r.Int("data_bitrate", b.rates.data));
  for (uint32_t rate : {b.rates.nominal, b.rates.data}) {
    if (rate != 0 && (rate < 10'000 || rate > 8'000'000)) {
      return Error(Code::kInvalidArgument, where + ": bit rate " + std::to_string(rate) +
                                               " is outside 10 kbit/s..8 Mbit/s");
    }
  }
  if (b.rates.nominal == 0) return Error(Code::kInvalidArgument, where + ": bitrate 0");
  b.fd = b.rates.data != 0;
  ALOFT_RETURN_IF_ERROR(Double(t, where, "error_rate", b.error_rate));
  return b;
}

Result<EcuSpec> ParseEcu(const toml::table& t, const std::string& where) {
  TomlReader r(where, t);
  ALOFT_RETURN_IF_ERROR(r.Known({"name",
                                 "bus",
                                 "request_id",
                                 "response_id",
                                 "functional_id",
                                 "extended_ids",
                                 "doip_address",
                                 "layout",
                                 "software",
                                 "part_number",
                                 "serial",
                                 "hardware_version",
                                 "boot_version",
                                 "app_address",
                                 "app_size",
                                 "erase_block",
                                 "max_block_length",
                                 "secret",
                                 "signals",
                                 "faults",
                                 "boot_time_ms",
                                 "trusted_key",
                                 "key_algorithm",
                                 "access",
                                 "auth_anchor",
                                 "decrypt_key"},
                                "docs/vehicle-network.md"));
  EcuSpec e;
  EcuConfig& c = e.config;
  ALOFT_RETURN_IF_ERROR(r.Str("name", c.name));
  if (c.name.empty() || c.name.find('/') != std::string::npos) {
    return Error(Code::kInvalidArgument, where + ": an ECU needs a name without '/'");
  }
  ALOFT_RETURN_IF_ERROR(r.Str("bus", e.bus));
  ALOFT_RETURN_IF_ERROR(r.Int("request_id", e.request_id));
  ALOFT_RETURN_IF_ERROR(r.Int("response_id", e.response_id));
  ALOFT_RETURN_IF_ERROR(r.Int("functional_id", e.functional_id));
  ALOFT_RETURN_IF_ERROR(r.Bool("extended_ids", e.extended_ids));
  const uint64_t max_id = e.extended_ids ? 0x1FFFFFFF : 0x7FF;
  ALOFT_RETURN_IF_ERROR(Range(where, "request_id", e.request_id, max_id));
  ALOFT_RETURN_IF_ERROR(Range(where, "response_id", e.response_id, max_id));
  ALOFT_RETURN_IF_ERROR(Range(where, "functional_id", e.functional_id, max_id));
  if (t["doip_address"]) {
    uint64_t a = 0;
    ALOFT_RETURN_IF_ERROR(r.Int("doip_address", a));
    ALOFT_RETURN_IF_ERROR(Range(where, "doip_address", a, 0xFFFF));
    e.doip_address = static_cast<uint16_t>(a);
  }
  std::string layout = "single";
  ALOFT_RETURN_IF_ERROR(r.Str("layout", layout));
  if (layout == "ab") {
    c.layout = BankLayout::kAb;
  } else if (layout != "single") {
    return Error(Code::kInvalidArgument, where + ": layout '" + layout + "' (ab or single)");
  }
  ALOFT_RETURN_IF_ERROR(r.Str("software", e.software));
  ALOFT_RETURN_IF_ERROR(r.Str("part_number", c.part_number));
  ALOFT_RETURN_IF_ERROR(r.Str("serial", c.serial));
  ALOFT_RETURN_IF_ERROR(r.Str("hardware_version", c.hardware_version));
  ALOFT_RETURN_IF_ERROR(r.Str("boot_version", c.boot_version));
  ALOFT_RETURN_IF_ERROR(r.Int("app_address", c.app_address));
  ALOFT_RETURN_IF_ERROR(r.Int("app_size", c.app_size));
  ALOFT_RETURN_IF_ERROR(r.Int("erase_block", c.erase_block));
  ALOFT_RETURN_IF_ERROR(r.Int("max_block_length", c.max_block_length));
  ALOFT_RETURN_IF_ERROR(Range(where, "max_block_length", c.max_block_length, 0xFFFF));
  int64_t boot_ms = c.boot_time.count();
  ALOFT_RETURN_IF_ERROR(r.Int("boot_time_ms", boot_ms));
  c.boot_time = std::chrono::milliseconds(boot_ms);
  std::string secret;
  ALOFT_RETURN_IF_ERROR(r.Str("secret", secret));
  if (!secret.empty()) {
    auto bytes = HexDecode(secret);
    if (!bytes.ok() || bytes->size() < 16) {
      return Error(Code::kInvalidArgument, where + ": key 'secret' must be hex, 16 bytes or more");
    }
    c.secret = *bytes;
  }
  std::string algorithm = "hmac-sha256";
  ALOFT_RETURN_IF_ERROR(r.Str("key_algorithm", algorithm));
  if (algorithm == "xor") {
    c.key_algorithm = KeyAlgorithm::kXor;
  } else if (algorithm != "hmac-sha256") {
    return Error(Code::kInvalidArgument,
                 where + ": key_algorithm '" + algorithm + "' (hmac-sha256 or xor)");
  }
  std::string access = "0x27";
  ALOFT_RETURN_IF_ERROR(r.Str("access", access));
  if (access == "0x29") {
    c.access = ProgrammingAccess::kAuthentication;
  } else if (access == "0x27+0x29") {
    c.access = ProgrammingAccess::kBoth;
  } else if (access != "0x27") {
    return Error(Code::kInvalidArgument,
                 where + ": access '" + access + "' (0x27, 0x29 or 0x27+0x29)");
  }
  std::string anchor;
  ALOFT_RETURN_IF_ERROR(r.Str("auth_anchor", anchor));
  if (!anchor.empty()) {
    auto certs = crypto::Certificate::Load(anchor);
    if (!certs.ok()) {
      return Error(Code::kInvalidArgument, where + ": auth_anchor: " + certs.error().message());
    }
    c.auth_anchors = std::move(*certs);
  }
  if (c.access != ProgrammingAccess::kSecurityAccess && c.auth_anchors.empty()) {
    return Error(Code::kInvalidArgument,
                 where + ": access " + access + " needs auth_anchor (the testers' root CA, PEM)");
  }
  std::string trusted;
  ALOFT_RETURN_IF_ERROR(r.Str("trusted_key", trusted));
  if (!trusted.empty()) {
    auto key = crypto::PublicKey::Load(trusted);
    if (!key.ok())
      return Error(Code::kInvalidArgument, where + ": trusted_key: " + key.error().message());
    c.trusted_key = *key;
  }
  std::string decrypt;
  ALOFT_RETURN_IF_ERROR(r.Str("decrypt_key", decrypt));
  if (!decrypt.empty()) {
    auto key = crypto::RecipientKey::Load(decrypt);
    if (!key.ok()) {
      return Error(Code::kInvalidArgument, where + ": decrypt_key: " + key.error().message());
    }
    c.decrypt_key = std::make_shared<const crypto::RecipientKey>(std::move(*key));
  }
  ALOFT_RETURN_IF_ERROR(r.Bool("signals", e.signals));
  if (const toml::table* f = t["faults"].as_table()) {
    const std::string fw = where + " [faults]";
    TomlReader fr(fw, *f);
    ALOFT_RETURN_IF_ERROR(
        fr.Known({"reset_at_block", "power_loss_at_block", "hang_at_block", "corrupt_at_block",
                  "power_off_ms", "slow_ms", "nrc", "drop_rate"},
                 "docs/vehicle-network.md"));
    int64_t v = -1;
    ALOFT_RETURN_IF_ERROR(fr.Int("hang_at_block", v));
    if (v >= 0) c.faults.hang_at_block = static_cast<int>(v);
    v = -1;
    ALOFT_RETURN_IF_ERROR(fr.Int("corrupt_at_block", v));
    if (v >= 0) c.faults.corrupt_at_block = static_cast<int>(v);
    v = -1;
    ALOFT_RETURN_IF_ERROR(fr.Int("reset_at_block", v));
    if (v >= 0) c.faults.reset_at_block = static_cast<int>(v);
    v = -1;
    ALOFT_RETURN_IF_ERROR(fr.Int("power_loss_at_block", v));
    if (v >= 0) c.faults.power_loss_at_block = static_cast<int>(v);
    int64_t ms = c.faults.power_off.count();
    ALOFT_RETURN_IF_ERROR(fr.Int("power_off_ms", ms));
    c.faults.power_off = std::chrono::milliseconds(ms);
    ms = 0;
    ALOFT_RETURN_IF_ERROR(fr.Int("slow_ms", ms));
    c.faults.slow = std::chrono::milliseconds(ms);
    std::vector<std::string> nrcs;
    ALOFT_RETURN_IF_ERROR(fr.StrList("nrc", nrcs));
    for (const std::string& n : nrcs) {  // "22:31": service 0x22 answered NRC 0x31, once
      auto bytes = n.size() == 5 && n[2] == ':' ? HexDecode(n.substr(0, 2) + n.substr(3))
                                                : Result<Bytes>(Error(Code::kInvalidArgument, ""));
      if (!bytes.ok()) {
        return Error(Code::kInvalidArgument,
                     fw + ": nrc '" + n + "' must be SERVICE:NRC in hex, like \"22:31\"");
      }
      c.faults.nrc[(*bytes)[0]] = (*bytes)[1];
    }
    ALOFT_RETURN_IF_ERROR(Double(*f, fw, "drop_rate", e.drop_rate));
  }
  return e;
}

}  // namespace

std::optional<int> ParseGear(const std::string& g) {
  if (g == "P") return 126;
  if (g == "D") return 127;
  if (g == "R") return -1;
  if (g == "N") return 0;
  if (g.size() == 1 && g[0] >= '1' && g[0] <= '9') return g[0] - '0';
  return std::nullopt;
}

Result<VehicleSpec> ParseVehicleSpec(const std::string& text, const std::string& where) {
  toml::table t;
  try {
    t = toml::parse(text, where);
  } catch (const toml::parse_error& e) {
    return Error(Code::kInvalidArgument, where + ":" + std::to_string(e.source().begin.line) +
                                             ": " + std::string(e.description()));
  }
  TomlReader r(where, t);
  ALOFT_RETURN_IF_ERROR(
      r.Known({"vehicle", "bus", "doip", "ecu", "signals"}, "docs/vehicle-network.md"));
  VehicleSpec v;
  if (const toml::table* vt = t["vehicle"].as_table()) {
    TomlReader vr(where + " [vehicle]", *vt);
    ALOFT_RETURN_IF_ERROR(vr.Known({"name", "vin"}, "docs/vehicle-network.md"));
    ALOFT_RETURN_IF_ERROR(vr.Str("name", v.name));
    ALOFT_RETURN_IF_ERROR(vr.Str("vin", v.vin));
  }
  if (v.vin.size() != 17) {
    return Error(Code::kInvalidArgument, where + ": the VIN '" + v.vin + "' is not 17 characters");
  }
  std::set<std::string> names;
  if (const toml::array* buses = t["bus"].as_array()) {
    for (size_t i = 0; i < buses->size(); ++i) {
      const toml::table* bt = (*buses)[i].as_table();
      const std::string w = where + " [[bus]] #" + std::to_string(i + 1);
      if (!bt) return Error(Code::kInvalidArgument, w + ": not a table");
      ALOFT_ASSIGN_OR_RETURN(BusSpec b, ParseBus(*bt, w));
      if (!names.insert(b.name).second) {
        return Error(Code::kInvalidArgument, w + ": a second bus named '" + b.name + "'");
      }
      v.buses.push_back(std::move(b));
    }
  }
  if (const toml::table* dt = t["doip"].as_table()) {
    TomlReader dr(where + " [doip]", *dt);
    ALOFT_RETURN_IF_ERROR(
        dr.Known({"logical_address", "require_tls", "max_sockets"}, "docs/vehicle-network.md"));
    doip::EntityConfig e;
    e.vin = v.vin;
    ALOFT_RETURN_IF_ERROR(dr.Int("logical_address", e.logical_address));
    ALOFT_RETURN_IF_ERROR(dr.Bool("require_tls", e.require_tls));
    ALOFT_RETURN_IF_ERROR(dr.Int("max_sockets", e.max_sockets));
    v.doip = e;
  }
  std::set<std::string> ecu_names;
  if (const toml::array* ecus = t["ecu"].as_array()) {
    for (size_t i = 0; i < ecus->size(); ++i) {
      const toml::table* et = (*ecus)[i].as_table();
      const std::string w = where + " [[ecu]] #" + std::to_string(i + 1);
      if (!et) return Error(Code::kInvalidArgument, w + ": not a table");
      ALOFT_ASSIGN_OR_RETURN(EcuSpec e, ParseEcu(*et, w));
      e.config.vin = v.vin;
      if (!ecu_names.insert(e.config.name).second) {
        return Error(Code::kInvalidArgument, w + ": a second ECU named '" + e.config.name + "'");
      }
      if (e.bus == "doip" ? !v.doip : !names.count(e.bus)) {
        return Error(Code::kInvalidArgument, w + ": bus '" + e.bus + "' is not described" +
                                                 (e.bus == "doip" ? " (no [doip])" : ""));
      }
      if (e.bus == "doip" && !e.doip_address) {
        return Error(Code::kInvalidArgument, w + ": an ECU on DoIP needs a doip_address");
      }
      if (e.doip_address && !v.doip) {
        return Error(Code::kInvalidArgument, w + ": doip_address without a [doip] edge node");
      }
      v.ecus.push_back(std::move(e));
    }
  }
  if (const toml::table* st = t["signals"].as_table()) {
    const std::string w = where + " [signals]";
    TomlReader sr(w, *st);
    ALOFT_RETURN_IF_ERROR(sr.Known({"speed_kph", "gear", "power_mode", "low_voltage", "soc",
                                    "charging", "id", "period_ms", "bus"},
                                   "docs/vehicle-network.md"));
    Signals& s = v.signals;
    ALOFT_RETURN_IF_ERROR(sr.Str("bus", s.bus));
    if (!s.bus.empty() && std::none_of(v.buses.begin(), v.buses.end(),
                                       [&](const BusSpec& b) { return b.name == s.bus; })) {
      return Error(Code::kInvalidArgument, w + ": bus '" + s.bus + "' is not described");
    }
    ALOFT_RETURN_IF_ERROR(Double(*st, w, "speed_kph", s.speed_kph));
    std::string gear = "P";
    ALOFT_RETURN_IF_ERROR(sr.Str("gear", gear));
    auto g = ParseGear(gear);
    if (!g) return Error(Code::kInvalidArgument, w + ": gear '" + gear + "' (P, R, N, D, 1-9)");
    s.gear = *g;
    ALOFT_RETURN_IF_ERROR(sr.Str("power_mode", s.power_mode));
    ALOFT_RETURN_IF_ERROR(Double(*st, w, "low_voltage", s.low_voltage));
    ALOFT_RETURN_IF_ERROR(Double(*st, w, "soc", s.soc));
    ALOFT_RETURN_IF_ERROR(sr.Bool("charging", s.charging));
    ALOFT_RETURN_IF_ERROR(sr.Int("id", s.id));
    int64_t period = s.period.count();
    ALOFT_RETURN_IF_ERROR(sr.Int("period_ms", period));
    if (period <= 0) return Error(Code::kInvalidArgument, w + ": period_ms must be above 0");
    s.period = std::chrono::milliseconds(period);
  }
  return v;
}

Result<VehicleSpec> LoadVehicleSpec(const std::string& path) {
  ALOFT_ASSIGN_OR_RETURN(std::string text, ReadFile(path, 1 << 20));
  return ParseVehicleSpec(text, path);
}

}  // namespace aloft::ecusim
