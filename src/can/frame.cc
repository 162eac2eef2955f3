#include "can/frame.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

namespace aloft::can {

namespace {

constexpr int kFdLengths[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 20, 24, 32, 48, 64};

std::string Hex(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%X", v);
  return buf;
}

}  // namespace

int DlcToLength(uint8_t dlc, bool fd) {
  if (dlc > 15) return 0;
  return fd ? kFdLengths[dlc] : std::min<int>(dlc, 8);
}

uint8_t LengthToDlc(int bytes) {
  for (uint8_t dlc = 0; dlc < 16; ++dlc) {
    if (kFdLengths[dlc] >= bytes) return dlc;
  }
  return 15;
}

Frame Frame::Classic(uint32_t id, bool extended, std::initializer_list<uint8_t> bytes) {
  return Classic(id, extended, std::span<const uint8_t>(bytes.begin(), bytes.size()));
}

Frame Frame::Classic(uint32_t id, bool extended, std::span<const uint8_t> bytes) {
  Frame f;
  f.id = id;
  f.extended = extended;
  f.dlc = static_cast<uint8_t>(std::min<size_t>(bytes.size(), 8));
  std::copy_n(bytes.begin(), f.dlc, f.data.begin());
  return f;
}

Frame Frame::Fd(uint32_t id, bool extended, std::span<const uint8_t> bytes, bool brs, uint8_t pad) {
  Frame f;
  f.id = id;
  f.extended = extended;
  f.fd = true;
  f.brs = brs;
  const size_t n = std::min<size_t>(bytes.size(), 64);
  f.dlc = LengthToDlc(static_cast<int>(n));
  std::copy_n(bytes.begin(), n, f.data.begin());
  std::fill(f.data.begin() + static_cast<ptrdiff_t>(n), f.data.begin() + f.length(), pad);
  return f;
}

bool operator==(const Frame& a, const Frame& b) {
  return a.id == b.id && a.extended == b.extended && a.remote == b.remote && a.fd == b.fd &&
         a.brs == b.brs && a.esi == b.esi && a.dlc == b.dlc &&
         std::equal(a.payload().begin(), a.payload().end(), b.payload().begin());
}

Status Validate(const Frame& f) {
  const uint32_t max_id = f.extended ? 0x1FFFFFFF : 0x7FF;
  if (f.id > max_id) {
    return Error(Code::kInvalidArgument,
                 "CAN identifier " + Hex(f.id) + " does not fit " +
                     (f.extended ? "29 bits (extended format)" : "11 bits (base format)"));
  }
  if (f.dlc > 15) {
    return Error(Code::kInvalidArgument, "CAN DLC " + std::to_string(f.dlc) + " is above 15");
  }
  if (f.fd && f.remote) {
    return Error(Code::kInvalidArgument,
                 "CAN frame " + Hex(f.id) + ": CAN FD has no remote frames");
  }
  if (!f.fd && (f.brs || f.esi)) {
    return Error(Code::kInvalidArgument,
                 "CAN frame " + Hex(f.id) + ": BRS and ESI exist only in CAN FD frames");
  }
  return OkStatus();
}

std::string ToString(const Frame& f) {
  char buf[16];
  std::snprintf(buf, sizeof buf, f.extended ? "%08X" : "%03X", f.id);
  std::string s = buf;
  if (f.remote) {
    s += "#R";
    if (f.dlc) s += std::to_string(f.dlc);
    return s;
  }
  if (f.fd) {
    s += "##";
    s += "0123456789ABCDEF"[(f.brs ? 1 : 0) | (f.esi ? 2 : 0)];
  } else {
    s += '#';
  }
  for (uint8_t b : f.payload()) {
    std::snprintf(buf, sizeof buf, "%02X", b);
    s += buf;
  }
  return s;
}

namespace {

// Enough for the longest frame: an extended FD frame of 64 bytes, stuffed, with its CRC field.
constexpr int kMaxBits = 800;

class BitWriter {
 public:
  explicit BitWriter(uint8_t* out) : out_(out) {}
  void Put(uint32_t value, int width) {
    for (int i = width - 1; i >= 0; --i) out_[n_++] = static_cast<uint8_t>((value >> i) & 1);
  }
  int size() const { return n_; }

