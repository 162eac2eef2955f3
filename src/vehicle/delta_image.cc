#include "vehicle/delta_image.h"

#include <algorithm>
#include <cstring>

#include "delta/apply.h"

namespace aloft::vehicle {

// The patcher's output: waits while the buffer is full, stops when the reader is gone.
class DeltaImage::Sink final : public ByteSink {
 public:
  explicit Sink(DeltaImage& d) : d_(d) {}
  Status Write(ByteSpan data) override {
    std::unique_lock<std::mutex> lock(d_.mu_);
    while (!data.empty()) {
      d_.cv_.wait(lock, [&] { return d_.cancel_ || d_.len_ < d_.capacity_; });
      if (d_.cancel_) return Error(Code::kUnavailable, "stopped");
      const size_t tail = (d_.head_ + d_.len_) % d_.capacity_;
      const size_t n = std::min({data.size(), d_.capacity_ - d_.len_, d_.capacity_ - tail});
      std::memcpy(d_.ring_.data() + tail, data.data(), n);
      d_.len_ += n;
      data = data.subspan(n);
      d_.cv_.notify_all();
    }
    return OkStatus();
  }

 private:
  DeltaImage& d_;
};

DeltaImage::DeltaImage(std::shared_ptr<const Bytes> base, std::shared_ptr<const Bytes> patch,
                       uint64_t size, size_t buffer)
    : base_(std::move(base)),
      patch_(std::move(patch)),
      size_(size),
      capacity_(std::max<size_t>(buffer, 1)),
      ring_(capacity_) {}

DeltaImage::~DeltaImage() { Stop(); }

void DeltaImage::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    cancel_ = true;
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
  running_ = false;
}

void DeltaImage::Start() {
  Stop();
  head_ = len_ = 0;
  pos_ = 0;
  finished_ = cancel_ = false;
  error_.reset();
  running_ = true;
  ++passes_;
  thread_ = std::thread([this] {
    delta::MemoryBase base(*base_);
    MemorySource patch(*patch_);
    Sink sink(*this);
    Result<uint64_t> r = delta::ApplyPatch(base, patch, sink);
    std::lock_guard<std::mutex> lock(mu_);
    finished_ = true;
    if (!r.ok() && !cancel_) error_ = std::move(r).error();
    if (r.ok() && *r != size_) {
      error_ = Error(Code::kIntegrity, "the patch makes " + std::to_string(*r) +
                                           " bytes; the manifest says " + std::to_string(size_));
    }
    cv_.notify_all();
  });
}

Status DeltaImage::ReadAt(uint64_t offset, std::span<uint8_t> out) {
  if (offset > size_ || out.size() > size_ - offset) {
    return Error(Code::kOutOfRange, "a read of " + std::to_string(out.size()) + " bytes at " +
                                        std::to_string(offset) + " goes beyond the image (" +
                                        std::to_string(size_) + " bytes)");
  }
  if (!running_ || offset < pos_) Start();
  std::unique_lock<std::mutex> lock(mu_);
  size_t copied = 0;
  while (copied < out.size()) {
    const uint64_t want = offset + copied;
    // Drop what lies before the read: the patcher may go on.
    if (want > pos_ && len_ > 0) {
      const size_t drop = static_cast<size_t>(std::min<uint64_t>(want - pos_, len_));
      head_ = (head_ + drop) % capacity_;
      len_ -= drop;
      pos_ += drop;
      cv_.notify_all();
    }
    if (want == pos_ && len_ > 0) {
      const size_t n = std::min({out.size() - copied, len_, capacity_ - head_});
      std::memcpy(out.data() + copied, ring_.data() + head_, n);
      copied += n;
      head_ = (head_ + n) % capacity_;
      len_ -= n;
      pos_ += n;
      cv_.notify_all();
      continue;
    }
    if (error_) return Error(Code::kIntegrity, "the delta does not apply: " + error_->message());
    if (finished_ && len_ == 0) {
      return Error(Code::kIntegrity, "the delta ended at " + std::to_string(pos_) + " bytes of " +
                                         std::to_string(size_));
    }
    cv_.wait(lock, [&] { return len_ > 0 || finished_ || error_; });
  }
  return OkStatus();
}

}  // namespace aloft::vehicle
