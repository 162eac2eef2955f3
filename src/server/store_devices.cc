// The Store's device registry: devices, their tags, versions, attributes, gateways, credentials
// and pushes (store.h).
#include <algorithm>
#include <nlohmann/json.hpp>

#include "server/store.h"

namespace aloft::server {

using db::Params;
using db::Rows;

// ---- devices ----

namespace {

// A device is one row: its tags and versions ride along, aggregated by the database, so that a
// device (a check-in's authentication) or a page of devices is one query, not one per device.
// Items are joined by \x1f, a version is "module\x1eversion" (names never hold either byte).
std::string BuildDeviceColumns(bool pg) {
  const std::string sep = pg ? "chr(31)" : "char(31)", pair = pg ? "chr(30)" : "char(30)";
  auto agg = [&](const std::string& what, const std::string& order) {
    return pg ? "string_agg(" + what + ", " + sep + order + ")"
              : "group_concat(" + what + ", " + sep + ")";
  };
  return "d.id, d.name, t.name, d.device_type_id, d.grp, d.attributes, d.created_ms, "
         "d.last_seen_ms, g.name, (SELECT " +
         agg("tag", " ORDER BY tag") + " FROM device_tags WHERE device_id = d.id), (SELECT " +
         agg("module || " + pair + " || version", "") +
         " FROM device_versions WHERE device_id = d.id)";
}
// Built once per engine: the text is on every check-in's authentication.
const std::string& DeviceColumns(db::Engine engine) {
  static const std::string kSqlite = BuildDeviceColumns(false),
                           kPostgres = BuildDeviceColumns(true);
  return engine == db::Engine::kPostgres ? kPostgres : kSqlite;
}
constexpr int kDeviceColumnCount = 11;

std::vector<std::string_view> SplitUnits(std::string_view text, char sep) {
  std::vector<std::string_view> out;
  while (!text.empty()) {
    size_t at = text.find(sep);
    out.push_back(text.substr(0, at));
    if (at == std::string_view::npos) break;
    text.remove_prefix(at + 1);
  }
  return out;
}

}  // namespace

Result<std::vector<Device>> Tx::FillDevices(Rows rows) {
  std::vector<Device> out;
  out.reserve(rows.size());
  for (const auto& r : rows) {
    Device d;
    d.id = r.Int(0);
    d.name = r.Text(1);
    d.device_type = r.Text(2);
    d.device_type_id = r.Int(3);
    d.group = r.OptText(4);
    d.attributes = r.Text(5);
    d.created_ms = r.Int(6);
    d.last_seen_ms = r.OptInt(7);
    d.gateway = r.OptText(8);
    const std::string tags = r.OptText(9).value_or("");
    for (auto t : SplitUnits(tags, '\x1f')) d.tags.emplace_back(t);
    std::sort(d.tags.begin(), d.tags.end());
    const std::string versions = r.OptText(10).value_or("");
    for (auto v : SplitUnits(versions, '\x1f')) {
      size_t at = v.find('\x1e');
      if (at != std::string_view::npos) d.versions[std::string(v.substr(0, at))] = v.substr(at + 1);
    }
    out.push_back(std::move(d));
  }
  return out;
}

Status Tx::InsertTags(int64_t device_id, const std::vector<std::string>& tags) {
  for (const auto& tag : tags) {
    ALOFT_RETURN_IF_ERROR(
        c_.Query("INSERT INTO device_tags (device_id, tag) VALUES (?, ?) ON CONFLICT DO NOTHING",
                 {device_id, tag}));
  }
  return OkStatus();
}

Result<std::optional<int64_t>> Tx::GatewayIdFor(const Device& d) {
  if (!d.gateway) return std::optional<int64_t>();
  ALOFT_ASSIGN_OR_RETURN(Device g, GetDevice(*d.gateway));
  if (g.id == d.id) return Error(Code::kInvalidArgument, "a device cannot be its own gateway");
  if (g.gateway) {
    return Error(Code::kInvalidArgument, "gateway '" + g.name + "' is itself behind gateway '" +
                                             *g.gateway + "'; gateways do not nest");
  }
  if (d.id != 0) {  // an existing device: it must not be a gateway itself
    ALOFT_ASSIGN_OR_RETURN(
        Rows subs,
        c_.Query("SELECT name FROM devices WHERE gateway_id = ? ORDER BY name LIMIT 1", {d.id}));
    if (!subs.empty()) {
      return Error(Code::kInvalidArgument, "device '" + d.name + "' is the gateway of '" +
                                               subs[0].Text(0) + "'; gateways do not nest");
    }
  }
  return std::optional<int64_t>(g.id);
}

Result<Device> Tx::CreateDevice(const Device& d, const std::string& token_hash,
                                const std::string& mqtt_secret) {
  ALOFT_ASSIGN_OR_RETURN(int64_t type_id, DeviceTypeId(d.device_type));
  ALOFT_ASSIGN_OR_RETURN(std::optional<int64_t> gateway_id, GatewayIdFor(d));
  std::optional<std::string> secret;
  if (!mqtt_secret.empty()) secret = mqtt_secret;
  auto rows = c_.Query(
      "INSERT INTO devices (name, device_type_id, token_hash, grp, attributes, created_ms, "
      "mqtt_secret, gateway_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
      {d.name, type_id, token_hash, d.group, d.attributes, d.created_ms, secret, gateway_id});
  if (!rows.ok()) {
    if (rows.error().code() == Code::kAlreadyExists) {
      return Error(Code::kAlreadyExists, "device '" + d.name + "' already exists");
    }
    return std::move(rows).error();
  }
  Device out = d;
  out.id = rows->at(0).Int(0);
  out.device_type_id = type_id;
  for (const auto& tag : d.tags) {
    ALOFT_RETURN_IF_ERROR(
        c_.Query("INSERT INTO device_tags (device_id, tag) VALUES (?, ?) ON CONFLICT DO NOTHING",
                 {out.id, tag}));
  }
  return out;
}

Result<std::vector<Device>> Tx::DevicesWhere(const std::string& where, const Params& params,
                                             Rows* rows_out, const std::string& extra_columns) {
  ALOFT_ASSIGN_OR_RETURN(
      Rows rows, c_.Query("SELECT " + DeviceColumns(c_.engine()) + extra_columns +
                              " FROM devices d JOIN device_types t ON t.id = d.device_type_id "
                              "LEFT JOIN devices g ON g.id = d.gateway_id " +
                              where,
                          params));
  if (rows_out) *rows_out = rows;
  return FillDevices(std::move(rows));
}

Result<Device> Tx::GetDevice(const std::string& name) {
  ALOFT_ASSIGN_OR_RETURN(auto devices, DevicesWhere("WHERE d.name = ?", {name}));
  if (devices.empty()) return NotFound("device", name);
  return std::move(devices[0]);
}

namespace {
std::string DeviceWhere(const DeviceFilter& f, Params& params, db::Engine engine) {
  std::string where = " WHERE 1 = 1";
  if (f.device_type) {
    where += " AND t.name = ?";
    params.push_back(*f.device_type);
  }
  if (f.group) {
    where += " AND d.grp = ?";
    params.push_back(*f.group);
  }
  if (f.tag) {
    where += " AND EXISTS (SELECT 1 FROM device_tags g WHERE g.device_id = d.id AND g.tag = ?)";
    params.push_back(*f.tag);
  }
  if (f.name_prefix) {
    where += " AND substr(d.name, 1, ?) = ?";
    params.push_back(static_cast<int64_t>(f.name_prefix->size()));
    params.push_back(*f.name_prefix);
  }
  if (f.version) {
    where +=
        " AND EXISTS (SELECT 1 FROM device_versions v WHERE v.device_id = d.id AND "
        "v.version = ?";
    params.push_back(*f.version);
    if (f.module) {
      where += " AND v.module = ?";
      params.push_back(*f.module);
    }
    where += ")";
  }
  if (f.state) {
    constexpr const char* kOpen =
        "EXISTS (SELECT 1 FROM actions a WHERE a.device_id = d.id AND a.open = 1)";
    if (*f.state == "updating") {
      where += std::string(" AND ") + kOpen;
    } else if (*f.state == "never-seen") {
      where += std::string(" AND d.last_seen_ms IS NULL AND NOT ") + kOpen;
    } else if (*f.state == "idle") {
      where += std::string(" AND d.last_seen_ms IS NOT NULL AND NOT ") + kOpen;
    } else {  // failing
      where += " AND EXISTS (SELECT 1 FROM actions a WHERE a.device_id = d.id AND ";
      where += kLatestActionFailed;
      where += ")";
    }
  }
  if (f.attribute) {
    // Attributes are a JSON object in text: the engines' own JSON functions read it.
    where += engine == db::Engine::kPostgres ? " AND jsonb_exists(d.attributes::jsonb, ?)"
                                             : " AND json_type(d.attributes, ?) IS NOT NULL";
    params.push_back(engine == db::Engine::kPostgres ? *f.attribute : "$.\"" + *f.attribute + "\"");
  }
  if (f.seen_after_ms) {
    where += " AND d.last_seen_ms > ?";
    params.push_back(*f.seen_after_ms);
  }
  if (!f.names.empty()) {
    where += " AND d.name IN (";
    for (size_t i = 0; i < f.names.size(); ++i) {
      where += i ? ", ?" : "?";
      params.push_back(f.names[i]);
    }
    where += ")";
  }
  return where;
}
}  // namespace

Result<std::vector<Device>> Tx::ListDevices(const DeviceFilter& f) {
  Params params;
  std::string where = DeviceWhere(f, params, c_.engine()) + " ORDER BY d.name LIMIT ? OFFSET ?";
  params.push_back(f.limit);
  params.push_back(f.offset);
  return DevicesWhere(where, params);
}

Result<int64_t> Tx::CountDevices(const DeviceFilter& f) {
  Params params;
  std::string sql =
      "SELECT COUNT(*) FROM devices d JOIN device_types t ON t.id = d.device_type_id" +
      DeviceWhere(f, params, c_.engine());
  ALOFT_ASSIGN_OR_RETURN(Rows rows, c_.Query(sql, params));
  return rows.at(0).Int(0);
}

Status Tx::UpdateDevice(const Device& d) {
  ALOFT_ASSIGN_OR_RETURN(std::optional<int64_t> gateway_id, GatewayIdFor(d));
  ALOFT_RETURN_IF_ERROR(
      c_.Query("UPDATE devices SET grp = ?, attributes = ?, gateway_id = ? WHERE id = ?",
               {d.group, d.attributes, gateway_id, d.id}));
  ALOFT_RETURN_IF_ERROR(c_.Query("DELETE FROM device_tags WHERE device_id = ?", {d.id}));
  for (const auto& tag : d.tags) {
    ALOFT_RETURN_IF_ERROR(
        c_.Query("INSERT INTO device_tags (device_id, tag) VALUES (?, ?) ON CONFLICT DO NOTHING",
                 {d.id, tag}));
  }
  return OkStatus();
}

Result<std::vector<std::pair<std::string, std::string>>> Tx::MqttCredentials() {
  ALOFT_ASSIGN_OR_RETURN(
      Rows rows,
      c_.Query("SELECT name, mqtt_secret FROM devices WHERE mqtt_secret IS NOT NULL ORDER BY id"));
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(rows.size());
  for (const auto& r : rows) out.emplace_back(r.Text(0), r.Text(1));
  return out;
}

Status Tx::PutMqttBridge(const std::string& username, const std::string& hash, int64_t now) {
  ALOFT_RETURN_IF_ERROR(
      c_.Query("INSERT INTO mqtt_bridges (username, password_hash, updated_ms) VALUES (?, ?, ?) "
               "ON CONFLICT (username) DO UPDATE SET password_hash = excluded.password_hash, "
               "updated_ms = excluded.updated_ms",
               {username, hash, now}));
  return OkStatus();
}

Result<std::vector<std::pair<std::string, std::string>>> Tx::MqttBridges() {
  ALOFT_ASSIGN_OR_RETURN(
      Rows rows, c_.Query("SELECT username, password_hash FROM mqtt_bridges ORDER BY username"));
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& r : rows) out.emplace_back(r.Text(0), r.Text(1));
  return out;
}

