#include "vehicle/bundle.h"

#include <filesystem>
#include <map>
#include <set>

#include "core/toml_reader.h"
#include "ecusim/vehicle_spec.h"

namespace aloft::vehicle {

namespace {

using nlohmann::json;

const std::pair<InstallMethod, const char*> kMethods[] = {{InstallMethod::kUds, "uds"},
                                                          {InstallMethod::kUdsAb, "uds-ab"},
                                                          {InstallMethod::kAgent, "agent"}};
const std::pair<UpdateMode, const char*> kModes[] = {{UpdateMode::kSilent, "silent"},
                                                     {UpdateMode::kNotify, "notify"},
                                                     {UpdateMode::kConfirm, "confirm"},
                                                     {UpdateMode::kForced, "forced"}};

std::optional<InstallMethod> ParseMethod(std::string_view s) {
  for (const auto& [m, name] : kMethods) {
    if (s == name) return m;
  }
  return std::nullopt;
}

Result<VersionConstraint> ParseConstraint(const std::string& text, const std::string& where) {
  auto bad = [&](const std::string& why) {
    return Error(Code::kMalformed, where + ": '" + text + "': " + why +
                                       " (expected 'ECU OP VERSION', OP one of >= > <= < =)");
  };
  const size_t space = text.find(' ');
  if (space == std::string::npos || space == 0) return bad("no ECU name");
  VersionConstraint c;
  c.ecu = text.substr(0, space);
  std::string rest = text.substr(space + 1);
  while (!rest.empty() && rest[0] == ' ') rest.erase(0, 1);
  for (const char* op : {">=", "<=", ">", "<", "="}) {
    if (rest.starts_with(op)) {
      c.op = op;
      break;
    }
  }
  if (c.op.empty()) return bad("no operator");
  std::string v = rest.substr(c.op.size());
  while (!v.empty() && v[0] == ' ') v.erase(0, 1);
  auto parsed = SemVer::Parse(v);
  if (!parsed.ok()) return bad(parsed.error().message());
  c.version = *parsed;
  return c;
}

// Typed reads of one JSON object, errors naming `where` and the member.
class JsonReader {
 public:
  JsonReader(const json& j, std::string where) : j_(j), where_(std::move(where)) {}
  Error Bad(const std::string& key, const std::string& what) const {
    return Error(Code::kMalformed, where_ + "." + key + ": " + what);
  }
  Status Str(const char* key, std::string& out, bool required = false) const {
    if (!j_.contains(key)) return required ? Status(Bad(key, "missing")) : OkStatus();
    if (!j_[key].is_string()) return Bad(key, "expected a string");
    out = j_[key].get<std::string>();
    return OkStatus();
  }
  template <typename T>
  Status Uint(const char* key, T& out, uint64_t max) const {
    if (!j_.contains(key)) return OkStatus();
    if (!j_[key].is_number_unsigned() || j_[key].get<uint64_t>() > max) {
      return Bad(key, "expected an integer from 0 to " + std::to_string(max));
    }
    out = static_cast<T>(j_[key].get<uint64_t>());
    return OkStatus();
  }
  Status Number(const char* key, std::optional<double>& out) const {
    if (!j_.contains(key)) return OkStatus();
    if (!j_[key].is_number()) return Bad(key, "expected a number");
    out = j_[key].get<double>();
    return OkStatus();
  }
  Status Strings(const char* key, std::vector<std::string>& out) const {
    if (!j_.contains(key)) return OkStatus();
    if (!j_[key].is_array()) return Bad(key, "expected an array of strings");
    for (const auto& e : j_[key]) {
      if (!e.is_string()) return Bad(key, "expected an array of strings");
      out.push_back(e.get<std::string>());
    }
    return OkStatus();
  }

