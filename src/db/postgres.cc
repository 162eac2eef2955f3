// The PostgreSQL backend over libpq: a pool of connections, statements prepared once per
// connection, text-format parameters and results. A broken connection is reset on next use.
#include <fcntl.h>
#include <libpq-fe.h>
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "db/backends.h"
#include "db/pool.h"

namespace aloft::db {
namespace {

// "postgresql://user:secret@host/db" -> "postgresql://user@host/db".
std::string Redact(const std::string& url) {
  auto scheme = url.find("://");
  auto at = url.find('@');
  if (scheme == std::string::npos || at == std::string::npos) return url;
  auto colon = url.find(':', scheme + 3);
  if (colon == std::string::npos || colon > at) return url;
  return url.substr(0, colon) + url.substr(at);
}

Error PgError(PGresult* res, PGconn* conn, std::string_view what) {
  const char* state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
  std::string msg =
      std::string(what) + ": " +
      (res && *PQresultErrorMessage(res) ? PQresultErrorMessage(res) : PQerrorMessage(conn));
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  std::string_view s = state ? state : "";
  if (s == "23505") return Error(Code::kAlreadyExists, msg);
  if (s.starts_with("23")) return Error(Code::kInvalidArgument, msg);
  if (s == "40001" || s == "40P01" || s == "55P03") return Error(Code::kUnavailable, msg);
  if (s.starts_with("08") || PQstatus(conn) != CONNECTION_OK) {
    return Error(Code::kUnavailable, msg);
  }
  if (s == "42501") return Error(Code::kPermissionDenied, msg);
  return Error(Code::kInternal, msg);
}

struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using PgResult = std::unique_ptr<PGresult, ResultDeleter>;

class PgConnection final : public Connection {
 public:
  PgConnection(PGconn* conn, std::atomic<uint64_t>& statements)
      : conn_(conn), statements_(statements) {}
  ~PgConnection() override { PQfinish(conn_); }

  Engine engine() const override { return Engine::kPostgres; }
  int64_t changes() const override { return changes_; }

  // Reconnects a connection the server dropped; kUnavailable when that fails.
  Status EnsureOpen() {
    if (PQstatus(conn_) == CONNECTION_OK) return OkStatus();
    PQreset(conn_);
    prepared_.clear();
    if (PQstatus(conn_) != CONNECTION_OK) {
      return Error(Code::kUnavailable, std::string("PostgreSQL: ") + PQerrorMessage(conn_));
    }
    return OkStatus();
  }

  Result<Rows> Query(std::string_view sql, const Params& params) override {
    statements_.fetch_add(1, std::memory_order_relaxed);
    ALOFT_ASSIGN_OR_RETURN(const std::string* name, Prepare(sql));
    std::vector<std::string> texts(params.size());
    std::vector<const char*> values(params.size());
    for (size_t i = 0; i < params.size(); ++i) {
      if (params[i].is_null()) continue;
      texts[i] = params[i].ToText();
      values[i] = texts[i].c_str();
    }
    PgResult res(PQexecPrepared(conn_, name->c_str(), static_cast<int>(params.size()),
                                values.data(), nullptr, nullptr, 0));
    auto status = res ? PQresultStatus(res.get()) : PGRES_FATAL_ERROR;
    if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
      return PgError(res.get(), conn_, "PostgreSQL");
    }
    Rows rows;
    const int n = PQntuples(res.get()), ncols = PQnfields(res.get());
    rows.reserve(n);
    for (int r = 0; r < n; ++r) {
      std::vector<std::optional<std::string>> cols(ncols);
      for (int c = 0; c < ncols; ++c) {
        if (PQgetisnull(res.get(), r, c)) continue;
        cols[c] = std::string(PQgetvalue(res.get(), r, c), PQgetlength(res.get(), r, c));
      }
      rows.emplace_back(std::move(cols));
    }
    const char* affected = PQcmdTuples(res.get());
    changes_ = (affected && *affected) ? std::atoll(affected) : 0;
    return rows;
  }

  Status ExecScript(std::string_view sql) override {
    PgResult res(PQexec(conn_, std::string(sql).c_str()));
    auto status = res ? PQresultStatus(res.get()) : PGRES_FATAL_ERROR;
    if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
      return PgError(res.get(), conn_, "PostgreSQL");
    }
    return OkStatus();
  }

 private:
  Result<const std::string*> Prepare(std::string_view sql) {
    std::string key(sql);
    auto it = prepared_.find(key);
    if (it != prepared_.end()) return &it->second;
    // Appended rather than "s" + to_string(...): GCC 12 at -O3 takes that prepend for an
    // overlapping memcpy (a false -Wrestrict, GCC bug 105329).
    std::string name = "s";
    name += std::to_string(prepared_.size() + 1);
    PgResult res(PQprepare(conn_, name.c_str(), ToDollarParams(sql).c_str(), 0, nullptr));
    if (!res || PQresultStatus(res.get()) != PGRES_COMMAND_OK) {
      return PgError(res.get(), conn_, "preparing SQL '" + key + "'");
    }
    return &prepared_.emplace(std::move(key), std::move(name)).first->second;
  }