Result<std::vector<DuePush>> Tx::DuePushes(int64_t now, int64_t after_id, int64_t limit) {
  ALOFT_ASSIGN_OR_RETURN(
      Rows rows,
      c_.Query("SELECT a.id, d.name, g.name FROM actions a JOIN devices d ON d.id = a.device_id "
               "LEFT JOIN devices g ON g.id = d.gateway_id WHERE a.push_due_ms IS NOT NULL AND "
               "a.push_due_ms <= ? AND a.open = 1 AND a.id > ? ORDER BY a.id LIMIT ?",
               {now, after_id, limit}));
  std::vector<DuePush> out;
  out.reserve(rows.size());
  for (const auto& r : rows) out.push_back({r.Int(0), r.Text(1), r.OptText(2)});
  return out;
}

Status Tx::ClearPushes(const std::vector<int64_t>& ids) {
  for (size_t i = 0; i < ids.size(); i += 500) {
    // Integers, written into the statement: one statement per 500 ids.
    std::string sql = "UPDATE actions SET push_due_ms = NULL WHERE id IN (";
    for (size_t j = i; j < std::min(ids.size(), i + 500); ++j) {
      sql += (j == i ? "" : ", ") + std::to_string(ids[j]);
    }
    ALOFT_RETURN_IF_ERROR(c_.Query(sql + ")"));
  }
  return OkStatus();
}

