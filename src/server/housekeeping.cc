#include "server/housekeeping.h"

#include <dirent.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <map>

#include "server/api.h"

namespace aloft::server {

void PeriodicTask::Start(std::function<void()> fn, std::chrono::milliseconds interval,
                         bool run_first) {
  thread_ = std::thread([this, fn = std::move(fn), interval, run_first] {
    std::unique_lock lock(mu_);
    if (!run_first) cv_.wait_for(lock, interval, [this] { return stop_; });
    while (!stop_) {
      lock.unlock();
      fn();
      lock.lock();
      cv_.wait_for(lock, interval, [this] { return stop_; });
    }
  });
}

void PeriodicTask::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ContactRecorder::TouchLater(int64_t device_id) {
  const int64_t now = ToMs(clock_.Wall());
  Shard& shard = shards_[static_cast<uint64_t>(device_id) % kShards];
  std::lock_guard lock(shard.mu);
  shard.seen.emplace_back(device_id, now);
}

void ContactRecorder::Flush() {
  std::map<int64_t, int64_t> batch;  // in id order: neighbouring rows are written together
  std::vector<std::pair<int64_t, int64_t>> seen;
  for (Shard& shard : shards_) {
    {
      std::lock_guard lock(shard.mu);
      seen.swap(shard.seen);
    }
    for (const auto& [id, ms] : seen) {
      int64_t& at = batch[id];
      at = std::max(at, ms);
    }
    seen.clear();
  }
  if (batch.empty()) return;
  Status s = store_.Write([&](Tx& tx) { return tx.TouchDevices(batch); });
  if (!s.ok()) log_ << "aloftd: recording last contact: " << s.error().ToString() << std::endl;
}

void CleanIncoming(const std::string& dir, const std::string& host_name) {
  const std::string prefix = "upload-" + host_name + "-";
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (!name.starts_with(prefix)) continue;
      pid_t pid = static_cast<pid_t>(std::atol(name.c_str() + prefix.size()));
      // Alive (kill succeeds, or the process belongs to another user): still uploading.
      if (pid > 0 && pid != ::getpid() && (::kill(pid, 0) == 0 || errno == EPERM)) continue;
      ::unlink((dir + "/" + name).c_str());
    }
    ::closedir(d);
  }
}

Result<File> LockSqlite(const std::string& db_path) {
  ALOFT_ASSIGN_OR_RETURN(
      File lock, File::OpenReadWrite(db_path + ".aloftd-lock", File::Creation::kIfMissing, 0640));
  if (::flock(lock.fd(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      return Error(Code::kUnavailable,
                   "database " + db_path +
                       " is in use by another aloftd; several servers on one "
                       "database need PostgreSQL (--database postgresql://...)");
    }
    return ErrnoError("locking " + lock.path(), errno);
  }
  return lock;
}

}  // namespace aloft::server
