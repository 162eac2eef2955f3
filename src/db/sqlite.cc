// The SQLite backend: one file in WAL mode, a pool of connections (readers run concurrently;
// writers take the write lock up front with BEGIN IMMEDIATE so two writers never deadlock on an
// upgrade), prepared statements cached per connection.
#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>
#include <unordered_map>

#include "db/backends.h"
#include "db/pool.h"

namespace aloft::db {
namespace {

Error SqliteError(sqlite3* db, int rc, std::string_view what) {
  int ext = db ? sqlite3_extended_errcode(db) : rc;
  std::string msg = std::string(what) + ": " + (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  switch (ext & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Error(Code::kUnavailable, msg);
    case SQLITE_CONSTRAINT:
      if (ext == SQLITE_CONSTRAINT_UNIQUE || ext == SQLITE_CONSTRAINT_PRIMARYKEY) {
        return Error(Code::kAlreadyExists, msg);
      }
      return Error(Code::kInvalidArgument, msg);
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
    case SQLITE_READONLY:
      return Error(Code::kPermissionDenied, msg);
    case SQLITE_FULL:
    case SQLITE_IOERR:
      return Error(Code::kIo, msg);
    default:
      return Error(Code::kInternal, msg);
  }
}

class SqliteConnection final : public Connection {
 public:
  SqliteConnection(sqlite3* db, std::atomic<uint64_t>& statements)
      : db_(db), statements_(statements) {}
  ~SqliteConnection() override {
    for (auto& [sql, stmt] : cache_) sqlite3_finalize(stmt);
    sqlite3_close_v2(db_);
  }

  Engine engine() const override { return Engine::kSqlite; }
  int64_t changes() const override { return changes_; }

  Result<Rows> Query(std::string_view sql, const Params& params) override {
    statements_.fetch_add(1, std::memory_order_relaxed);
    ALOFT_ASSIGN_OR_RETURN(sqlite3_stmt * stmt, Prepare(sql));
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    const int expected = sqlite3_bind_parameter_count(stmt);
    if (expected != static_cast<int>(params.size())) {
      return Error(Code::kInternal, "SQL wants " + std::to_string(expected) + " parameters, got " +
                                        std::to_string(params.size()) + ": " + std::string(sql));
    }
    for (size_t i = 0; i < params.size(); ++i) {
      const Value& v = params[i];
      const int idx = static_cast<int>(i) + 1;
      int rc = v.is_null() ? sqlite3_bind_null(stmt, idx)
               : v.is_int()
                   ? sqlite3_bind_int64(stmt, idx, v.as_int())
                   : sqlite3_bind_text(stmt, idx, v.as_text().data(),
                                       static_cast<int>(v.as_text().size()), SQLITE_TRANSIENT);
      if (rc != SQLITE_OK) return SqliteError(db_, rc, "binding a parameter");
    }
    Rows rows;
    const int ncols = sqlite3_column_count(stmt);
    for (;;) {
      int rc = sqlite3_step(stmt);
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) {
        Error e = SqliteError(db_, rc, "SQLite");
        sqlite3_reset(stmt);
        return e;
      }
      std::vector<std::optional<std::string>> cols(ncols);
      for (int c = 0; c < ncols; ++c) {
        if (sqlite3_column_type(stmt, c) == SQLITE_NULL) continue;
        const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, c));
        cols[c] = std::string(text, sqlite3_column_bytes(stmt, c));
      }
      rows.emplace_back(std::move(cols));
    }
    changes_ = sqlite3_changes64(db_);
    sqlite3_reset(stmt);
    return rows;
  }

  Status ExecScript(std::string_view sql) override {
    char* err = nullptr;
    std::string text(sql);
    int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &err);
    if (rc != SQLITE_OK) {
      std::string msg = err ? err : sqlite3_errstr(rc);
      sqlite3_free(err);
      Error e = SqliteError(db_, rc, "SQLite");
      return Error(e.code(), "SQLite: " + msg);
    }
    return OkStatus();
  }

 private:
  Result<sqlite3_stmt*> Prepare(std::string_view sql) {
    auto it = cache_.find(std::string(sql));
    if (it != cache_.end()) return it->second;
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                                SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
    if (rc != SQLITE_OK) return SqliteError(db_, rc, "preparing SQL '" + std::string(sql) + "'");
    cache_.emplace(std::string(sql), stmt);
    return stmt;
  }

  sqlite3* db_;
  std::atomic<uint64_t>& statements_;
  std::unordered_map<std::string, sqlite3_stmt*> cache_;
  int64_t changes_ = 0;
};

