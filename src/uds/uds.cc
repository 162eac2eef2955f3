#include "uds/uds.h"

#include <cstdio>

namespace aloft::uds {

const char* NrcName(uint8_t code) {
  switch (code) {
    case 0x10:
      return "generalReject";
    case 0x11:
      return "serviceNotSupported";
    case 0x12:
      return "subFunctionNotSupported";
    case 0x13:
      return "incorrectMessageLengthOrInvalidFormat";
    case 0x14:
      return "responseTooLong";
    case 0x21:
      return "busyRepeatRequest";
    case 0x22:
      return "conditionsNotCorrect";
    case 0x24:
      return "requestSequenceError";
    case 0x25:
      return "noResponseFromSubnetComponent";
    case 0x26:
      return "failurePreventsExecutionOfRequestedAction";
    case 0x31:
      return "requestOutOfRange";
    case 0x33:
      return "securityAccessDenied";
    case 0x34:
      return "authenticationRequired";
    case 0x35:
      return "invalidKey";
    case 0x36:
      return "exceededNumberOfAttempts";
    case 0x37:
      return "requiredTimeDelayNotExpired";
    case 0x50:
      return "certificateVerificationFailed-InvalidTimePeriod";
    case 0x51:
      return "certificateVerificationFailed-InvalidSignature";
    case 0x52:
      return "certificateVerificationFailed-InvalidChainOfTrust";
    case 0x53:
      return "certificateVerificationFailed-InvalidType";
    case 0x54:
      return "certificateVerificationFailed-InvalidFormat";
    case 0x55:
      return "certificateVerificationFailed-InvalidContent";
    case 0x56:
      return "certificateVerificationFailed-InvalidScope";
    case 0x57:
      return "certificateVerificationFailed-InvalidCertificate";
    case 0x58:
      return "ownershipVerificationFailed";
    case 0x59:
      return "challengeCalculationFailed";
    case 0x5A:
      return "settingAccessRightsFailed";
    case 0x5B:
      return "sessionKeyCreationDerivationFailed";
    case 0x5C:
      return "configurationDataUsageFailed";
    case 0x5D:
      return "deAuthenticationFailed";
    case 0x70:
      return "uploadDownloadNotAccepted";
    case 0x71:
      return "transferDataSuspended";
    case 0x72:
      return "generalProgrammingFailure";
    case 0x73:
      return "wrongBlockSequenceCounter";
    case 0x78:
      return "requestCorrectlyReceived-ResponsePending";
    case 0x7E:
      return "subFunctionNotSupportedInActiveSession";
    case 0x7F:
      return "serviceNotSupportedInActiveSession";
    case 0x81:
      return "rpmTooHigh";
    case 0x88:
      return "vehicleSpeedTooHigh";
    case 0x92:
      return "voltageTooHigh";
    case 0x93:
      return "voltageTooLow";
    default:
      return "ISOSAEReserved";
  }
}

const char* ServiceName(uint8_t s) {
  switch (s) {
    case 0x10:
      return "DiagnosticSessionControl";
    case 0x11:
      return "ECUReset";
    case 0x14:
      return "ClearDiagnosticInformation";
    case 0x19:
      return "ReadDTCInformation";
    case 0x22:
      return "ReadDataByIdentifier";
    case 0x27:
      return "SecurityAccess";
    case 0x28:
      return "CommunicationControl";
    case 0x29:
      return "Authentication";
    case 0x2E:
      return "WriteDataByIdentifier";
    case 0x31:
      return "RoutineControl";
    case 0x34:
      return "RequestDownload";
    case 0x35:
      return "RequestUpload";
    case 0x36:
      return "TransferData";
    case 0x37:
      return "RequestTransferExit";
    case 0x3E:
      return "TesterPresent";
    case 0x85:
      return "ControlDTCSetting";
    default:
      return "unknown service";
  }
}

std::string Describe(std::span<const uint8_t> request, size_t max_bytes) {
  std::string s;
  char buf[8];
  for (size_t i = 0; i < request.size() && i < max_bytes; ++i) {
    std::snprintf(buf, sizeof buf, i ? " %02X" : "%02X", request[i]);
    s += buf;
  }
  if (request.size() > max_bytes) s += " ..";
  return s;
}

bool Answers(std::span<const uint8_t> request, std::span<const uint8_t> response) {
  if (request.empty() || response.empty()) return false;
  if (response[0] == sid::kNegativeResponse)
    return response.size() >= 3 && response[1] == request[0];
  return response[0] == static_cast<uint8_t>(request[0] + sid::kPositiveOffset);
}

Status Response::ToStatus(std::span<const uint8_t> request) const {
  if (positive()) return OkStatus();
  char buf[64];
  std::snprintf(buf, sizeof buf, ": negative response 0x%02X (", nrc());
  return Error(Code::kUnavailable,
               "UDS " + Describe(request, request[0] == 0x31 ? 4 : 2) + buf + NrcName(nrc()) + ")");
}

uint64_t BigEndian(std::span<const uint8_t> bytes) {
  uint64_t v = 0;
  for (uint8_t b : bytes) v = (v << 8) | b;
  return v;
}

void PutBigEndian(std::vector<uint8_t>& out, uint64_t value, int n) {
  for (int i = n - 1; i >= 0; --i) out.push_back(static_cast<uint8_t>(value >> (8 * i)));
}

std::optional<ParseFailure> ParseTransferRequest(std::span<const uint8_t> r, TransferRequest* out) {
  if (r.size() < 3) return ParseFailure{nrc::kIncorrectMessageLength, "shorter than 3 bytes"};
  const int size_len = r[2] >> 4, addr_len = r[2] & 0x0F;
  if (size_len == 0 || size_len > 4 || addr_len == 0 || addr_len > 8) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "addressAndLengthFormatIdentifier 0x%02X", r[2]);
    return ParseFailure{nrc::kRequestOutOfRange, buf};
  }
  if (r.size() != static_cast<size_t>(3 + addr_len + size_len)) {
    return ParseFailure{nrc::kIncorrectMessageLength, std::to_string(r.size()) +
                                                          " bytes where the format says " +
                                                          std::to_string(3 + addr_len + size_len)};
  }
  out->data_format = r[1];
  out->address = BigEndian(r.subspan(3, static_cast<size_t>(addr_len)));
  out->size =
      BigEndian(r.subspan(3 + static_cast<size_t>(addr_len), static_cast<size_t>(size_len)));
  return std::nullopt;
}

