// The Store's people and browser sessions: users who sign in with a password, and the sessions
// of users and API tokens signed in to the dashboard (store.h, docs/dashboard.md).
#include "server/store.h"

namespace aloft::server {

using db::Rows;

namespace {

constexpr std::string_view kUserColumns =
    "id, name, role, password_hash, created_ms, created_by FROM users";

Result<User> UserFromRow(const db::Row& r) {
  ALOFT_ASSIGN_OR_RETURN(Role role, ParseRole(r.Text(2)));
  User u;
  u.id = r.Int(0);
  u.name = r.Text(1);
  u.role = role;
  u.password_hash = r.Text(3);
  u.created_ms = r.Int(4);
  u.created_by = r.Text(5);
  return u;
}

}  // namespace

Result<User> Tx::CreateUser(const User& u) {
  auto rows = c_.Query(
      "INSERT INTO users (name, role, password_hash, created_ms, created_by) VALUES (?, ?, ?, ?, "
      "?) RETURNING id",
      {u.name, RoleName(u.role), u.password_hash, u.created_ms, u.created_by});
  if (!rows.ok()) {
    if (rows.error().code() == Code::kAlreadyExists) {
      return Error(Code::kAlreadyExists, "user '" + u.name + "' already exists");
    }
    return rows.error();
  }
  User out = u;
  out.id = rows->at(0).Int(0);
  return out;
}

Result<std::optional<User>> Tx::FindUser(const std::string& name) {
  ALOFT_ASSIGN_OR_RETURN(
      Rows rows, c_.Query("SELECT " + std::string(kUserColumns) + " WHERE name = ?", {name}));
  if (rows.empty()) return std::optional<User>();
  ALOFT_ASSIGN_OR_RETURN(User u, UserFromRow(rows[0]));
  return std::optional<User>(std::move(u));
}

Result<std::vector<User>> Tx::ListUsers() {
  ALOFT_ASSIGN_OR_RETURN(Rows rows,
                         c_.Query("SELECT " + std::string(kUserColumns) + " ORDER BY name"));
  std::vector<User> out;
  for (const auto& r : rows) {
    ALOFT_ASSIGN_OR_RETURN(User u, UserFromRow(r));
    out.push_back(std::move(u));
  }
  return out;
}

Status Tx::ChangeUser(const std::string& name, std::optional<Role> role,
                      const std::optional<std::string>& password_hash) {
  ALOFT_ASSIGN_OR_RETURN(auto user, FindUser(name));
  if (!user) return NotFound("user", name);
  if (role) {
    ALOFT_RETURN_IF_ERROR(
        c_.Query("UPDATE users SET role = ? WHERE id = ?", {RoleName(*role), user->id}));
  }
  if (password_hash) {
    ALOFT_RETURN_IF_ERROR(
        c_.Query("UPDATE users SET password_hash = ? WHERE id = ?", {*password_hash, user->id}));
  }
  ALOFT_RETURN_IF_ERROR(c_.Query("DELETE FROM sessions WHERE user_id = ?", {user->id}));
  return OkStatus();
}

Status Tx::DeleteUser(const std::string& name) {
  ALOFT_RETURN_IF_ERROR(c_.Query("DELETE FROM users WHERE name = ?", {name}));
  if (c_.changes() == 0) return NotFound("user", name);
  return OkStatus();
}

Status Tx::CreateSession(const std::string& hash, const Session& s, int64_t owner, int64_t now) {
  const bool user = s.actor.starts_with("user:");
  ALOFT_RETURN_IF_ERROR(c_.Query(
      "INSERT INTO sessions (token_hash, actor, role, csrf, user_id, token_id, created_ms, "
      "expires_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
      {hash, s.actor, RoleName(s.role), s.csrf, user ? db::Value(owner) : db::Value(),
       user ? db::Value() : db::Value(owner), now, s.expires_ms}));
  return OkStatus();
}

Result<std::optional<Session>> Tx::FindSession(const std::string& hash, int64_t now) {
  ALOFT_ASSIGN_OR_RETURN(
      Rows rows, c_.Query("SELECT actor, role, csrf, expires_ms FROM sessions WHERE token_hash = ? "
                          "AND expires_ms > ?",
                          {hash, now}));
  if (rows.empty()) return std::optional<Session>();
  ALOFT_ASSIGN_OR_RETURN(Role role, ParseRole(rows[0].Text(1)));
  Session s;
  s.actor = rows[0].Text(0);
  s.role = role;
  s.csrf = rows[0].Text(2);
  s.expires_ms = rows[0].Int(3);
  return std::optional<Session>(std::move(s));
}

Status Tx::DeleteSession(const std::string& hash) {
  ALOFT_RETURN_IF_ERROR(c_.Query("DELETE FROM sessions WHERE token_hash = ?", {hash}));
  return OkStatus();
}

Result<int64_t> Tx::PruneSessions(int64_t now) {
  ALOFT_RETURN_IF_ERROR(c_.Query("DELETE FROM sessions WHERE expires_ms <= ?", {now}));
  return c_.changes();
}

}  // namespace aloft::server
