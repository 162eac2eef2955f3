// A fixed-size pool of connections shared by the SQLite and PostgreSQL backends (private).
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <vector>

namespace aloft::db {

template <typename Conn>
class Pool {
 public:
  // Hands out a connection for the lifetime of the lease; waits while all are in use.
  class Lease {
   public:
    Lease(Pool* pool, std::unique_ptr<Conn> conn) : pool_(pool), conn_(std::move(conn)) {}
    ~Lease() {
      if (conn_) pool_->Return(std::move(conn_));
    }
    Lease(Lease&&) = default;
    Conn& operator*() { return *conn_; }
    Conn* operator->() { return conn_.get(); }

   private:
    Pool* pool_;
    std::unique_ptr<Conn> conn_;
  };

  void Add(std::unique_ptr<Conn> conn) {
    std::lock_guard lock(mu_);
    idle_.push_back(std::move(conn));
  }

  Lease Acquire() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return !idle_.empty(); });
    auto conn = std::move(idle_.back());
    idle_.pop_back();
    return Lease(this, std::move(conn));
  }

 private:
  void Return(std::unique_ptr<Conn> conn) {
    {
      std::lock_guard lock(mu_);
      idle_.push_back(std::move(conn));
    }
    cv_.notify_one();
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Conn>> idle_;
};

}  // namespace aloft::db