  PGconn* conn_;
  std::atomic<uint64_t>& statements_;
  std::unordered_map<std::string, std::string> prepared_;
  int64_t changes_ = 0;
};

// LISTEN on a connection of its own. Its thread waits on the socket (and a pipe that wakes it to
// stop), hands each notification to the callback, checks a quiet connection every few seconds
// with an empty query (a dead server or network shows no other way), and reconnects after a loss
// with a growing pause. Sync() asks it for a round trip.
class PgListener final : public Listener {
 public:
  PgListener(std::string url, std::string channel, Callbacks callbacks)
      : url_(std::move(url)), channel_(std::move(channel)), callbacks_(std::move(callbacks)) {}

  ~PgListener() override {
    stop_ = true;
    sync_cv_.notify_all();
    if (wake_[1] >= 0) (void)!::write(wake_[1], "x", 1);
    if (thread_.joinable()) thread_.join();
    if (conn_) PQfinish(conn_);
    for (int fd : wake_) {
      if (fd >= 0) ::close(fd);
    }
  }

  Status Start() {
    if (::pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) {
      return Error(Code::kIo, "creating the listener's wake-up pipe failed");
    }
    ALOFT_RETURN_IF_ERROR(Connect());
    callbacks_.listening(true);
    thread_ = std::thread([this] { Run(); });
    return OkStatus();
  }

  bool Sync(std::chrono::milliseconds timeout) override {
    std::unique_lock lock(sync_mu_);
    const uint64_t ticket = ++sync_requested_;
    // One byte wakes the listener thread; callers after it, until it drains the pipe, need none.
    if (!wake_pending_.exchange(true)) (void)!::write(wake_[1], "s", 1);
    return sync_cv_.wait_for(lock, timeout, [&] {
      return sync_done_ >= ticket || sync_failed_ >= ticket || stop_;
    }) && sync_done_ >= ticket;
  }

 private:
  Status Connect() {
    PGconn* conn = PQconnectdb(url_.c_str());
    std::string error;
    if (PQstatus(conn) != CONNECTION_OK) {
      error = PQerrorMessage(conn);
    } else {
      char* quoted = PQescapeIdentifier(conn, channel_.c_str(), channel_.size());
      PgResult res(PQexec(conn, ("LISTEN " + std::string(quoted ? quoted : "")).c_str()));
      PQfreemem(quoted);
      if (!res || PQresultStatus(res.get()) != PGRES_COMMAND_OK) error = PQerrorMessage(conn);
    }
    if (!error.empty()) {
      PQfinish(conn);
      while (!error.empty() && error.back() == '\n') error.pop_back();
      return Error(Code::kUnavailable, "PostgreSQL LISTEN " + channel_ + ": " + error);
    }
    std::lock_guard lock(mu_);
    if (conn_) PQfinish(conn_);
    conn_ = conn;
    lost_ = false;
    return OkStatus();
  }

  // Reads what arrived and hands out the notifications; a failed read marks the connection lost.
  void ConsumeLocked() {
    if (!PQconsumeInput(conn_) || PQstatus(conn_) != CONNECTION_OK) return MarkLostLocked();

    while (PGnotify* n = PQnotifies(conn_)) {
      callbacks_.notified(n->extra ? n->extra : "");
      PQfreemem(n);
    }
  }

  // Tells of the loss at once: a caller must not go on trusting what it knew.
  void MarkLostLocked() {
    if (lost_) return;
    lost_ = true;
    callbacks_.listening(false);
    {
      std::lock_guard sync_lock(sync_mu_);  // waiting Sync callers learn it now
      sync_failed_ = sync_requested_;
    }
    sync_cv_.notify_all();
  }

