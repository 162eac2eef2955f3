#include "ecusim/flash_worker.h"

namespace aloft::ecusim {

void FlashWorker::Erase(uint64_t offset, uint64_t length, Done done) {
  queue_.push_back({true, offset, length, {}, std::move(done)});
  if (!running_) Next();
}

void FlashWorker::Program(uint64_t offset, Bytes data, Done done) {
  const uint64_t n = data.size();
  queue_.push_back({false, offset, n, std::move(data), std::move(done)});
  if (!running_) Next();
}

void FlashWorker::Clear() {
  if (timer_) loop_.Cancel(timer_);
  timer_ = 0;
  queue_.clear();
  running_ = false;
}

void FlashWorker::Next() {
  if (queue_.empty()) {
    running_ = false;
    if (on_idle_) on_idle_();
    return;
  }
  running_ = true;
  Op op = std::move(queue_.front());
  queue_.pop_front();
  const auto before = flash_.elapsed();
  Status s = op.erase ? flash_.Erase(op.offset, op.length) : flash_.Program(op.offset, op.data);
  const auto cost = flash_.elapsed() - before;
  busy_ += cost;
  timer_ = loop_.After(cost, [this, s = std::move(s), done = std::move(op.done)]() mutable {
    timer_ = 0;
    if (done) done(s);
    Next();
  });
}

}  // namespace aloft::ecusim