Result<int64_t> Tx::SchedulePushes(const std::vector<int64_t>& device_ids,
                                   std::optional<int64_t> rollout_id, int64_t at) {
  int64_t n = 0;
  if (rollout_id) {
    ALOFT_RETURN_IF_ERROR(c_.Query(
        "UPDATE actions SET push_due_ms = ? WHERE rollout_id = ? AND open = 1", {at, *rollout_id}));
    return c_.changes();
  }
  for (int64_t id : device_ids) {
    ALOFT_RETURN_IF_ERROR(
        c_.Query("UPDATE actions SET push_due_ms = ? WHERE device_id = ? AND open = 1", {at, id}));
    n += c_.changes();
  }
  return n;
}

Status Tx::DeleteDevice(const std::string& name) {
  ALOFT_RETURN_IF_ERROR(c_.Query("DELETE FROM devices WHERE name = ?", {name}));
  if (c_.changes() == 0) return NotFound("device", name);
  return OkStatus();
}

Result<std::optional<std::pair<Device, bool>>> Tx::AuthenticateDevice(
    const std::string& token_hash) {
  ALOFT_ASSIGN_OR_RETURN(auto found, AuthenticateDevices({token_hash}));
  if (found.empty()) return std::optional<std::pair<Device, bool>>();
  return std::optional<std::pair<Device, bool>>(std::move(found.begin()->second));
}

