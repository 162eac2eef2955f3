// A separate, deliberately plain implementation of ISO 11898-1:2015 frame lengths, for tests: the
// frame written out as a string of '0' and '1' field by field, the CRCs by polynomial long
// division, the stuff bits by inserting them into the string. Shares no code with frame.cc.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>

#include "can/frame.h"

namespace aloft::can::reference {

inline std::string Bits(uint32_t value, int width) {
  std::string s;
  for (int i = width - 1; i >= 0; --i) s += ((value >> i) & 1) ? '1' : '0';
  return s;
}

// The remainder of (message * x^k + init * x^n) divided by the generator (k + 1 bits, MSB first):
// a CRC register preset to `init` and fed the n message bits.
inline std::string ReferenceCrc(const std::string& message, const std::string& generator,
                                const std::string& init) {
  const size_t k = generator.size() - 1;
  std::string r = message + std::string(k, '0');
  for (size_t i = 0; i < k; ++i) r[i] = r[i] == init[i] ? '0' : '1';
  for (size_t i = 0; i + k < r.size(); ++i) {
    if (r[i] != '1') continue;
    for (size_t j = 0; j < generator.size(); ++j) r[i + j] = r[i + j] == generator[j] ? '0' : '1';
  }
  return r.substr(r.size() - k);
}

// x^15 + x^14 + x^10 + x^8 + x^7 + x^4 + x^3 + 1
inline std::string ReferenceCrc(const std::string& head) {
  return ReferenceCrc(head, "1100010110011001", std::string(15, '0'));
}
// x^17 + x^16 + x^14 + x^13 + x^11 + x^6 + x^4 + x^3 + x + 1, preset 1 followed by 16 zeros
inline const char kGen17[] = "110110100001011011";
inline const char kInit17[] = "10000000000000000";
// x^21 + x^20 + x^13 + x^11 + x^7 + x^4 + x^3 + 1, preset 1 followed by 20 zeros
inline const char kGen21[] = "1100000010100010011001";
inline const char kInit21[] = "100000000000000000000";

inline std::string ReferenceStuff(const std::string& bits) {
  std::string out;
  int run = 0;
  char last = 'x';
  for (char b : bits) {
    out += b;
    run = b == last ? run + 1 : 1;
    last = b;
    if (run == 5) {
      const char stuff = b == '1' ? '0' : '1';
      out += stuff;
      last = stuff;
      run = 1;
    }
  }
  return out;
}

inline int ReferenceWireBits(const Frame& f) {
  std::string head = "0";  // SOF
  if (f.extended) {
    head +=
        Bits(f.id >> 18, 11) + "1" + "1" + Bits(f.id & 0x3FFFF, 18) + (f.remote ? "1" : "0") + "00";
  } else {
    head += Bits(f.id, 11) + (f.remote ? "1" : "0") + "0" + "0";
  }
  head += Bits(f.dlc, 4);
  const int bytes = f.remote ? 0 : std::min<int>(f.dlc, 8);
  for (int i = 0; i < bytes; ++i) head += Bits(f.data[i], 8);
  const std::string stuffed = ReferenceStuff(head + ReferenceCrc(head));
  return static_cast<int>(stuffed.size()) + 1 + 2 + 7 + 3;  // CRC delim, ACK, EOF, IFS
}

struct ReferenceLength {
  int nominal, data;
};

// CAN FD: dynamic stuffing from SOF to the end of the data (none after the last data bit: the
// fixed stuff bit stands there), the stuff count Gray-coded with even parity, the CRC over the
// dynamically stuffed bits and the stuff count, fixed stuff bits before the CRC field and after
// every fourth bit of it. With BRS, the bits after BRS through the CRC delimiter are data phase.
inline ReferenceLength ReferenceFd(const Frame& f) {
  std::string head = "0";
  if (f.extended) {
    head += Bits(f.id >> 18, 11) + "1" + "1" + Bits(f.id & 0x3FFFF, 18) + "0" + "1" + "0";
  } else {
    head += Bits(f.id, 11) + "0" + "0" + "1" + "0";  // RRS, IDE, FDF, res
  }
  const size_t brs = head.size();
  head += std::string(f.brs ? "1" : "0") + (f.esi ? "1" : "0") + Bits(f.dlc, 4);
  static const int kLengths[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 20, 24, 32, 48, 64};
  const int bytes = kLengths[f.dlc];
  for (int i = 0; i < bytes; ++i) head += Bits(f.data[i], 8);

  std::string stuffed, phase;  // phase: 'n' nominal, 'd' data
  int run = 0, dynamic = 0;
  char last = 'x';
  for (size_t i = 0; i < head.size(); ++i) {
    const char p = f.brs && i > brs ? 'd' : 'n';
    stuffed += head[i];
    phase += p;
    run = head[i] == last ? run + 1 : 1;
    last = head[i];
    if (run == 5 && i + 1 < head.size()) {
      last = head[i] == '1' ? '0' : '1';
      stuffed += last;
      phase += f.brs && i >= brs ? 'd' : 'n';
      ++dynamic;
      run = 1;
    }
  }
  static const char* kGray[] = {"000", "001", "011", "010", "110", "111", "101", "100"};
  std::string count = kGray[dynamic % 8];
  count += std::count(count.begin(), count.end(), '1') % 2 ? "1" : "0";
  const std::string crc = bytes > 16 ? ReferenceCrc(stuffed + count, kGen21, kInit21)
                                     : ReferenceCrc(stuffed + count, kGen17, kInit17);
  const std::string field = count + crc;
  std::string fixed;
  char prev = stuffed.back();
  for (size_t i = 0; i < field.size(); ++i) {
    if (i % 4 == 0) fixed += prev == '1' ? '0' : '1';
    fixed += field[i];
    prev = field[i];
  }
  phase += std::string(fixed.size() + 1, f.brs ? 'd' : 'n');  // CRC field, CRC delimiter
  phase += std::string(1 + 1 + 7 + 3, 'n');                   // ACK, ACK delimiter, EOF, IFS
  const int data = static_cast<int>(std::count(phase.begin(), phase.end(), 'd'));
  return {static_cast<int>(phase.size()) - data, data};
}

// Either kind: bits at the nominal and at the data rate.
inline ReferenceLength Reference(const Frame& f) {
  return f.fd ? ReferenceFd(f) : ReferenceLength{ReferenceWireBits(f), 0};
}

}  // namespace aloft::can::reference
