// The Store's credentials for people and for devices that register themselves: API tokens and
// registration tokens (store.h).
#include "server/store.h"

namespace aloft::server {

using db::Params;
using db::Rows;

// ---- API tokens ----

Result<ApiToken> Tx::CreateApiToken(const std::string& name, Role role, const std::string& hash,
                                    const std::string& by, int64_t now) {
  ALOFT_ASSIGN_OR_RETURN(
      Rows rows, c_.Query("INSERT INTO api_tokens (name, role, token_hash, created_ms, created_by) "
                          "VALUES (?, ?, ?, ?, ?) RETURNING id",
                          {name, RoleName(role), hash, now, by}));
  return ApiToken{rows.at(0).Int(0), name, role, now};
}

Result<std::optional<ApiToken>> Tx::FindApiToken(const std::string& hash) {
  ALOFT_ASSIGN_OR_RETURN(
      Rows rows,
      c_.Query("SELECT id, name, role, created_ms FROM api_tokens WHERE token_hash = ?", {hash}));
  if (rows.empty()) return std::optional<ApiToken>();
  ALOFT_ASSIGN_OR_RETURN(Role role, ParseRole(rows[0].Text(2)));
  return std::optional<ApiToken>(ApiToken{rows[0].Int(0), rows[0].Text(1), role, rows[0].Int(3)});
}

Result<std::vector<ApiToken>> Tx::ListApiTokens() {
  ALOFT_ASSIGN_OR_RETURN(Rows rows,
                         c_.Query("SELECT id, name, role, created_ms FROM api_tokens ORDER BY id"));
  std::vector<ApiToken> out;
  for (const auto& r : rows) {
    ALOFT_ASSIGN_OR_RETURN(Role role, ParseRole(r.Text(2)));
    out.push_back({r.Int(0), r.Text(1), role, r.Int(3)});
  }
  return out;
}

Status Tx::DeleteApiToken(int64_t id) {
  ALOFT_RETURN_IF_ERROR(c_.Query("DELETE FROM api_tokens WHERE id = ?", {id}));
  if (c_.changes() == 0) return NotFound("token", std::to_string(id));
  return OkStatus();
}

Result<int64_t> Tx::CountApiTokens() {
  ALOFT_ASSIGN_OR_RETURN(Rows rows, c_.Query("SELECT COUNT(*) FROM api_tokens"));
  return rows.at(0).Int(0);
}

// ---- registration tokens ----

namespace {

constexpr std::string_view kRegistrationColumns =
    "r.id, r.name, t.name, r.created_ms, r.created_by, r.expires_ms, r.max_uses, r.uses";

RegistrationToken RegistrationTokenFromRow(const db::Row& row) {
  return {row.Int(0),    row.OptText(1).value_or(""),
          row.Text(2),   row.Int(3),
          row.Text(4),   row.OptInt(5),
          row.OptInt(6), row.Int(7)};
}

}  // namespace

std::string_view RegistrationToken::Refusal(int64_t now) const {
  if (expires_ms && *expires_ms <= now) return "expired";
  if (max_uses && uses >= *max_uses) return "used up";
  return "";
}

Result<RegistrationToken> Tx::CreateRegistrationToken(const std::string& type,
                                                      const std::string& hash,
                                                      const RegistrationToken& t) {
  ALOFT_ASSIGN_OR_RETURN(int64_t type_id, DeviceTypeId(type));
  ALOFT_ASSIGN_OR_RETURN(
      Rows rows,
      c_.Query("INSERT INTO registration_tokens (device_type_id, token_hash, created_ms, "
               "created_by, name, expires_ms, max_uses) VALUES (?, ?, ?, ?, ?, "
               "CAST(? AS BIGINT), CAST(? AS BIGINT)) RETURNING id",
               {type_id, hash, t.created_ms, t.created_by, t.name,
                t.expires_ms ? db::Value(*t.expires_ms) : db::Value(),
                t.max_uses ? db::Value(*t.max_uses) : db::Value()}));
  RegistrationToken out = t;
  out.id = rows.at(0).Int(0);
  out.device_type = type;
  return out;
}

Result<std::optional<RegistrationToken>> Tx::FindRegistrationToken(const std::string& hash) {
  ALOFT_ASSIGN_OR_RETURN(Rows rows,
                         c_.Query("SELECT " + std::string(kRegistrationColumns) +
                                      " FROM registration_tokens r JOIN device_types t ON t.id = "
                                      "r.device_type_id WHERE r.token_hash = ?",
                                  {hash}));
  if (rows.empty()) return std::optional<RegistrationToken>();
  return std::optional<RegistrationToken>(RegistrationTokenFromRow(rows[0]));
}

Result<std::vector<RegistrationToken>> Tx::ListRegistrationTokens(
    const std::optional<std::string>& type) {
  std::string sql = "SELECT " + std::string(kRegistrationColumns) +
                    " FROM registration_tokens r JOIN device_types t ON t.id = r.device_type_id";
  Params params;
  if (type) {
    sql += " WHERE t.name = ?";
    params.push_back(*type);
  }
  ALOFT_ASSIGN_OR_RETURN(Rows rows, c_.Query(sql + " ORDER BY r.id", params));
  std::vector<RegistrationToken> out;
  for (const auto& r : rows) out.push_back(RegistrationTokenFromRow(r));
  return out;
}

Status Tx::UseRegistrationToken(int64_t id, int64_t now) {
  ALOFT_RETURN_IF_ERROR(
      c_.Query("UPDATE registration_tokens SET uses = uses + 1 WHERE id = ? AND (expires_ms IS "
               "NULL OR expires_ms > ?) AND (max_uses IS NULL OR uses < max_uses)",
               {id, now}));
  if (c_.changes() == 0) {
    return Error(Code::kPermissionDenied,
                 "the registration token is expired, used up or revoked: ask for a new one");
  }
  return OkStatus();
}

Status Tx::DeleteRegistrationToken(int64_t id) {
  ALOFT_RETURN_IF_ERROR(c_.Query("DELETE FROM registration_tokens WHERE id = ?", {id}));
  if (c_.changes() == 0) return NotFound("registration token", std::to_string(id));
  return OkStatus();
}

}  // namespace aloft::server