Result<std::optional<std::pair<Device, bool>>> Tx::AuthenticateDeviceNamed(
    const std::string& name) {
  Rows rows;
  ALOFT_ASSIGN_OR_RETURN(
      auto devices,
      DevicesWhere("WHERE d.name = ?", {name}, &rows,
                   ", CASE WHEN EXISTS (SELECT 1 FROM actions a WHERE a.device_id = d.id AND "
                   "a.open = 1) THEN 1 ELSE 0 END"));
  if (devices.empty()) return std::optional<std::pair<Device, bool>>();
  return std::optional<std::pair<Device, bool>>(
      std::make_pair(std::move(devices[0]), rows[0].Int(kDeviceColumnCount) != 0));
}

Result<std::map<std::string, std::pair<Device, bool>>> Tx::AuthenticateDevices(
    const std::vector<std::string>& token_hashes) {
  std::map<std::string, std::pair<Device, bool>> out;
  if (token_hashes.empty()) return out;
  // IN (?, ?, ...) with the list padded to a power of two: a few statement texts, each planned
  // once. An array parameter (= ANY(?)) makes PostgreSQL plan every execution anew (its custom
  // plans look cheaper than the generic one), which costs more than the query.
  size_t n = 1;
  while (n < token_hashes.size()) n *= 2;
  std::string where = "WHERE d.token_hash IN (";
  Params params;
  for (size_t i = 0; i < n; ++i) {
    where += i ? ", ?" : "?";
    params.push_back(token_hashes[i < token_hashes.size() ? i : 0]);
  }
  Rows rows;
  ALOFT_ASSIGN_OR_RETURN(
      auto devices,
      DevicesWhere(where + ")", params, &rows,
                   ", CASE WHEN EXISTS (SELECT 1 FROM actions a WHERE a.device_id = d.id AND "
                   "a.open = 1) THEN 1 ELSE 0 END, d.token_hash"));
  for (size_t i = 0; i < devices.size(); ++i) {
    out.emplace(rows[i].Text(kDeviceColumnCount + 1),
                std::make_pair(std::move(devices[i]), rows[i].Int(kDeviceColumnCount) != 0));
  }
  return out;
}

