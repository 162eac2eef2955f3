// Devices that authenticate with a certificate instead of a token (private to src/server;
// docs/identity.md). A device's certificate is issued by the operator's device CA
// (device_ca_file; `aloft ca`), names the device in its common name, and is not on the CRL
// (device_crl_file, read again when the file changes). It comes with the TLS handshake, or,
// behind a proxy that terminates TLS, in a header (client_cert_header, the PEM URL-encoded as
// nginx's $ssl_client_escaped_cert) believed only from the addresses in trusted_proxies.
// Thread-safe.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/clock.h"
#include "core/error.h"
#include "crypto/x509.h"
#include "http/message.h"
#include "server/config.h"

namespace aloft::server {

class DeviceCertificates {
 public:
  // Null when the configuration names no device CA.
  static Result<std::unique_ptr<DeviceCertificates>> Open(const ServerConfig& config,
                                                          const Clock& clock);

  // The device the request's certificate names: kNotFound when it carries none (the caller
  // looks for a token), kPermissionDenied saying why when it carries one that is refused
  // (expired, not yet valid, another CA's, revoked, no common name).
  Result<std::string> DeviceOf(const http::Request& req);

  struct Counters {
    uint64_t accepted = 0, refused = 0, untrusted_header = 0, crl_reloads = 0;
  };
  Counters counters() const;

 private:
  DeviceCertificates(const ServerConfig& config, const Clock& clock)
      : config_(config), clock_(clock) {}
  // The CRL's revoked serials, read again when its file changed (looked at once a second).
  Result<std::shared_ptr<const std::set<std::string>>> Revoked();
  // What a certificate says, decoded once (keyed by its DER, or by a proxy's header text, whose
  // chain check is `problem`).
  struct Parsed {
    std::string name, serial, subject, problem;
    std::chrono::system_clock::time_point not_after{};
  };
  Result<Parsed> Parse(const std::string& key, bool from_tls);
  // The device `p` names, unless `problem` (the TLS verification's, or the chain's), its
  // expiry, the CRL or a missing name refuses it.
  Result<std::string> Check(const Parsed& p, const std::string& problem);
  static constexpr size_t kMaxParsed = 65536;

  const ServerConfig& config_;
  const Clock& clock_;
  std::vector<crypto::Certificate> anchors_;
  mutable std::mutex mu_;
  std::shared_ptr<const std::set<std::string>> revoked_ = std::make_shared<std::set<std::string>>();
  std::unordered_map<std::string, Parsed> parsed_;
  int64_t crl_mtime_ns_ = -1;
  std::chrono::steady_clock::time_point crl_checked_{};
  Counters counters_;
};

}  // namespace aloft::server
