#include "core/io.h"

#include <algorithm>
#include <cstring>

namespace aloft {

Result<size_t> MemorySource::Read(std::span<uint8_t> buf) {
  size_t n = std::min(buf.size(), data_.size() - pos_);
  if (n > 0) std::memcpy(buf.data(), data_.data() + pos_, n);
  pos_ += n;
  return n;
}

Status MemoryRandomSource::ReadAt(uint64_t offset, std::span<uint8_t> out) {
  if (offset > data_.size() || out.size() > data_.size() - offset) {
    return Error(Code::kOutOfRange, "a read of " + std::to_string(out.size()) + " bytes at " +
                                        std::to_string(offset) + " goes beyond the end (" +
                                        std::to_string(data_.size()) + " bytes)");
  }
  if (!out.empty()) std::memcpy(out.data(), data_.data() + offset, out.size());
  return OkStatus();
}

}  // namespace aloft
