#include "can/frame.h"

#include <algorithm>
#include <cstdio>
#include <string>

namespace aloft::can {

Frame Frame::Classic(uint32_t id, bool extended, std::initializer_list<uint8_t> bytes) {
  Frame f;
  f.id = id;
  f.extended = extended;
  f.dlc = static_cast<uint8_t>(std::min<size_t>(bytes.size(), 8));
  std::copy_n(bytes.begin(), f.dlc, f.data.begin());
  return f;
}

Status Validate(const Frame& f) {
  const uint32_t max_id = f.extended ? 0x1FFFFFFF : 0x7FF;
  if (f.id > max_id) {
    char hex[16];
    std::snprintf(hex, sizeof hex, "0x%X", f.id);
    return Error(Code::kInvalidArgument,
                 "CAN identifier " + std::string(hex) + " does not fit " +
                     (f.extended ? "29 bits (extended format)" : "11 bits (base format)"));
  }
  if (f.dlc > 15) {
    return Error(Code::kInvalidArgument, "CAN DLC " + std::to_string(f.dlc) + " is above 15");
  }
  return OkStatus();
}

namespace {

class BitWriter {
 public:
  explicit BitWriter(std::array<uint8_t, 160>& out) : out_(out) {}
  void Put(uint32_t value, int width) {
    for (int i = width - 1; i >= 0; --i) out_[n_++] = static_cast<uint8_t>((value >> i) & 1);
  }
  int size() const { return n_; }

 private:
  std::array<uint8_t, 160>& out_;
  int n_ = 0;
};

}  // namespace

int UnstuffedHead(const Frame& f, std::array<uint8_t, 160>& out) {
  BitWriter w(out);
  w.Put(0, 1);  // SOF, dominant
  if (f.extended) {
    w.Put(f.id >> 18, 11);  // base identifier
    w.Put(1, 1);            // SRR, recessive
    w.Put(1, 1);            // IDE, recessive: extended
    w.Put(f.id & 0x3FFFF, 18);
    w.Put(f.remote ? 1 : 0, 1);  // RTR
    w.Put(0, 2);                 // r1, r0
  } else {
    w.Put(f.id, 11);
    w.Put(f.remote ? 1 : 0, 1);  // RTR
    w.Put(0, 2);                 // IDE (dominant: base format), r0
  }
  w.Put(f.dlc, 4);
  for (int i = 0; i < f.length(); ++i) w.Put(f.data[i], 8);
  const int head = w.size();
  w.Put(Crc15(out.data(), head), 15);
  return w.size();
}

uint16_t Crc15(const uint8_t* bits, int n) {
  uint16_t crc = 0;
  for (int i = 0; i < n; ++i) {
    const bool next = (bits[i] ^ (crc >> 14)) & 1;
    crc = static_cast<uint16_t>((crc << 1) & 0x7FFF);
    if (next) crc ^= 0x4599;
  }
  return crc;
}

int StuffBits(const uint8_t* bits, int n) {
  int stuffed = 0, run = 0;
  uint8_t last = 2;
  for (int i = 0; i < n; ++i) {
    run = bits[i] == last ? run + 1 : 1;
    last = bits[i];
    if (run == 5) {
      ++stuffed;
      last = static_cast<uint8_t>(!last);  // the stuff bit starts the next run
      run = 1;
    }
  }
  return stuffed;
}

int WireBits(const Frame& f) {
  std::array<uint8_t, 160> bits{};
  const int n = UnstuffedHead(f, bits);
  return n + StuffBits(bits.data(), n) + 1 + 1 + 1 + 7 + 3;
}

std::chrono::nanoseconds Duration(const Frame& f, uint32_t bit_rate) {
  return std::chrono::nanoseconds(static_cast<int64_t>(WireBits(f)) * 1'000'000'000 / bit_rate);
}

}  // namespace aloft::can