 private:
  const json& j_;
  std::string where_;
};

Result<CampaignPolicy> ReadPolicy(const json& j, const std::string& where) {
  CampaignPolicy p;
  if (!j.is_object()) return Error(Code::kMalformed, where + ": expected an object");
  JsonReader r(j, where);
  std::string mode = "confirm";
  ALOFT_RETURN_IF_ERROR(r.Str("mode", mode));
  auto m = ParseUpdateMode(mode);
  if (!m) return r.Bad("mode", "'" + mode + "' is not silent, notify, confirm or forced");
  p.mode = *m;
  uint64_t seconds = 3600;
  ALOFT_RETURN_IF_ERROR(r.Uint("max_duration_s", seconds, 7 * 24 * 3600));
  if (seconds == 0) return r.Bad("max_duration_s", "must be above 0");
  p.max_duration = std::chrono::seconds(seconds);
  ALOFT_RETURN_IF_ERROR(r.Uint("max_deferrals", p.max_deferrals, 1000));
  if (!j.contains("preconditions")) return p;
  const json& pre = j["preconditions"];
  const std::string pw = where + ".preconditions";
  if (!pre.is_object()) return Error(Code::kMalformed, pw + ": expected an object");
  JsonReader q(pre, pw);
  ALOFT_RETURN_IF_ERROR(q.Number("max_speed_kph", p.preconditions.max_speed_kph));
  ALOFT_RETURN_IF_ERROR(q.Number("min_low_voltage", p.preconditions.min_low_voltage));
  ALOFT_RETURN_IF_ERROR(q.Number("min_soc", p.preconditions.min_soc));
  std::vector<std::string> gears;
  ALOFT_RETURN_IF_ERROR(q.Strings("gears", gears));
  for (const std::string& g : gears) {
    auto v = ecusim::ParseGear(g);
    if (!v) return q.Bad("gears", "'" + g + "' is not a gear (P, R, N, D, 1..9)");
    p.preconditions.gears.push_back(*v);
  }
  ALOFT_RETURN_IF_ERROR(q.Strings("power_modes", p.preconditions.power_modes));
  for (const std::string& s : p.preconditions.power_modes) {
    if (s != "OFF" && s != "ACC" && s != "ON" && s != "START") {
      return q.Bad("power_modes", "'" + s + "' is not OFF, ACC, ON or START");
    }
  }
  if (pre.contains("not_charging")) {
    if (!pre["not_charging"].is_boolean()) return q.Bad("not_charging", "expected true or false");
    p.preconditions.not_charging = pre["not_charging"].get<bool>();
  }
  return p;
}

Result<EcuTarget> ReadTarget(const pkg::Component& c, const std::string& where) {
  EcuTarget t;
  t.name = c.name;
  t.security_counter = c.security_counter;
  t.size = c.image.size;
  t.sha256 = c.image.sha256;
  if (c.type == pkg::ComponentType::kDelta) {
    if (!c.base) return Error(Code::kMalformed, where + ".base: missing (a delta component)");
    t.base = c.base;
  }
  if (!c.install.is_object()) return Error(Code::kMalformed, where + ".install: missing");
  JsonReader r(c.install, where + ".install");
  std::string method;
  ALOFT_RETURN_IF_ERROR(r.Str("method", method, true));
  auto m = ParseMethod(method);
  if (!m) return r.Bad("method", "'" + method + "' is not uds, uds-ab or agent");
  t.method = *m;
  ALOFT_RETURN_IF_ERROR(r.Str("version", t.version, true));
  if (auto v = SemVer::Parse(t.version); !v.ok()) return r.Bad("version", v.error().message());
  ALOFT_RETURN_IF_ERROR(r.Str("hardware", t.hardware, true));
  const bool agent = t.method == InstallMethod::kAgent;  // reached through its own agent
  ALOFT_RETURN_IF_ERROR(r.Str("bus", t.bus, !agent));
  ALOFT_RETURN_IF_ERROR(r.Uint("request_id", t.request_id, 0x1FFFFFFF));
  ALOFT_RETURN_IF_ERROR(r.Uint("response_id", t.response_id, 0x1FFFFFFF));
  if (c.install.contains("doip_address")) {
    uint16_t a = 0;
    ALOFT_RETURN_IF_ERROR(r.Uint("doip_address", a, 0xFFFF));
    t.doip_address = a;
  }
  ALOFT_RETURN_IF_ERROR(r.Uint("address", t.address, 0xFFFFFFFF));
  if (!agent && (t.bus == "doip" ? !t.doip_address : (t.request_id == 0 || t.response_id == 0))) {
    return Error(Code::kMalformed, where +
                                       ".install: an ECU on a CAN bus needs request_id and "
                                       "response_id; one on \"doip\" a doip_address");
  }
  ALOFT_RETURN_IF_ERROR(r.Strings("after", t.after));
  std::vector<std::string> requires_text;
  ALOFT_RETURN_IF_ERROR(r.Strings("requires", requires_text));
  for (const std::string& s : requires_text) {
    ALOFT_ASSIGN_OR_RETURN(VersionConstraint v, ParseConstraint(s, where + ".install.requires"));
    t.requires_versions.push_back(std::move(v));
  }
  return t;
}

Status Float(const toml::table& t, const std::string& where, const char* key,
             std::optional<double>& out) {
  auto node = t[key];
  if (!node) return OkStatus();
  auto v = node.value<double>();
  if (!v) return Error(Code::kInvalidArgument, where + ": key '" + key + "' must be a number");
  out = *v;
  return OkStatus();
}

}  // namespace

const char* ToString(InstallMethod m) {
  for (const auto& [k, name] : kMethods) {
    if (k == m) return name;
  }
  return "?";
}

const char* ToString(UpdateMode m) {
  for (const auto& [k, name] : kModes) {
    if (k == m) return name;
  }
  return "?";
}

std::optional<UpdateMode> ParseUpdateMode(std::string_view text) {
  for (const auto& [m, name] : kModes) {
    if (text == name) return m;
  }
  return std::nullopt;
}

bool VersionConstraint::Allows(const SemVer& v) const {
  if (op == ">=") return v >= version;
  if (op == ">") return v > version;
  if (op == "<=") return v <= version;
  if (op == "<") return v < version;
  return v == version;
}

std::string VersionConstraint::ToString() const { return ecu + " " + op + version.ToString(); }

const EcuTarget* VehicleBundle::Find(const std::string& ecu) const {
  for (const EcuTarget& t : ecus) {
    if (t.name == ecu) return &t;
  }
  return nullptr;
}

Result<VehicleBundle> ReadBundle(const pkg::Manifest& m, const std::string& origin) {
  VehicleBundle b;
  b.name = m.name;
  b.version = m.version.ToString();
  if (!m.signed_json.contains("vehicle") || !m.signed_json["vehicle"].is_object()) {
    return Error(Code::kMalformed, origin + ": not a vehicle bundle (no signed.vehicle member; " +
                                       std::string(kBundleDoc) + ")");
  }
  const json& v = m.signed_json["vehicle"];
  JsonReader r(v, origin + ": signed.vehicle");
  ALOFT_RETURN_IF_ERROR(r.Str("model", b.model, true));
  if (std::find(m.hardware.begin(), m.hardware.end(), b.model) == m.hardware.end()) {
    return r.Bad("model", "'" + b.model + "' is not among the package's hardware");
  }
  ALOFT_ASSIGN_OR_RETURN(
      b.policy, ReadPolicy(v.value("policy", json::object()), origin + ": signed.vehicle.policy"));
  for (size_t i = 0; i < m.components.size(); ++i) {
    ALOFT_ASSIGN_OR_RETURN(
        EcuTarget t, ReadTarget(m.components[i], origin + ": components[" + std::to_string(i) +
                                                     "] (" + m.components[i].name + ")"));
    b.ecus.push_back(std::move(t));
  }
  for (const EcuTarget& t : b.ecus) {
    for (const std::string& a : t.after) {
      if (!b.Find(a)) {
        return Error(Code::kMalformed, origin + ": " + t.name + " is to follow '" + a +
                                           "', which is not in the bundle");
      }
    }
  }
  return b;
}

Result<std::vector<std::string>> DependencyOrder(const VehicleBundle& b) {
  // Depth-first, in the bundle's order; a node met again while on the path closes a cycle.
  std::map<std::string, int> state;  // 0 new, 1 on the path, 2 done
  std::vector<std::string> order, path;
  std::function<Status(const EcuTarget&)> visit = [&](const EcuTarget& t) -> Status {
    if (state[t.name] == 2) return OkStatus();
    if (state[t.name] == 1) {
      std::string cycle;
      auto from = std::find(path.begin(), path.end(), t.name);
      for (auto it = from; it != path.end(); ++it) cycle += *it + " -> ";
      return Error(Code::kInvalidArgument, "a dependency cycle: " + cycle + t.name);
    }
    state[t.name] = 1;
    path.push_back(t.name);
    for (const std::string& a : t.after) {
      const EcuTarget* dep = b.Find(a);
      if (!dep) {
        return Error(Code::kInvalidArgument, t.name + " is to follow unknown ECU '" + a + "'");
      }
      ALOFT_RETURN_IF_ERROR(visit(*dep));
    }
    path.pop_back();
    state[t.name] = 2;
    order.push_back(t.name);
    return OkStatus();
  };
  for (const EcuTarget& t : b.ecus) ALOFT_RETURN_IF_ERROR(visit(t));
  return order;
}

Result<pkg::PackOptions> LoadBundleDescription(const std::string& path) {
  ALOFT_ASSIGN_OR_RETURN(toml::table root, ParseToml(path));
  const std::string doc(kBundleDoc);
  TomlReader top(path, root);
  ALOFT_RETURN_IF_ERROR(top.Known({"bundle", "policy", "ecu"}, doc));
  const toml::table* bt = root["bundle"].as_table();
  if (!bt) return Error(Code::kInvalidArgument, path + ": no [bundle] table (see " + doc + ")");
  pkg::PackOptions o;
  std::string model;
  const std::string bw = path + " [bundle]";
  TomlReader br(bw, *bt);
  ALOFT_RETURN_IF_ERROR(br.Known({"name", "version", "model", "compress"}, doc));
  ALOFT_RETURN_IF_ERROR(br.Str("name", o.name));
  ALOFT_RETURN_IF_ERROR(br.Str("version", o.version));
  ALOFT_RETURN_IF_ERROR(br.Str("model", model));
  if (o.name.empty() || o.version.empty() || model.empty()) {
    return Error(Code::kInvalidArgument, bw + ": name, version and model are required");
  }
  std::string compress = "zstd";
  ALOFT_RETURN_IF_ERROR(br.Str("compress", compress));
  auto comp = pkg::ParseCompression(compress);
  if (!comp.ok()) return Error(Code::kInvalidArgument, bw + ": " + comp.error().message());
  o.compression = *comp;
  o.hardware = {model};

  json policy = json::object();
  if (const toml::table* pt = root["policy"].as_table()) {
    const std::string pw = path + " [policy]";
    TomlReader pr(pw, *pt);
    ALOFT_RETURN_IF_ERROR(
        pr.Known({"mode", "max_duration_s", "max_deferrals", "preconditions"}, doc));
    std::string mode = "confirm";
    ALOFT_RETURN_IF_ERROR(pr.Str("mode", mode));
    policy["mode"] = mode;
    uint64_t seconds = 3600, deferrals = 3;
    ALOFT_RETURN_IF_ERROR(pr.Int("max_duration_s", seconds));
    ALOFT_RETURN_IF_ERROR(pr.Int("max_deferrals", deferrals));
    policy["max_duration_s"] = seconds;
    policy["max_deferrals"] = deferrals;
    if (const toml::table* qt = (*pt)["preconditions"].as_table()) {
      const std::string qw = path + " [policy.preconditions]";
      TomlReader qr(qw, *qt);
      ALOFT_RETURN_IF_ERROR(qr.Known(
          {"max_speed_kph", "gears", "power_modes", "min_low_voltage", "min_soc", "not_charging"},
          doc));
      json pre = json::object();
      for (const char* key : {"max_speed_kph", "min_low_voltage", "min_soc"}) {
        std::optional<double> v;
        ALOFT_RETURN_IF_ERROR(Float(*qt, qw, key, v));
        if (v) pre[key] = *v;
      }
      for (const char* key : {"gears", "power_modes"}) {
        std::vector<std::string> v;
        ALOFT_RETURN_IF_ERROR(qr.StrList(key, v));
        if (!v.empty()) pre[key] = v;
      }
      bool not_charging = false;
      ALOFT_RETURN_IF_ERROR(qr.Bool("not_charging", not_charging));
      if (not_charging) pre["not_charging"] = true;
      policy["preconditions"] = pre;
    }
  }
  o.extra = {{"vehicle", {{"model", model}, {"policy", policy}}}};

  const toml::array* ecus = root["ecu"].as_array();
  if (!ecus || ecus->empty()) {
    return Error(Code::kInvalidArgument, path + ": no [[ecu]] (see " + doc + ")");
  }
  const std::filesystem::path dir = std::filesystem::path(path).parent_path();
  for (size_t i = 0; i < ecus->size(); ++i) {
    const std::string ew = path + " [[ecu]] #" + std::to_string(i + 1);
    const toml::table* et = (*ecus)[i].as_table();
    if (!et) return Error(Code::kInvalidArgument, ew + ": expected a table");
    TomlReader er(ew, *et);
    ALOFT_RETURN_IF_ERROR(er.Known(
        {"name", "image", "version", "hardware", "install", "bus", "request_id", "response_id",
         "doip_address", "address", "after", "requires", "security_counter"},
        doc));
    pkg::ComponentSource c;
    std::string image, method = "uds", version, hardware, bus;
    ALOFT_RETURN_IF_ERROR(er.Str("name", c.name));
    ALOFT_RETURN_IF_ERROR(er.Str("image", image));
    ALOFT_RETURN_IF_ERROR(er.Str("version", version));
    ALOFT_RETURN_IF_ERROR(er.Str("hardware", hardware));
    ALOFT_RETURN_IF_ERROR(er.Str("install", method));
    ALOFT_RETURN_IF_ERROR(er.Str("bus", bus));
    if (c.name.empty() || image.empty() || version.empty() || hardware.empty() ||
        (bus.empty() && method != "agent")) {
      return Error(Code::kInvalidArgument,
                   ew + ": name, image, version, hardware and bus are required (an 'agent' ECU "
                        "needs no bus: its image is its own signed package)");
    }
    if (!ParseMethod(method)) {
      return Error(Code::kInvalidArgument,
                   ew + ": install '" + method + "' is not uds, uds-ab or agent");
    }
    if (auto v = SemVer::Parse(version); !v.ok()) {
      return Error(Code::kInvalidArgument, ew + ": version: " + v.error().message());
    }
    c.path = std::filesystem::path(image).is_absolute() ? image : (dir / image).string();
    json install = {{"method", method}, {"version", version}, {"hardware", hardware}};
    if (!bus.empty()) install["bus"] = bus;
    for (const char* key : {"request_id", "response_id", "doip_address", "address"}) {
      if (!(*et)[key]) continue;
      uint64_t v = 0;
      ALOFT_RETURN_IF_ERROR(er.Int(key, v));
      install[key] = v;
    }
    for (const char* key : {"after", "requires"}) {
      std::vector<std::string> v;
      ALOFT_RETURN_IF_ERROR(er.StrList(key, v));
      if (!v.empty()) install[key] = v;
    }
    if ((*et)["security_counter"]) {
      uint64_t counter = 0;
      ALOFT_RETURN_IF_ERROR(er.Int("security_counter", counter));
      c.security_counter = counter;
    }
    c.install = std::move(install);
    o.components.push_back(std::move(c));
  }
  // What the manager will read must read: the same checks, before any image is compressed.
  pkg::Manifest probe;
  probe.name = o.name;
  probe.hardware = o.hardware;
  probe.signed_json = o.extra;
  for (const auto& c : o.components) {
    pkg::Component pc;
    pc.name = c.name;
    pc.install = c.install;
    pc.security_counter = c.security_counter.value_or(0);
    probe.components.push_back(std::move(pc));
  }
  auto bundle = ReadBundle(probe, path);
  if (!bundle.ok()) return Error(Code::kInvalidArgument, bundle.error().message());
  if (auto order = DependencyOrder(*bundle); !order.ok()) {
    return Error(Code::kInvalidArgument, path + ": " + order.error().message());
  }
  return o;
}

}  // namespace aloft::vehicle
