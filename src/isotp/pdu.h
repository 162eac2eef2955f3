// ISO 15765-2:2016 protocol data units: the N_PCI that starts each CAN frame's payload (after the
// address byte of extended and mixed addressing). Pure encoding and decoding, no state: the
// channel (channel.h) keeps the state, the fuzzer feeds Decode anything.
//
//   single frame       0L | SF_DL..        (CAN FD, SF_DL > 7: 00 SF_DL ..)
//   first frame        1H LL ..            (FF_DL > 4095: 10 00 L L L L ..)
//   consecutive frame  2N ..               (N: sequence number, FF = 0, first CF = 1, wraps 15 ->
//   0) flow control       3S BS STmin         (S: 0 continue to send, 1 wait, 2 overflow)
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <vector>

#include "core/error.h"

namespace aloft::isotp {

enum class PduType : uint8_t { kSingle = 0, kFirst = 1, kConsecutive = 2, kFlowControl = 3 };
enum class FlowStatus : uint8_t { kContinue = 0, kWait = 1, kOverflow = 2 };

struct Pdu {
  PduType type = PduType::kSingle;
  uint32_t length = 0;            // SF_DL or FF_DL
  uint8_t sn = 0;                 // CF
  uint8_t fs = 0;                 // FC: FlowStatus, or what the frame said when it is not one
  uint8_t bs = 0;                 // FC
  uint8_t st_min = 0;             // FC, raw
  std::span<const uint8_t> data;  // SF: the message; FF, CF: their part of it
};

// The N_PDU in `payload` (a CAN frame's bytes after any address byte). `can_dl` is the frame's
// length on the bus (8 for classic frames) and `address_bytes` 0 or 1. kMalformed, saying why,
// for what a receiver ignores: an unknown N_PCI type, SF_DL 0 or beyond the frame, an escape
// sequence in a classic frame, FF_DL too small for a first frame, a frame too short for its PCI.
Result<Pdu> Decode(std::span<const uint8_t> payload, int can_dl, int address_bytes);

// Bytes of message a frame of `tx_dl` carries.
int SingleFrameCapacity(int tx_dl, int address_bytes);  // the largest SF_DL
int FirstFrameCapacity(int tx_dl, int address_bytes, uint32_t length);
int ConsecutiveFrameCapacity(int tx_dl, int address_bytes);

// Frame payloads, without the address byte.
std::vector<uint8_t> EncodeSingle(std::span<const uint8_t> message, int tx_dl, int address_bytes);
std::vector<uint8_t> EncodeFirst(std::span<const uint8_t> message, int tx_dl, int address_bytes);
std::vector<uint8_t> EncodeConsecutive(uint8_t sn, std::span<const uint8_t> part);
std::vector<uint8_t> EncodeFlowControl(FlowStatus fs, uint8_t bs, uint8_t st_min);

// STmin as a time: 0x00..0x7F milliseconds, 0xF1..0xF9 100..900 microseconds; a reserved value
// counts as 0x7F (127 ms), as the standard tells a sender to do.
std::chrono::microseconds StMin(uint8_t raw);
// The smallest STmin byte that is at least `t` (0x7F for anything above 127 ms).
uint8_t StMinByte(std::chrono::microseconds t);

}  // namespace aloft::isotp