class SqliteDatabase final : public Database {
 public:
  explicit SqliteDatabase(std::string path) : path_(std::move(path)) {}

  Status Init(int pool_size) {
    // SQLite's memory statistics take one process-wide mutex around every allocation, which the
    // server's threads then queue on. Nothing here reads those statistics. (Refused, harmlessly,
    // when SQLite was already initialized.)
    static const int kNoMemStatus = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    (void)kNoMemStatus;
    // The database holds token hashes and the fleet: a new one is readable by its owner only
    // (SQLite gives its -wal and -shm files the database file's permissions). An existing file
    // keeps the permissions its owner chose.
    if (path_ != ":memory:" && !path_.empty()) {
      int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
      if (fd >= 0) {
        ::close(fd);
      } else if (errno != EEXIST) {
        return Error(Code::kIo, "creating " + path_ + ": " + std::strerror(errno));
      }
    }
    for (int i = 0; i < pool_size; ++i) {
      sqlite3* db = nullptr;
      int rc = sqlite3_open_v2(path_.c_str(), &db,
                               SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                               nullptr);
      if (rc != SQLITE_OK) {
        Error e = SqliteError(db, rc, path_);
        sqlite3_close_v2(db);
        return e;
      }
      auto conn = std::make_unique<SqliteConnection>(db, statements_);
      sqlite3_busy_timeout(db, 5000);
      // WAL: readers never block the writer; NORMAL: a commit is durable at the next checkpoint,
      // the database is never corrupt after a crash. mmap: pages are read from the mapping, not
      // with one pread(2) each after another connection's commit emptied the page cache.
      Status s = conn->ExecScript(
          "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; "
          "PRAGMA temp_store=MEMORY; PRAGMA mmap_size=268435456");
      if (!s.ok()) return std::move(s).error().WithContext(path_);
      pool_.Add(std::move(conn));
    }
    return OkStatus();
  }

  Engine engine() const override { return Engine::kSqlite; }
  std::string Describe() const override { return path_; }

  Status Transact(const std::function<Status(Connection&)>& fn) override {
    for (int attempt = 0;; ++attempt) {
      auto conn = pool_.Acquire();
      Status s = RunOnce(*conn, fn);
      if (s.ok() || s.error().code() != Code::kUnavailable || attempt >= 5) return s;
      std::this_thread::sleep_for(std::chrono::milliseconds(5 << attempt));
    }
  }

  // One read transaction around all of `fn`: a consistent snapshot, and the WAL read lock is
  // taken once instead of once per statement (each is an fcntl(2) pair).
  Status Read(const std::function<Status(Connection&)>& fn) override {
    auto conn = pool_.Acquire();
    // Query, not ExecScript: the statements stay prepared.
    ALOFT_RETURN_IF_ERROR(conn->Query("BEGIN", {}));
    Status s = fn(*conn);
    auto end = conn->Query(s.ok() ? "COMMIT" : "ROLLBACK", {});
    if (s.ok() && !end.ok()) return std::move(end).error();
    return s;
  }

 private:
  static Status RunOnce(SqliteConnection& c, const std::function<Status(Connection&)>& fn) {
    ALOFT_RETURN_IF_ERROR(c.Query("BEGIN IMMEDIATE", {}));
    Status s = fn(c);
    if (s.ok()) {
      auto committed = c.Query("COMMIT", {});
      if (!committed.ok()) s = std::move(committed).error();
    }
    if (!s.ok()) (void)c.Query("ROLLBACK", {});
    return s;
  }

  std::string path_;
  Pool<SqliteConnection> pool_;
};

}  // namespace

Result<std::unique_ptr<Database>> OpenSqlite(const std::string& path, int pool_size) {
  auto db = std::make_unique<SqliteDatabase>(path);
  ALOFT_RETURN_IF_ERROR(db->Init(pool_size));
  return std::unique_ptr<Database>(std::move(db));
}

}  // namespace aloft::db