  void Run() {
    auto quiet_since = std::chrono::steady_clock::now();
    int pause_ms = 100;
    while (!stop_) {
      bool lost;
      int fd;
      {
        std::lock_guard lock(mu_);
        lost = lost_;
        fd = conn_ ? PQsocket(conn_) : -1;
      }
      if (lost || fd < 0) {
        while (!stop_ && !Connect().ok()) {
          pollfd w{wake_[0], POLLIN, 0};
          (void)::poll(&w, 1, pause_ms);
          pause_ms = std::min(pause_ms * 2, 5000);
        }
        if (stop_) return;
        {
          std::lock_guard sync_lock(sync_mu_);  // callers waiting across the loss give up
          sync_failed_ = sync_requested_;
        }
        sync_cv_.notify_all();
        pause_ms = 100;
        quiet_since = std::chrono::steady_clock::now();
        callbacks_.listening(true);
        continue;
      }
      bool pending;
      {
        std::lock_guard lock(sync_mu_);
        pending = sync_requested_ > synced_;
      }
      pollfd p[2] = {{fd, POLLIN, 0}, {wake_[0], POLLIN, 0}};
      int n = ::poll(p, 2, pending ? 0 : 1000);
      if (stop_) return;
      if (n > 0 && (p[1].revents & POLLIN)) {
        char drain[64];
        while (::read(wake_[0], drain, sizeof drain) > 0) {
        }
        // After draining: a caller that found the flag set between the two wrote no byte, and
        // the tickets read below include its own (it asked under sync_mu_ before this). Cleared
        // before draining, a byte written in between would be drained with the flag left set,
        // and later callers would write none: they waited for the 1 s poll.
        wake_pending_.store(false);
      }
      uint64_t wanted;
      {
        std::lock_guard lock(sync_mu_);
        wanted = sync_requested_;
      }
      std::lock_guard lock(mu_);
      if (wanted > synced_) {
        // The round trip the waiting Sync callers need: the notifications queued before it come
        // ahead of its answer.
        PgResult res(PQexec(conn_, ""));
        quiet_since = std::chrono::steady_clock::now();
        const bool ok = res && PQstatus(conn_) == CONNECTION_OK;
        if (ok) ConsumeLocked();
        if (!ok) MarkLostLocked();
        {
          std::lock_guard sync_lock(sync_mu_);
          (ok && !lost_ ? sync_done_ : sync_failed_) = wanted;
        }
        synced_ = wanted;
        sync_cv_.notify_all();
      } else if (n > 0 && (p[0].revents & (POLLIN | POLLERR | POLLHUP))) {
        ConsumeLocked();
        quiet_since = std::chrono::steady_clock::now();
      } else if (std::chrono::steady_clock::now() - quiet_since > std::chrono::seconds(5)) {
        // A quiet connection may be a dead one: one round trip tells.
        PgResult res(PQexec(conn_, ""));
        quiet_since = std::chrono::steady_clock::now();
        if (!res || PQstatus(conn_) != CONNECTION_OK) {
          MarkLostLocked();
        } else {
          ConsumeLocked();  // notifications that came with the answer
        }
      }
    }
  }

  const std::string url_, channel_;
  const Callbacks callbacks_;
  std::mutex mu_;  // conn_ and lost_; held while notifications are handed out
  PGconn* conn_ = nullptr;
  bool lost_ = false;
  std::atomic<bool> stop_{false};
  int wake_[2] = {-1, -1};
  std::atomic<bool> wake_pending_{false};  // a wake byte is in the pipe (or about to be)
  std::thread thread_;
  // Sync: tickets asked for, answered by a round trip (done) or by a loss (failed).
  std::mutex sync_mu_;
  std::condition_variable sync_cv_;
  uint64_t sync_requested_ = 0, sync_done_ = 0, sync_failed_ = 0;
  uint64_t synced_ = 0;  // the listener thread's: the last ticket a round trip covered
};

class PgDatabase final : public Database {
 public:
  explicit PgDatabase(std::string url) : url_(std::move(url)) {}

  Status Init(int pool_size) {
    for (int i = 0; i < pool_size; ++i) {
      PGconn* conn = PQconnectdb(url_.c_str());
      if (PQstatus(conn) != CONNECTION_OK) {
        std::string msg = PQerrorMessage(conn);
        while (!msg.empty() && msg.back() == '\n') msg.pop_back();
        PQfinish(conn);
        return Error(Code::kUnavailable, "PostgreSQL at " + Describe() + ": " + msg);
      }
      auto c = std::make_unique<PgConnection>(conn, statements_);
      ALOFT_RETURN_IF_ERROR(c->ExecScript("SET client_min_messages = warning"));
      pool_.Add(std::move(c));
    }
    return OkStatus();
  }

  Engine engine() const override { return Engine::kPostgres; }
  std::string Describe() const override { return Redact(url_); }

  Status Transact(const std::function<Status(Connection&)>& fn) override {
    for (int attempt = 0;; ++attempt) {
      Status s = [&]() -> Status {
        auto conn = pool_.Acquire();
        ALOFT_RETURN_IF_ERROR(conn->EnsureOpen());
        ALOFT_RETURN_IF_ERROR(conn->ExecScript("BEGIN"));
        Status r = fn(*conn);
        if (r.ok()) r = conn->ExecScript("COMMIT");
        if (!r.ok()) (void)conn->ExecScript("ROLLBACK");
        return r;
      }();
      if (s.ok() || s.error().code() != Code::kUnavailable || attempt >= 5) return s;
      std::this_thread::sleep_for(std::chrono::milliseconds(5 << attempt));
    }
  }

  Status Read(const std::function<Status(Connection&)>& fn) override {
    auto conn = pool_.Acquire();
    ALOFT_RETURN_IF_ERROR(conn->EnsureOpen());
    return fn(*conn);
  }

  Result<std::unique_ptr<Listener>> Listen(const std::string& channel,
                                           Listener::Callbacks callbacks) override {
    auto listener = std::make_unique<PgListener>(url_, channel, std::move(callbacks));
    ALOFT_RETURN_IF_ERROR(listener->Start());
    return std::unique_ptr<Listener>(std::move(listener));
  }

 private:
  std::string url_;
  Pool<PgConnection> pool_;
};

}  // namespace

Result<std::unique_ptr<Database>> OpenPostgres(const std::string& url, int pool_size) {
  auto db = std::make_unique<PgDatabase>(url);
  ALOFT_RETURN_IF_ERROR(db->Init(pool_size));
  return std::unique_ptr<Database>(std::move(db));
}

}  // namespace aloft::db
