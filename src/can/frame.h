// CAN frames and their length on the wire (ISO 11898-1). A frame's duration on a bus is its bit
// count, stuff bits included, at the bus's bit rate: what the simulated bus (next) charges for it.
//
//   can::Frame f = can::Frame::Classic(0x7E0, false, {0x02, 0x10, 0x03});
//   int bits = can::WireBits(f);             // SOF to the end of the interframe space
//   auto t = can::Duration(f, 500'000);      // 500 kbit/s
//
// Classic frames only for now; CAN FD frames (two bit rates, stuff count, CRC-17/21) follow with
// the simulated bus (docs/vehicle-network.md).
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <initializer_list>

#include "core/error.h"

namespace aloft::can {

struct Frame {
  uint32_t id = 0;        // 11 bits (base format) or 29 bits (extended format)
  bool extended = false;  // IDE
  bool remote = false;    // RTR: a remote frame carries no data; `dlc` says what it asks for
  uint8_t dlc = 0;        // 0..15; a classic frame carries min(dlc, 8) bytes
  std::array<uint8_t, 8> data{};

  // A data frame of `bytes` (at most 8).
  static Frame Classic(uint32_t id, bool extended, std::initializer_list<uint8_t> bytes);
  // The bytes a classic data frame carries.
  int length() const { return remote ? 0 : (dlc > 8 ? 8 : dlc); }
};

// kInvalidArgument naming the field when the identifier does not fit its format or the DLC is
// above 15.
Status Validate(const Frame& f);

// The frame's bits from the start of frame to the end of the CRC sequence, before stuffing
// (what the CRC and the stuffing rule see), written MSB first into `out`; returns their count.
int UnstuffedHead(const Frame& f, std::array<uint8_t, 160>& out);

// ISO 11898-1's CRC-15 (polynomial 0x4599) over `n` bits.
uint16_t Crc15(const uint8_t* bits, int n);

// Stuff bits the transmitter inserts into `n` bits: after five equal bits in a row, one of the
// other value, which itself counts towards the next run.
int StuffBits(const uint8_t* bits, int n);

// Bits on the wire from the start of frame through the 3-bit interframe space: the stuffed head
// (SOF to CRC), then CRC delimiter, ACK slot, ACK delimiter, 7 EOF and 3 IFS bits.
int WireBits(const Frame& f);

// How long the frame occupies a bus running at `bit_rate` bits per second.
std::chrono::nanoseconds Duration(const Frame& f, uint32_t bit_rate);

}  // namespace aloft::can
