#include "isotp/pdu.h"

#include <string>

namespace aloft::isotp {

namespace {

Error Ignored(const std::string& why) { return Error(Code::kMalformed, "ISO-TP frame " + why); }

}  // namespace

int SingleFrameCapacity(int tx_dl, int address_bytes) {
  return tx_dl <= 8 ? 7 - address_bytes : tx_dl - 2 - address_bytes;
}

int FirstFrameCapacity(int tx_dl, int address_bytes, uint32_t length) {
  return tx_dl - address_bytes - (length > 4095 ? 6 : 2);
}

int ConsecutiveFrameCapacity(int tx_dl, int address_bytes) { return tx_dl - 1 - address_bytes; }

Result<Pdu> Decode(std::span<const uint8_t> p, int can_dl, int address_bytes) {
  if (p.empty()) return Ignored("without an N_PCI byte");
  Pdu pdu;
  const uint8_t type = p[0] >> 4;
  switch (type) {
    case 0: {
      pdu.type = PduType::kSingle;
      size_t header = 1;
      pdu.length = p[0] & 0x0F;
      if (pdu.length == 0) {
        if (can_dl <= 8) return Ignored("single frame with SF_DL 0");
        if (p.size() < 2) return Ignored("single frame escape without its length byte");
        header = 2;
        pdu.length = p[1];
        // The escape is for what a short single frame cannot carry.
        if (pdu.length <= static_cast<uint32_t>(7 - address_bytes)) {
          return Ignored("single frame escape with SF_DL " + std::to_string(pdu.length) +
                         " (fits the short form)");
        }
      } else if (can_dl > 8) {
        return Ignored("single frame without the escape in a CAN FD frame of " +
                       std::to_string(can_dl) + " bytes");
      }
      if (pdu.length > p.size() - header) {
        return Ignored("single frame with SF_DL " + std::to_string(pdu.length) + " but " +
                       std::to_string(p.size() - header) + " data bytes");
      }
      pdu.data = p.subspan(header, pdu.length);
      return pdu;
    }
    case 1: {
      pdu.type = PduType::kFirst;
      if (can_dl < 8) return Ignored("first frame with CAN_DL " + std::to_string(can_dl));
      if (p.size() < 2) return Ignored("first frame shorter than its N_PCI");
      size_t header = 2;
      pdu.length = (static_cast<uint32_t>(p[0] & 0x0F) << 8) | p[1];
      if (pdu.length == 0) {
        if (p.size() < 6) return Ignored("first frame escape shorter than its N_PCI");
        header = 6;
        pdu.length = (uint32_t{p[2]} << 24) | (uint32_t{p[3]} << 16) | (uint32_t{p[4]} << 8) | p[5];
        if (pdu.length <= 4095) {
          return Ignored("first frame escape with FF_DL " + std::to_string(pdu.length));
        }
      }
      // A message a single frame of this frame's length could carry must not be segmented.
      const uint32_t min = static_cast<uint32_t>(SingleFrameCapacity(can_dl, address_bytes)) + 1;
      if (pdu.length < min) {
        return Ignored("first frame with FF_DL " + std::to_string(pdu.length) + " (below " +
                       std::to_string(min) + ")");
      }
      pdu.data = p.subspan(header);
      if (pdu.data.size() > pdu.length) pdu.data = pdu.data.first(pdu.length);
      return pdu;
    }
    case 2:
      pdu.type = PduType::kConsecutive;
      pdu.sn = p[0] & 0x0F;
      pdu.data = p.subspan(1);
      return pdu;
    case 3:
      pdu.type = PduType::kFlowControl;
      if (p.size() < 3) return Ignored("flow control shorter than 3 bytes");
      pdu.fs = p[0] & 0x0F;
      pdu.bs = p[1];
      pdu.st_min = p[2];
      return pdu;
    default:
      return Ignored("with unknown N_PCI type " + std::to_string(type));
  }
}

std::vector<uint8_t> EncodeSingle(std::span<const uint8_t> message, int tx_dl, int address_bytes) {
  std::vector<uint8_t> out;
  if (message.size() <= static_cast<size_t>(7 - address_bytes) || tx_dl <= 8) {
    out.push_back(static_cast<uint8_t>(message.size()));
  } else {
    out.push_back(0x00);
    out.push_back(static_cast<uint8_t>(message.size()));
  }
  out.insert(out.end(), message.begin(), message.end());
  return out;
}

std::vector<uint8_t> EncodeFirst(std::span<const uint8_t> message, int tx_dl, int address_bytes) {
  const uint32_t n = static_cast<uint32_t>(message.size());
  std::vector<uint8_t> out;
  if (n <= 4095) {
    out = {static_cast<uint8_t>(0x10 | (n >> 8)), static_cast<uint8_t>(n)};
  } else {
    out = {0x10,
           0x00,
           static_cast<uint8_t>(n >> 24),
           static_cast<uint8_t>(n >> 16),
           static_cast<uint8_t>(n >> 8),
           static_cast<uint8_t>(n)};
  }
  const size_t take = static_cast<size_t>(FirstFrameCapacity(tx_dl, address_bytes, n));
  out.insert(out.end(), message.begin(), message.begin() + static_cast<ptrdiff_t>(take));
  return out;
}

std::vector<uint8_t> EncodeConsecutive(uint8_t sn, std::span<const uint8_t> part) {
  // Sized once and copied into (GCC 12 at -O3 misreads an insert after a one-byte vector as
  // out of bounds: -Warray-bounds).
  std::vector<uint8_t> out(1 + part.size());
  out[0] = static_cast<uint8_t>(0x20 | (sn & 0x0F));
  std::copy(part.begin(), part.end(), out.begin() + 1);
  return out;
}

std::vector<uint8_t> EncodeFlowControl(FlowStatus fs, uint8_t bs, uint8_t st_min) {
  return {static_cast<uint8_t>(0x30 | static_cast<uint8_t>(fs)), bs, st_min};
}

std::chrono::microseconds StMin(uint8_t raw) {
  if (raw <= 0x7F) return std::chrono::milliseconds(raw);
  if (raw >= 0xF1 && raw <= 0xF9) return std::chrono::microseconds((raw - 0xF0) * 100);
  return std::chrono::milliseconds(0x7F);
}

uint8_t StMinByte(std::chrono::microseconds t) {
  if (t.count() <= 0) return 0;
  if (t.count() <= 900) return static_cast<uint8_t>(0xF0 + (t.count() + 99) / 100);
  const int64_t ms = (t.count() + 999) / 1000;
  return static_cast<uint8_t>(ms > 0x7F ? 0x7F : ms);
}

}  // namespace aloft::isotp