 private:
  uint8_t* out_;
  int n_ = 0;
};

uint32_t Crc(const uint8_t* bits, int n, int width, uint32_t poly, uint32_t init) {
  const uint32_t mask = (1u << width) - 1;
  uint32_t crc = init;
  for (int i = 0; i < n; ++i) {
    const bool next = (bits[i] ^ (crc >> (width - 1))) & 1;
    crc = (crc << 1) & mask;
    if (next) crc ^= poly & mask;
  }
  return crc;
}

// SOF to the end of the data field, unstuffed; `brs_at` is the index of the BRS bit (FD).
int Head(const Frame& f, uint8_t* out, int* brs_at) {
  BitWriter w(out);
  w.Put(0, 1);  // SOF, dominant
  if (f.extended) {
    w.Put(f.id >> 18, 11);  // base identifier
    w.Put(1, 1);            // SRR, recessive
    w.Put(1, 1);            // IDE, recessive: extended format
    w.Put(f.id & 0x3FFFF, 18);
  } else {
    w.Put(f.id, 11);
  }
  if (f.fd) {
    w.Put(0, 1);                   // RRS, dominant
    if (!f.extended) w.Put(0, 1);  // IDE, dominant: base format
    w.Put(1, 1);                   // FDF, recessive
    w.Put(0, 1);                   // res
    *brs_at = w.size();
    w.Put(f.brs ? 1 : 0, 1);  // BRS
    w.Put(f.esi ? 1 : 0, 1);  // ESI
  } else if (f.extended) {
    w.Put(f.remote ? 1 : 0, 1);  // RTR
    w.Put(0, 2);                 // r1, r0
  } else {
    w.Put(f.remote ? 1 : 0, 1);  // RTR
    w.Put(0, 2);                 // IDE (dominant: base format), r0
  }
  w.Put(f.dlc, 4);
  for (int i = 0; i < f.length(); ++i) w.Put(f.data[i], 8);
  return w.size();
}

constexpr int kAfterCrc = 1 + 1 + 7 + 3;  // ACK slot, ACK delimiter, EOF, interframe space

WireLength MeasureClassic(const Frame& f) {
  uint8_t bits[kMaxBits];
  int brs_at = 0;
  const int head = Head(f, bits, &brs_at);
  BitWriter crc(bits + head);
  crc.Put(Crc15(bits, head), 15);
  const int n = head + 15;
  WireLength len;
  len.stuff_bits = StuffBits(bits, n);
  len.nominal_bits = n + len.stuff_bits + 1 + kAfterCrc;  // CRC delimiter
  return len;
}

WireLength MeasureFd(const Frame& f) {
  uint8_t head[kMaxBits];
  int brs_at = 0;
  const int n = Head(f, head, &brs_at);
  // Dynamic stuffing, SOF to the end of the data field (the CRC covers these stuff bits too). A
  // stuff condition at the last data bit inserts no dynamic bit: the fixed stuff bit that opens
  // the CRC field takes its place.
  int m = 0, run = 0, dynamic = 0, brs_stuffed = 0;
  uint8_t last = 2;
  for (int i = 0; i < n; ++i) {
    if (i == brs_at) brs_stuffed = m;
    ++m;
    run = head[i] == last ? run + 1 : 1;
    last = head[i];
    if (run == 5 && i != n - 1) {
      last = static_cast<uint8_t>(!last);
      ++m;
      ++dynamic;
      run = 1;
    }
  }
  // The CRC field: the stuff count (dynamic stuff bits modulo 8, Gray-coded, and a parity bit),
  // then CRC-17 up to 16 data bytes, CRC-21 above. Its stuffing is fixed, so the values do not
  // change the length; only the widths do.
  const int crc_bits = f.length() > 16 ? 21 : 17;
  const int field = 4 + crc_bits;
  const int fixed = 1 + (field - 1) / 4;  // one before the field, one after every 4 bits in it

  WireLength len;
  len.stuff_bits = dynamic + fixed;
  const int phase_split = f.brs ? brs_stuffed + 1 : m;  // stuffed bits through BRS: nominal
  const int data_phase = (m - phase_split) + field + fixed + 1;  // + CRC delimiter
  if (f.brs) {
    len.nominal_bits = phase_split + kAfterCrc;
    len.data_bits = data_phase;
  } else {
    len.nominal_bits = m + data_phase + kAfterCrc;
  }
  return len;
}

}  // namespace

WireLength Measure(const Frame& f) { return f.fd ? MeasureFd(f) : MeasureClassic(f); }

std::chrono::nanoseconds BitTime(uint32_t rate, int bits) {
  return std::chrono::nanoseconds(static_cast<int64_t>(bits) * 1'000'000'000 / rate);
}

std::chrono::nanoseconds Duration(const WireLength& bits, BitRates rates) {
  return BitTime(rates.nominal, bits.nominal_bits) + BitTime(rates.data_rate(), bits.data_bits);
}

std::chrono::nanoseconds Duration(const Frame& f, BitRates rates) {
  return Duration(Measure(f), rates);
}

uint32_t Crc15(const uint8_t* bits, int n) { return Crc(bits, n, 15, 0x4599, 0); }
uint32_t Crc17(const uint8_t* bits, int n) { return Crc(bits, n, 17, 0x3685B, 1u << 16); }
uint32_t Crc21(const uint8_t* bits, int n) { return Crc(bits, n, 21, 0x302899, 1u << 20); }

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

}  // namespace aloft::can
