// CAN frames and their length on the wire (ISO 11898-1:2015): classic frames (CAN 2.0A/B) and
// CAN FD frames. A frame occupies a bus for its bit count, stuff bits included, at the bus's bit
// rates: what the simulated bus charges for it.
//
//   can::Frame f = can::Frame::Classic(0x7E0, false, {0x02, 0x10, 0x03});
//   int bits = can::WireBits(f);                       // SOF to the end of the interframe space
//   auto t = can::Duration(f, {500'000});              // 500 kbit/s
//   can::Frame g = can::Frame::Fd(0x7E0, false, bytes);  // padded to the next FD length, BRS set
//   auto u = can::Duration(g, {500'000, 2'000'000});   // arbitration at 500k, data at 2M
//
// docs/vehicle-network.md gives the fields, the stuffing rules and the bit-rate switch convention.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>

#include "core/error.h"

namespace aloft::can {

// The bytes a DLC stands for: 0..8 as they are; for CAN FD, 9..15 mean 12, 16, 20, 24, 32, 48, 64
// (a classic frame carries 8 for all of them).
int DlcToLength(uint8_t dlc, bool fd);
// The smallest DLC whose FD length holds `bytes` (at most 64).
uint8_t LengthToDlc(int bytes);

struct Frame {
  uint32_t id = 0;        // 11 bits (base format) or 29 bits (extended format)
  bool extended = false;  // IDE
  bool remote = false;    // RTR (classic only): no data; `dlc` says what it asks for
  bool fd = false;        // FDF: a CAN FD frame
  bool brs = false;       // FD: the data phase runs at the data bit rate
  bool esi = false;       // FD: the transmitter is error passive
  uint8_t dlc = 0;        // 0..15
  std::array<uint8_t, 64> data{};

  // A classic data frame of `bytes` (at most 8).
  static Frame Classic(uint32_t id, bool extended, std::initializer_list<uint8_t> bytes);
  static Frame Classic(uint32_t id, bool extended, std::span<const uint8_t> bytes);
  // An FD data frame of `bytes` (at most 64), padded with `pad` up to the next FD length.
  static Frame Fd(uint32_t id, bool extended, std::span<const uint8_t> bytes, bool brs = true,
                  uint8_t pad = 0xCC);
  // The bytes the frame carries.
  int length() const { return remote ? 0 : DlcToLength(dlc, fd); }
  std::span<const uint8_t> payload() const { return {data.data(), static_cast<size_t>(length())}; }
};

bool operator==(const Frame& a, const Frame& b);

// kInvalidArgument naming the field: an identifier that does not fit its format, a DLC above 15,
// an FD remote frame, BRS or ESI on a classic frame.
Status Validate(const Frame& f);

// "7E0#021003", "18DA10F1#02", "7E0##1" + data for FD (candump's compact form; ## carries the
// flags nibble: 1 = BRS, 2 = ESI), "7E0#R" for a remote frame.
std::string ToString(const Frame& f);

// The bit rates of one bus: `nominal` for arbitration (and whole classic frames), `data` for the
// data phase of FD frames with BRS (0: the same as nominal).
struct BitRates {
  uint32_t nominal = 500'000;
  uint32_t data = 0;
  uint32_t data_rate() const { return data ? data : nominal; }
};

// A frame's bits on the wire, SOF through the 3-bit interframe space: those sent at the nominal
// rate and those sent at the data rate (only FD frames with BRS have any; by convention the BRS
// bit counts as nominal and the CRC delimiter as data, which gives the exact frame length for any
// sample points: docs/vehicle-network.md).
struct WireLength {
  int nominal_bits = 0;
  int data_bits = 0;
  int stuff_bits = 0;  // dynamic and fixed stuff bits, included in the two counts above
  int total() const { return nominal_bits + data_bits; }
};

WireLength Measure(const Frame& f);
inline int WireBits(const Frame& f) { return Measure(f).total(); }

// How long the frame occupies a bus running at `rates`.
std::chrono::nanoseconds Duration(const Frame& f, BitRates rates);
std::chrono::nanoseconds Duration(const WireLength& bits, BitRates rates);
// One bit at `rate` (the interframe space, an error flag).
std::chrono::nanoseconds BitTime(uint32_t rate, int bits = 1);

// The pieces, exposed for tests and the error model.
//
// ISO 11898-1's CRC-15 (0x4599), CRC-17 (0x3685B) and CRC-21 (0x302899) over `n` bits, MSB first;
// the register starts at 0 for CRC-15 and with its top bit set for CRC-17 and CRC-21.
uint32_t Crc15(const uint8_t* bits, int n);
uint32_t Crc17(const uint8_t* bits, int n);
uint32_t Crc21(const uint8_t* bits, int n);
// Stuff bits a transmitter inserts into `n` bits: after five equal bits in a row, one of the other
// value, which itself counts towards the next run.
int StuffBits(const uint8_t* bits, int n);

}  // namespace aloft::can
