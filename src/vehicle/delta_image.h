// An ECU's new image rebuilt from a delta patch against its current image, as the flasher reads
// it: never whole in memory. A thread applies the patch (delta::Patcher) into a bounded buffer
// (64 KiB) that reads drain; a read before what was already produced starts the patch again from
// its beginning (the flasher reads front to back, once per pass: block CRCs when resuming, the
// transfer, the check's CRC-32), so the memory stays that of the patcher plus the buffer,
// whatever the image's size.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "core/encoding.h"
#include "core/io.h"

namespace aloft::vehicle {

class DeltaImage final : public RandomAccessSource {
 public:
  // `base`: the image the patch applies to (checked against the patch's header before the first
  // byte comes out); `size`: the target's, from the signed manifest.
  DeltaImage(std::shared_ptr<const Bytes> base, std::shared_ptr<const Bytes> patch, uint64_t size,
             size_t buffer = 64 * 1024);
  ~DeltaImage() override;

  uint64_t size() const override { return size_; }
  // kIntegrity when the patch does not apply (wrong base, corrupt patch), naming the problem.
  Status ReadAt(uint64_t offset, std::span<uint8_t> out) override;

  // How often the patch was applied from its beginning (1 per pass).
  int passes() const { return passes_; }

 private:
  class Sink;
  void Start();
  void Stop();

  std::shared_ptr<const Bytes> base_, patch_;
  uint64_t size_;
  size_t capacity_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  // The window: ring_ holds [pos_, pos_ + len_) of the target.
  Bytes ring_;
  size_t head_ = 0, len_ = 0;
  uint64_t pos_ = 0;
  bool running_ = false, finished_ = false, cancel_ = false;
  std::optional<Error> error_;
  int passes_ = 0;
};

}  // namespace aloft::vehicle
