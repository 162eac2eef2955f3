// ISO 14229-1 (UDS) as data: service identifiers, negative response codes, responses, and the
// parsers for the requests the server framework and the bootloader take apart. Pure, no state:
// the fuzzer feeds the parsers anything.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/error.h"

namespace aloft::uds {

namespace sid {
constexpr uint8_t kDiagnosticSessionControl = 0x10;
constexpr uint8_t kEcuReset = 0x11;
constexpr uint8_t kClearDiagnosticInformation = 0x14;
constexpr uint8_t kReadDtcInformation = 0x19;
constexpr uint8_t kReadDataByIdentifier = 0x22;
constexpr uint8_t kSecurityAccess = 0x27;
constexpr uint8_t kCommunicationControl = 0x28;
constexpr uint8_t kAuthentication = 0x29;
constexpr uint8_t kWriteDataByIdentifier = 0x2E;
constexpr uint8_t kRoutineControl = 0x31;
constexpr uint8_t kRequestDownload = 0x34;
constexpr uint8_t kRequestUpload = 0x35;
constexpr uint8_t kTransferData = 0x36;
constexpr uint8_t kRequestTransferExit = 0x37;
constexpr uint8_t kTesterPresent = 0x3E;
constexpr uint8_t kControlDtcSetting = 0x85;
constexpr uint8_t kNegativeResponse = 0x7F;
constexpr uint8_t kPositiveOffset = 0x40;
}  // namespace sid

namespace nrc {
constexpr uint8_t kGeneralReject = 0x10;
constexpr uint8_t kServiceNotSupported = 0x11;
constexpr uint8_t kSubFunctionNotSupported = 0x12;
constexpr uint8_t kIncorrectMessageLength = 0x13;
constexpr uint8_t kResponseTooLong = 0x14;
constexpr uint8_t kBusyRepeatRequest = 0x21;
constexpr uint8_t kConditionsNotCorrect = 0x22;
constexpr uint8_t kRequestSequenceError = 0x24;
constexpr uint8_t kRequestOutOfRange = 0x31;
constexpr uint8_t kSecurityAccessDenied = 0x33;
constexpr uint8_t kAuthenticationRequired = 0x34;  // ISO 14229-1:2020
constexpr uint8_t kInvalidKey = 0x35;
constexpr uint8_t kExceededNumberOfAttempts = 0x36;
constexpr uint8_t kRequiredTimeDelayNotExpired = 0x37;
// Authentication (0x29), ISO 14229-1:2020.
constexpr uint8_t kCertificateInvalidTimePeriod = 0x50;
constexpr uint8_t kCertificateInvalidSignature = 0x51;
constexpr uint8_t kCertificateInvalidChainOfTrust = 0x52;
constexpr uint8_t kCertificateInvalidType = 0x53;
constexpr uint8_t kCertificateInvalidFormat = 0x54;
constexpr uint8_t kCertificateInvalidContent = 0x55;
constexpr uint8_t kCertificateInvalidScope = 0x56;
constexpr uint8_t kCertificateInvalidCertificate = 0x57;  // revoked
constexpr uint8_t kOwnershipVerificationFailed = 0x58;
constexpr uint8_t kChallengeCalculationFailed = 0x59;
constexpr uint8_t kSettingAccessRightsFailed = 0x5A;
constexpr uint8_t kSessionKeyCreationFailed = 0x5B;
constexpr uint8_t kConfigurationDataUsageFailed = 0x5C;
constexpr uint8_t kDeAuthenticationFailed = 0x5D;
constexpr uint8_t kUploadDownloadNotAccepted = 0x70;
constexpr uint8_t kTransferDataSuspended = 0x71;
constexpr uint8_t kGeneralProgrammingFailure = 0x72;
constexpr uint8_t kWrongBlockSequenceCounter = 0x73;
constexpr uint8_t kResponsePending = 0x78;
constexpr uint8_t kSubFunctionNotSupportedInActiveSession = 0x7E;
constexpr uint8_t kServiceNotSupportedInActiveSession = 0x7F;
constexpr uint8_t kVoltageTooHigh = 0x92;
constexpr uint8_t kVoltageTooLow = 0x93;
}  // namespace nrc

namespace session {
constexpr uint8_t kDefault = 0x01;
constexpr uint8_t kProgramming = 0x02;
constexpr uint8_t kExtended = 0x03;
}  // namespace session

// "requestSequenceError"; "ISOSAEReserved" for codes the standard leaves open.
const char* NrcName(uint8_t code);
// "DiagnosticSessionControl"; "unknown service" otherwise.
const char* ServiceName(uint8_t sid);

// A response to one request: positive (the bytes from the response SID on) or negative (NRC).
struct Response {
  std::vector<uint8_t> bytes;  // the whole response message
  bool positive() const { return !bytes.empty() && bytes[0] != sid::kNegativeResponse; }
  uint8_t nrc() const { return positive() || bytes.size() < 3 ? 0 : bytes[2]; }
  // The data after the response SID (and, where it echoes them, what the caller skips itself).
  std::span<const uint8_t> data() const {
    return bytes.empty() ? std::span<const uint8_t>() : std::span(bytes).subspan(1);
  }
  // Ok for a positive response; otherwise kUnavailable "UDS 27 02: negative response 0x35
  // (invalidKey)".
  Status ToStatus(std::span<const uint8_t> request) const;
};

// The request's first bytes as hex for messages: "27 02", "31 01 FF 00".
std::string Describe(std::span<const uint8_t> request, size_t max_bytes = 4);
// Whether `response` answers `request`: the positive SID, or 7F and the request's SID.
bool Answers(std::span<const uint8_t> request, std::span<const uint8_t> response);

// Big-endian unsigned of `n` bytes (n <= 8).
uint64_t BigEndian(std::span<const uint8_t> bytes);
void PutBigEndian(std::vector<uint8_t>& out, uint64_t value, int n);

// RequestDownload / RequestUpload: 34 DFI ALFID address size.
struct TransferRequest {
  uint8_t data_format = 0;  // high nibble: compression method, low nibble: encryption method
  uint64_t address = 0;
  uint64_t size = 0;
};
// The parse fails with the NRC a server answers: 0x13 for a wrong length, 0x31 for an address
// and length format identifier with a length of 0 or above 8 (or 4 for the size's).
struct ParseFailure {
  uint8_t nrc;
  std::string why;
};
std::optional<ParseFailure> ParseTransferRequest(std::span<const uint8_t> request,
                                                 TransferRequest* out);
std::vector<uint8_t> EncodeTransferRequest(uint8_t sid, const TransferRequest& r,
                                           int address_bytes = 4, int size_bytes = 4);

// RoutineControl: 31 type RID(2) options.
struct RoutineRequest {
  uint8_t type = 0;  // 01 start, 02 stop, 03 request results (suppress bit removed)
  uint16_t id = 0;
  std::span<const uint8_t> options;
};
std::optional<ParseFailure> ParseRoutineRequest(std::span<const uint8_t> request,
                                                RoutineRequest* out);

// ReadDataByIdentifier: 22 DID DID ...
std::optional<ParseFailure> ParseDidList(std::span<const uint8_t> request,
                                         std::vector<uint16_t>* out);

}  // namespace aloft::uds