Status Tx::RecordVersions(int64_t device_id, const std::map<std::string, std::string>& known,
                          const std::map<std::string, std::string>& reported, int64_t now) {
  for (const auto& [module, version] : reported) {
    auto it = known.find(module);
    if (it != known.end() && it->second == version) continue;
    ALOFT_RETURN_IF_ERROR(c_.Query(
        "INSERT INTO device_versions (device_id, module, version, updated_ms) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (device_id, module) DO UPDATE SET version = excluded.version, "
        "updated_ms = excluded.updated_ms",
        {device_id, module, version, now}));
  }
  return OkStatus();
}

Status Tx::SetAttributes(int64_t device_id, const std::string& attributes_json) {
  ALOFT_RETURN_IF_ERROR(
      c_.Query("UPDATE devices SET attributes = ? WHERE id = ?", {attributes_json, device_id}));
  return OkStatus();
}

Status Tx::TouchDevices(const std::map<int64_t, int64_t>& last_seen_ms) {
  if (c_.engine() == db::Engine::kPostgres) {
    // One statement per few thousand devices: a round trip each would keep the flusher (and the
    // database) busy all second at thousands of check-ins a second.
    constexpr size_t kChunk = 5000;
    auto it = last_seen_ms.begin();
    while (it != last_seen_ms.end()) {
      std::string ids = "{", times = "{";
      for (size_t n = 0; n < kChunk && it != last_seen_ms.end(); ++n, ++it) {
        if (n) {
          ids += ',';
          times += ',';
        }
        ids += std::to_string(it->first);
        times += std::to_string(it->second);
      }
      ALOFT_RETURN_IF_ERROR(c_.Query(
          "UPDATE devices d SET last_seen_ms = v.ms FROM (SELECT unnest(?::bigint[]) AS id, "
          "unnest(?::bigint[]) AS ms) v WHERE d.id = v.id AND (d.last_seen_ms IS NULL OR "
          "d.last_seen_ms < v.ms)",
          {ids + "}", times + "}"}));
    }
    return OkStatus();
  }
  for (const auto& [id, ms] : last_seen_ms) {
    ALOFT_RETURN_IF_ERROR(
        c_.Query("UPDATE devices SET last_seen_ms = ? WHERE id = ? AND (last_seen_ms IS NULL OR "
                 "last_seen_ms < ?)",
                 {ms, id, ms}));
  }
  return OkStatus();
}

}  // namespace aloft::server
