#include "doip/message.h"

#include <algorithm>
#include <array>

namespace aloft::doip {

namespace {

void Put16(Bytes& b, uint16_t v) {
  b.push_back(static_cast<uint8_t>(v >> 8));
  b.push_back(static_cast<uint8_t>(v));
}
uint16_t Get16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }

}  // namespace

Bytes Encode(uint8_t version, uint16_t t, ByteSpan payload) {
  Bytes out{version, static_cast<uint8_t>(~version)};
  Put16(out, t);
  const uint32_t n = static_cast<uint32_t>(payload.size());
  for (int i = 3; i >= 0; --i) out.push_back(static_cast<uint8_t>(n >> (8 * i)));
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

Bytes Encode(const Message& m) { return Encode(m.version, m.type, m.payload); }

std::optional<Header> PeekHeader(ByteSpan b, std::optional<HeaderFailure>* failure,
                                 uint32_t max_payload) {
  failure->reset();
  if (b.size() < kHeader) return std::nullopt;
  Header h{b[0], Get16(b.data() + 2),
           (uint32_t{b[4]} << 24) | (uint32_t{b[5]} << 16) | (uint32_t{b[6]} << 8) | b[7]};
  if (static_cast<uint8_t>(~b[0]) != b[1] ||
      (h.version != kVersion2012 && h.version != kVersion2019 && h.version != kVersionAny &&
       h.version != 0x01)) {
    *failure =
        HeaderFailure{nack::kIncorrectPattern, "protocol version and its inverse do not match"};
    return h;
  }
  if (h.length > max_payload) {
    *failure =
        HeaderFailure{nack::kMessageTooLarge, "payload of " + std::to_string(h.length) +
                                                  " bytes, at most " + std::to_string(max_payload)};
    return h;
  }
  return h;
}

std::optional<std::pair<uint32_t, uint32_t>> PayloadBounds(uint16_t t) {
  switch (t) {
    case type::kNack:
      return std::make_pair(1u, 1u);
    case type::kVehicleIdRequest:
      return std::make_pair(0u, 0u);
    case type::kVehicleIdRequestEid:
      return std::make_pair(6u, 6u);
    case type::kVehicleIdRequestVin:
      return std::make_pair(17u, 17u);
    case type::kVehicleAnnouncement:
      return std::make_pair(32u, 33u);
    case type::kRoutingActivationRequest:
      return std::make_pair(7u, 11u);
    case type::kRoutingActivationResponse:
      return std::make_pair(9u, 13u);
    case type::kAliveCheckRequest:
      return std::make_pair(0u, 0u);
    case type::kAliveCheckResponse:
      return std::make_pair(2u, 2u);
    case type::kEntityStatusRequest:
      return std::make_pair(0u, 0u);
    case type::kEntityStatusResponse:
      return std::make_pair(3u, 7u);
    case type::kPowerModeRequest:
      return std::make_pair(0u, 0u);
    case type::kPowerModeResponse:
      return std::make_pair(1u, 1u);
    case type::kDiagnosticMessage:
      return std::make_pair(5u, 0xFFFFFFFFu);
    case type::kDiagnosticAck:
      return std::make_pair(5u, 0xFFFFFFFFu);
    case type::kDiagnosticNack:
      return std::make_pair(5u, 0xFFFFFFFFu);
    default:
      return std::nullopt;
  }
}

std::optional<Message> Framer::Next(std::optional<HeaderFailure>* failure) {
  failure->reset();
  if (skip_) {
    const uint64_t n = std::min<uint64_t>(skip_, buffer_.size());
    buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<ptrdiff_t>(n));
    skip_ -= n;
    if (skip_) return std::nullopt;
  }
  std::optional<Header> h = PeekHeader(buffer_, failure, max_payload_);
  if (!h) return std::nullopt;
  if (*failure) {
    if ((*failure)->code == nack::kMessageTooLarge) {
      skip_ = kHeader + uint64_t{h->length};
      const uint64_t n = std::min<uint64_t>(skip_, buffer_.size());
      buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<ptrdiff_t>(n));
      skip_ -= n;
    } else {
      buffer_.clear();
    }
    return std::nullopt;
  }
  if (buffer_.size() < kHeader + h->length) return std::nullopt;
  Message m{h->version, h->type,
            Bytes(buffer_.begin() + kHeader, buffer_.begin() + kHeader + h->length)};
  buffer_.erase(buffer_.begin(), buffer_.begin() + kHeader + h->length);
  return m;
}

Bytes EncodeAnnouncement(const VehicleAnnouncement& a) {
  Bytes out;
  for (size_t i = 0; i < 17; ++i)
    out.push_back(i < a.vin.size() ? static_cast<uint8_t>(a.vin[i]) : 0);
  Put16(out, a.logical_address);
  out.insert(out.end(), a.eid.begin(), a.eid.end());
  out.insert(out.end(), a.gid.begin(), a.gid.end());
  out.push_back(a.further_action);
  if (a.sync_status) out.push_back(*a.sync_status);
  return out;
}

Result<VehicleAnnouncement> ParseAnnouncement(ByteSpan p) {
  if (p.size() != 32 && p.size() != 33) {
    return Error(Code::kMalformed,
                 "DoIP vehicle announcement of " + std::to_string(p.size()) + " bytes (32 or 33)");
  }
  VehicleAnnouncement a;
  a.vin.assign(p.begin(), p.begin() + 17);
  a.logical_address = Get16(p.data() + 17);
  std::copy_n(p.begin() + 19, 6, a.eid.begin());
  std::copy_n(p.begin() + 25, 6, a.gid.begin());
  a.further_action = p[31];
  if (p.size() == 33) a.sync_status = p[32];
  return a;
}

Result<DiagnosticMessage> ParseDiagnostic(ByteSpan p) {
  if (p.size() < 5) {
    return Error(Code::kMalformed,
                 "DoIP diagnostic message of " + std::to_string(p.size()) + " bytes (at least 5)");
  }
  return DiagnosticMessage{Get16(p.data()), Get16(p.data() + 2), p.subspan(4)};
}

Bytes EncodeDiagnostic(uint16_t source, uint16_t target, ByteSpan data) {
  Bytes out;
  out.reserve(4 + data.size());
  Put16(out, source);
  Put16(out, target);
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

const char* ActivationName(uint8_t code) {
  switch (code) {
    case 0x00:
      return "denied: unknown source address";
    case 0x01:
      return "denied: all TCP sockets registered and active";
    case 0x02:
      return "denied: a different source address on this socket";
    case 0x03:
      return "denied: source address active on another socket";
    case 0x04:
      return "denied: missing authentication";
    case 0x05:
      return "denied: rejected confirmation";
    case 0x06:
      return "denied: unsupported activation type";
    case 0x07:
      return "denied: requires TLS";
    case 0x10:
      return "successfully activated";
    case 0x11:
      return "activated, confirmation required";
    default:
      return "reserved";
  }
}

const char* DiagNackName(uint8_t code) {
  switch (code) {
    case 0x02:
      return "invalid source address";
    case 0x03:
      return "unknown target address";
    case 0x04:
      return "diagnostic message too large";
    case 0x05:
      return "out of memory";
    case 0x06:
      return "target unreachable";
    case 0x07:
      return "unknown network";
    case 0x08:
      return "transport protocol error";
    default:
      return "reserved";
  }
}

}  // namespace aloft::doip
