// SQL databases behind one seam: the embedded SQLite engine (the default) and a PostgreSQL server
// reached through libpq (for fleets served by several aloftd processes).
//
// Callers write one SQL text for both engines: parameters are `?` (rewritten to `$1..$n` for
// PostgreSQL), values are integers, text or NULL, and `{{id}}` in DDL becomes the engine's
// auto-increment primary key. Errors are mapped to aloft codes: a unique or foreign-key violation
// is kAlreadyExists / kInvalidArgument, a lock or serialization conflict kUnavailable (Transact
// retries those), an unreachable server kUnavailable.
//
//   ALOFT_ASSIGN_OR_RETURN(auto db, Database::Open("data/aloft.db"));   // or "postgresql://..."
//   ALOFT_RETURN_IF_ERROR(db->Transact([&](Connection& c) -> Status {
//     ALOFT_ASSIGN_OR_RETURN(Rows rows, c.Query("SELECT id FROM devices WHERE name = ?", {name}));
//     ...
//   }));
//
// Thread-safety: Database is thread-safe (a pool of connections); a Connection is used by one
// thread at a time, inside Transact or Read.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/error.h"

namespace aloft::db {

enum class Engine { kSqlite, kPostgres };

// A bound parameter.
class Value {
 public:
  Value() : v_(nullptr) {}
  Value(std::nullptr_t) : v_(nullptr) {}              // NOLINT
  Value(int64_t v) : v_(v) {}                         // NOLINT
  Value(int v) : v_(int64_t{v}) {}                    // NOLINT
  Value(uint64_t v) : v_(static_cast<int64_t>(v)) {}  // NOLINT
  Value(bool v) : v_(int64_t{v ? 1 : 0}) {}           // NOLINT
  Value(std::string v) : v_(std::move(v)) {}          // NOLINT
  Value(std::string_view v) : v_(std::string(v)) {}   // NOLINT
  Value(const char* v) : v_(std::string(v)) {}        // NOLINT
  template <typename T>
  Value(const std::optional<T>& v) : v_(nullptr) {  // NOLINT
    if (v) *this = Value(*v);
  }

  bool is_null() const { return v_.index() == 0; }
  bool is_int() const { return v_.index() == 1; }
  int64_t as_int() const { return std::get<1>(v_); }
  const std::string& as_text() const { return std::get<2>(v_); }
  // The text form PostgreSQL is sent.
  std::string ToText() const;

 private:
  std::variant<std::nullptr_t, int64_t, std::string> v_;
};

// One result row; columns are read as text (integers in decimal) or NULL.
class Row {
 public:
  explicit Row(std::vector<std::optional<std::string>> cols) : cols_(std::move(cols)) {}
  size_t size() const { return cols_.size(); }
  bool IsNull(size_t i) const { return !cols_.at(i).has_value(); }
  // "" for NULL.
  const std::string& Text(size_t i) const;
  std::optional<std::string> OptText(size_t i) const { return cols_.at(i); }
  // 0 for NULL.
  int64_t Int(size_t i) const;
  std::optional<int64_t> OptInt(size_t i) const;

 private:
  std::vector<std::optional<std::string>> cols_;
};
using Rows = std::vector<Row>;
using Params = std::vector<Value>;

class Connection {
 public:
  virtual ~Connection() = default;
  virtual Engine engine() const = 0;
  // One statement with `?` parameters; the rows it returns (none for most writes; use RETURNING
  // to read generated ids).
  virtual Result<Rows> Query(std::string_view sql, const Params& params = {}) = 0;
  // Statements without parameters, separated by ';' (migrations).
  virtual Status ExecScript(std::string_view sql) = 0;
  // Rows changed by the last INSERT/UPDATE/DELETE run through Query.
  virtual int64_t changes() const = 0;
};

// A subscription to a notification channel (PostgreSQL LISTEN) on a connection of its own, run
// by a thread of its own. Notifications are delivered in commit order, after the commit.
// Thread-safe; the destructor stops the thread.
class Listener {
 public:
  struct Callbacks {
    std::function<void(std::string_view payload)> notified;
    // false: the connection was lost (notifications may be missed until it is back); true: it is
    // listening (again). Called first with true once LISTEN succeeded.
    std::function<void(bool listening)> listening;
  };
  virtual ~Listener() = default;
  // Waits until every notification of a transaction that committed before this call has been
  // delivered: one round trip on the listening connection that starts after the call (PostgreSQL
  // sends a listener the notifications queued before a query ahead of its answer); concurrent
  // callers share round trips. False when the connection is lost or `timeout` passes.
  virtual bool Sync(std::chrono::milliseconds timeout) = 0;
};

class Database {
 public:
  virtual ~Database() = default;

  // `location` is a `postgresql://` (or `postgres://`) URL, or a path to an SQLite file (created
  // when missing; WAL mode). `pool_size` bounds open connections.
  static Result<std::unique_ptr<Database>> Open(const std::string& location, int pool_size = 4);

  virtual Engine engine() const = 0;
  // For messages: the path, or the URL without its password.
  virtual std::string Describe() const = 0;

  // Runs `fn` in a write transaction and commits when it returns OK, rolls back otherwise. A
  // conflict with another writer (SQLite busy, PostgreSQL serialization failure or deadlock)
  // reruns `fn` a few times, so `fn` must not have effects outside the database.
  virtual Status Transact(const std::function<Status(Connection&)>& fn) = 0;
  // Runs `fn` for reading: on SQLite inside one read transaction (a consistent snapshot); on
  // PostgreSQL without one (each statement sees what was committed when it started).
  virtual Status Read(const std::function<Status(Connection&)>& fn) = 0;

  // Listens on `channel` (PostgreSQL); kUnsupported on SQLite, which has one process only. The
  // first connection is made before it returns (kUnavailable when it fails); later losses are
  // reconnected in the background with Callbacks::listening telling.
  virtual Result<std::unique_ptr<Listener>> Listen(const std::string& channel,
                                                   Listener::Callbacks callbacks);

  // Convenience: one statement in its own Read.
  Result<Rows> Query(std::string_view sql, const Params& params = {});

  // Statements run through Connection::Query so far, on every connection (/metrics).
  uint64_t statements() const { return statements_.load(std::memory_order_relaxed); }

 protected:
  std::atomic<uint64_t> statements_{0};
};

// One schema migration: `sql` runs in the migration's transaction; `{{id}}` is replaced by the
// engine's auto-increment primary key column type.
struct Migration {
  int version;
  std::string_view description;
  std::string_view sql;
  // Runs after `sql` on PostgreSQL only: triggers, functions and other parts SQLite lacks.
  std::string_view postgres_sql = {};
};

// Brings the schema to the last of `migrations` (ordered by version, starting at 1), each in its
// own transaction, recording versions in `schema_migrations`. Concurrent callers (two servers
// starting on one PostgreSQL) are serialized. Fails with kUnsupported when the database has a
// version newer than the last one known (a newer server migrated it). Returns the version reached.
Result<int> Migrate(Database& db, const std::vector<Migration>& migrations);

// Rewrites `?` placeholders outside quotes to `$1..$n`.
std::string ToDollarParams(std::string_view sql);

}  // namespace aloft::db