std::vector<uint8_t> EncodeTransferRequest(uint8_t s, const TransferRequest& t, int address_bytes,
                                           int size_bytes) {
  std::vector<uint8_t> out{s, t.data_format,
                           static_cast<uint8_t>((size_bytes << 4) | address_bytes)};
  PutBigEndian(out, t.address, address_bytes);
  PutBigEndian(out, t.size, size_bytes);
  return out;
}

std::optional<ParseFailure> ParseRoutineRequest(std::span<const uint8_t> r, RoutineRequest* out) {
  if (r.size() < 4) return ParseFailure{nrc::kIncorrectMessageLength, "shorter than 4 bytes"};
  out->type = r[1] & 0x7F;
  out->id = static_cast<uint16_t>((r[2] << 8) | r[3]);
  out->options = r.subspan(4);
  return std::nullopt;
}

std::optional<ParseFailure> ParseDidList(std::span<const uint8_t> r, std::vector<uint16_t>* out) {
  if (r.size() < 3 || (r.size() - 1) % 2 != 0) {
    return ParseFailure{nrc::kIncorrectMessageLength, "not a list of 2-byte identifiers"};
  }
  out->clear();
  for (size_t i = 1; i + 1 < r.size(); i += 2) {
    out->push_back(static_cast<uint16_t>((r[i] << 8) | r[i + 1]));
  }
  return std::nullopt;
}

}  // namespace aloft::uds
