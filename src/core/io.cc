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

}  // namespace aloft
