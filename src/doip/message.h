// ISO 13400-2 (DoIP, 2012 and 2019) messages: the generic header and the payloads the vehicle
// network uses. Pure encoding and decoding; the fuzzer feeds Parse anything.
//
//   | version | ~version | payload type (2) | payload length (4) | payload ... |
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/encoding.h"
#include "core/error.h"

namespace aloft::doip {

constexpr uint16_t kPort = 13400;    // UDP and TCP
constexpr uint16_t kTlsPort = 3496;  // TCP with TLS (2019)
constexpr uint8_t kVersion2012 = 0x02;
constexpr uint8_t kVersion2019 = 0x03;
constexpr uint8_t kVersionAny = 0xFF;  // vehicle identification requests only
constexpr size_t kHeader = 8;

namespace type {
constexpr uint16_t kNack = 0x0000;
constexpr uint16_t kVehicleIdRequest = 0x0001;
constexpr uint16_t kVehicleIdRequestEid = 0x0002;
constexpr uint16_t kVehicleIdRequestVin = 0x0003;
constexpr uint16_t kVehicleAnnouncement = 0x0004;  // also the identification response
constexpr uint16_t kRoutingActivationRequest = 0x0005;
constexpr uint16_t kRoutingActivationResponse = 0x0006;
constexpr uint16_t kAliveCheckRequest = 0x0007;
constexpr uint16_t kAliveCheckResponse = 0x0008;
constexpr uint16_t kEntityStatusRequest = 0x4001;
constexpr uint16_t kEntityStatusResponse = 0x4002;
constexpr uint16_t kPowerModeRequest = 0x4003;
constexpr uint16_t kPowerModeResponse = 0x4004;
constexpr uint16_t kDiagnosticMessage = 0x8001;
constexpr uint16_t kDiagnosticAck = 0x8002;
constexpr uint16_t kDiagnosticNack = 0x8003;
}  // namespace type

// Generic header negative acknowledge codes.
namespace nack {
constexpr uint8_t kIncorrectPattern = 0x00;  // the connection is closed after it
constexpr uint8_t kUnknownPayloadType = 0x01;
constexpr uint8_t kMessageTooLarge = 0x02;
constexpr uint8_t kOutOfMemory = 0x03;
constexpr uint8_t kInvalidPayloadLength = 0x04;  // the connection is closed after it
}  // namespace nack

// Routing activation response codes.
namespace activation {
constexpr uint8_t kUnknownSource = 0x00;
constexpr uint8_t kAllSocketsTaken = 0x01;
constexpr uint8_t kDifferentSource = 0x02;
constexpr uint8_t kSourceActiveElsewhere = 0x03;
constexpr uint8_t kMissingAuthentication = 0x04;
constexpr uint8_t kRejectedConfirmation = 0x05;
constexpr uint8_t kUnsupportedType = 0x06;
constexpr uint8_t kRequiresTls = 0x07;
constexpr uint8_t kSuccess = 0x10;
constexpr uint8_t kConfirmationRequired = 0x11;
}  // namespace activation

// Diagnostic message negative acknowledge codes.
namespace diag_nack {
constexpr uint8_t kInvalidSource = 0x02;
constexpr uint8_t kUnknownTarget = 0x03;
constexpr uint8_t kTooLarge = 0x04;
constexpr uint8_t kOutOfMemory = 0x05;
constexpr uint8_t kTargetUnreachable = 0x06;
constexpr uint8_t kUnknownNetwork = 0x07;
constexpr uint8_t kTransportError = 0x08;
}  // namespace diag_nack

struct Message {
  uint8_t version = kVersion2012;
  uint16_t type = 0;
  Bytes payload;
};

Bytes Encode(const Message& m);
Bytes Encode(uint8_t version, uint16_t type, ByteSpan payload);

// The header at the start of `bytes`: nullopt when fewer than 8 bytes are there; a failure with
// the NACK code to answer when it is broken (kIncorrectPattern: version and inverse do not match,
// or a version not spoken; kMessageTooLarge: longer than `max_payload`).
struct HeaderFailure {
  uint8_t code;
  std::string why;
};
struct Header {
  uint8_t version;
  uint16_t type;
  uint32_t length;
};
std::optional<Header> PeekHeader(ByteSpan bytes, std::optional<HeaderFailure>* failure,
                                 uint32_t max_payload);

// The expected payload length for a type: {min, max}; nullopt for types this
// implementation does not know (NACK 0x01).
std::optional<std::pair<uint32_t, uint32_t>> PayloadBounds(uint16_t type);

struct VehicleAnnouncement {
  std::string vin;  // 17
  uint16_t logical_address = 0;
  std::array<uint8_t, 6> eid{};
  std::array<uint8_t, 6> gid{};
  uint8_t further_action = 0;
  std::optional<uint8_t> sync_status;
};
Bytes EncodeAnnouncement(const VehicleAnnouncement& a);
Result<VehicleAnnouncement> ParseAnnouncement(ByteSpan payload);

struct DiagnosticMessage {
  uint16_t source = 0;
  uint16_t target = 0;
  ByteSpan data;
};
Result<DiagnosticMessage> ParseDiagnostic(ByteSpan payload);
Bytes EncodeDiagnostic(uint16_t source, uint16_t target, ByteSpan data);

// Cuts a TCP byte stream into messages.
class Framer {
 public:
  explicit Framer(uint32_t max_payload) : max_payload_(max_payload) {}
  void Append(ByteSpan data) { buffer_.insert(buffer_.end(), data.begin(), data.end()); }
  // The next whole message, or nullopt (more bytes needed, or `failure` set: a broken header
  // whose NACK the caller sends; a message too large is skipped, a broken pattern ends the
  // stream: the caller closes it).
  std::optional<Message> Next(std::optional<HeaderFailure>* failure);

 private:
  uint32_t max_payload_;
  Bytes buffer_;
  uint64_t skip_ = 0;
};

// "routing activation: 0x10 (successfully activated)" style names.
const char* ActivationName(uint8_t code);
const char* DiagNackName(uint8_t code);

}  // namespace aloft::doip
