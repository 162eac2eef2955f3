#include "db/database.h"

#include <charconv>
#include <chrono>

#include "db/backends.h"

namespace aloft::db {

std::string Value::ToText() const {
  if (is_int()) return std::to_string(as_int());
  if (is_null()) return "";
  return as_text();
}

const std::string& Row::Text(size_t i) const {
  static const std::string kEmpty;
  const auto& c = cols_.at(i);
  return c ? *c : kEmpty;
}

std::optional<int64_t> Row::OptInt(size_t i) const {
  const auto& c = cols_.at(i);
  if (!c) return std::nullopt;
  int64_t v = 0;
  auto [p, ec] = std::from_chars(c->data(), c->data() + c->size(), v);
  if (ec != std::errc()) {
    // PostgreSQL booleans come back as "t"/"f"; nothing else is expected here.
    return (*c == "t") ? 1 : 0;
  }
  return v;
}

int64_t Row::Int(size_t i) const { return OptInt(i).value_or(0); }

Result<Rows> Database::Query(std::string_view sql, const Params& params) {
  Rows out;
  ALOFT_RETURN_IF_ERROR(Read([&](Connection& c) -> Status {
    ALOFT_ASSIGN_OR_RETURN(out, c.Query(sql, params));
    return OkStatus();
  }));
  return out;
}

std::string ToDollarParams(std::string_view sql) {
  std::string out;
  out.reserve(sql.size() + 16);
  int n = 0;
  char quote = 0;
  for (char ch : sql) {
    if (quote) {
      if (ch == quote) quote = 0;
      out += ch;
    } else if (ch == '\'' || ch == '"') {
      quote = ch;
      out += ch;
    } else if (ch == '?') {
      out += '$';
      out += std::to_string(++n);
    } else {
      out += ch;
    }
  }
  return out;
}

namespace {

std::string ExpandDdl(std::string_view sql, Engine engine) {
  std::string out(sql);
  const std::string_view token = "{{id}}";
  const std::string_view id =
      engine == Engine::kSqlite ? "INTEGER PRIMARY KEY AUTOINCREMENT" : "BIGSERIAL PRIMARY KEY";
  for (size_t pos = out.find(token); pos != std::string::npos; pos = out.find(token, pos)) {
    out.replace(pos, token.size(), id);
    pos += id.size();
  }
  return out;
}

}  // namespace

Result<std::unique_ptr<Listener>> Database::Listen(const std::string& channel,
                                                   Listener::Callbacks) {
  return Error(Code::kUnsupported, Describe() + ": no notifications (channel " + channel + ")");
}

Result<int> Migrate(Database& db, const std::vector<Migration>& migrations) {
  for (size_t i = 0; i < migrations.size(); ++i) {
    if (migrations[i].version != static_cast<int>(i) + 1) {
      return Error(Code::kInternal, "migrations must be numbered 1, 2, ... in order");
    }
  }
  const int latest = static_cast<int>(migrations.size());
  int reached = 0;
  ALOFT_RETURN_IF_ERROR(db.Transact([&](Connection& c) -> Status {
    if (c.engine() == Engine::kPostgres) {
      // Two servers starting at once: the second waits here until the first committed.
      ALOFT_RETURN_IF_ERROR(c.Query("SELECT pg_advisory_xact_lock(4242001)"));
    }
    ALOFT_RETURN_IF_ERROR(
        c.ExecScript("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, "
                     "description TEXT NOT NULL, applied_ms BIGINT NOT NULL)"));
    ALOFT_ASSIGN_OR_RETURN(Rows rows,
                           c.Query("SELECT COALESCE(MAX(version), 0) FROM schema_migrations"));
    int current = rows.empty() ? 0 : static_cast<int>(rows[0].Int(0));
    if (current > latest) {
      return Error(Code::kUnsupported, "database " + db.Describe() + " has schema version " +
                                           std::to_string(current) +
                                           ", newer than this aloftd knows (" +
                                           std::to_string(latest) + "); run a newer aloftd");
    }
    for (int v = current + 1; v <= latest; ++v) {
      const Migration& m = migrations[v - 1];
      Status s = m.sql.empty() ? OkStatus() : c.ExecScript(ExpandDdl(m.sql, c.engine()));
      if (s.ok() && c.engine() == Engine::kPostgres && !m.postgres_sql.empty()) {
        s = c.ExecScript(ExpandDdl(m.postgres_sql, c.engine()));
      }
      if (!s.ok()) {
        return std::move(s).error().WithContext("schema migration " + std::to_string(v) + " (" +
                                                std::string(m.description) + ")");
      }
      auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::system_clock::now().time_since_epoch())
                     .count();
      ALOFT_RETURN_IF_ERROR(c.Query(
          "INSERT INTO schema_migrations (version, description, applied_ms) VALUES (?, ?, ?)",
          {v, std::string(m.description), int64_t{now}}));
    }
    reached = latest;
    return OkStatus();
  }));
  return reached;
}

}  // namespace aloft::db

namespace aloft::db {

Result<std::unique_ptr<Database>> Database::Open(const std::string& location, int pool_size) {
  if (pool_size < 1) pool_size = 1;
  if (location.starts_with("postgresql://") || location.starts_with("postgres://")) {
    return OpenPostgres(location, pool_size);
  }
  if (location.empty()) return Error(Code::kInvalidArgument, "empty database location");
  return OpenSqlite(location, pool_size);
}

}  // namespace aloft::db
