// aloftd's housekeeping (private to src/server): the background tasks that run beside the HTTP
// threads (PeriodicTask: the rollout engine's tick, the delta maker, writing devices' last
// contact in batches), and what runs once at start (removing interrupted uploads, the SQLite
// lock).
#pragma once

#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <ostream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/clock.h"
#include "core/error.h"
#include "core/file.h"
#include "server/store.h"

namespace aloft::server {

// Runs a function on its own thread every interval, until Stop() or destruction, which wait for
// a run under way to end.
class PeriodicTask {
 public:
  PeriodicTask() = default;
  ~PeriodicTask() { Stop(); }
  // Starts the thread: `fn` runs every `interval`, the first time at once when `run_first`, else
  // after one interval. Call once.
  void Start(std::function<void()> fn, std::chrono::milliseconds interval, bool run_first);
  PeriodicTask(const PeriodicTask&) = delete;
  PeriodicTask& operator=(const PeriodicTask&) = delete;
  void Stop();

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

// Devices' last contact, written behind in batches: a check-in only appends to a buffer, and
// Flush() writes the latest time per device in one transaction. Thread-safe.
class ContactRecorder {
 public:
  ContactRecorder(Store& store, const Clock& clock, std::ostream& log)
      : store_(store), clock_(clock), log_(log) {}
  // The device made contact now.
  void TouchLater(int64_t device_id);
  // Writes what was recorded since the last Flush; a failure is logged (and the batch dropped:
  // the next contact records it again).
  void Flush();

 private:
  static constexpr size_t kShards = 16;
  struct Shard {
    std::mutex mu;
    std::vector<std::pair<int64_t, int64_t>> seen;  // (device id, ms), in arrival order
  };
  Store& store_;
  const Clock& clock_;
  std::ostream& log_;
  std::array<Shard, kShards> shards_;
};

// Removes the upload files in `incoming_dir` that this host's processes left when they died
// (crash, kill -9); files of live processes, or of other hosts sharing the directory, stay.
void CleanIncoming(const std::string& incoming_dir, const std::string& host_name);

// One server per SQLite database: its caches rely on being the only writer, and several servers
// are what PostgreSQL is for. Returns the lock file, held until it is closed; the lock goes with
// the process, kill -9 included. kUnavailable when another aloftd holds it.
Result<File> LockSqlite(const std::string& db_path);

}  // namespace aloft::server
