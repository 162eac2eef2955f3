// For tests: a testers' PKI for UDS Authentication (0x29): a root (the ECU's trust anchor), a
// workshop CA under it, and testers under that, all ECDSA P-256 (docs/identity.md).
//
//   testing::TestPki oem("OEM root");
//   ecu_config.auth_anchors = {oem.root};
//   uds::TesterCredentials tester = oem.Tester({"programming"});   // chain: tester, workshop CA
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "crypto/x509.h"
#include "uds/authentication.h"

namespace aloft::testing {

struct TestPki {
  using TimePoint = std::chrono::system_clock::time_point;

  explicit TestPki(const std::string& name = "OEM diagnostics root",
                   TimePoint now = std::chrono::system_clock::now())
      : now_(now) {
    using std::chrono::hours;
    root = crypto::Certificate::Issue({.common_name = name,
                                       .not_before = now - hours(24 * 30),
                                       .not_after = now + hours(24 * 3650),
                                       .ca = true},
                                      root_key.public_key(), nullptr, root_key)
               .value();
    ca = crypto::Certificate::Issue({.common_name = name + " workshop CA",
                                     .not_before = now - hours(24 * 30),
                                     .not_after = now + hours(24 * 365),
                                     .ca = true},
                                    ca_key.public_key(), &root, root_key)
             .value();
  }

  // A tester whose certificate (valid from `from` to `to`; default: an hour ago to 8 h on)
  // names `roles`; its chain is the certificate and the workshop CA.
  uds::TesterCredentials Tester(std::vector<std::string> roles = {"programming"},
                                std::optional<TimePoint> from = std::nullopt,
                                std::optional<TimePoint> to = std::nullopt,
                                const std::string& name = "tester-17") const {
    crypto::PrivateKey key = crypto::PrivateKey::Generate(crypto::KeyType::kEcdsaP256).value();
    crypto::Certificate leaf =
        crypto::Certificate::Issue({.common_name = name,
                                    .not_before = from.value_or(now_ - std::chrono::hours(1)),
                                    .not_after = to.value_or(now_ + std::chrono::hours(8)),
                                    .roles = std::move(roles)},
                                   key.public_key(), &ca, ca_key)
            .value();
    return {{leaf, ca}, key};
  }

  crypto::PrivateKey root_key = crypto::PrivateKey::Generate(crypto::KeyType::kEcdsaP256).value();
  crypto::PrivateKey ca_key = crypto::PrivateKey::Generate(crypto::KeyType::kEcdsaP256).value();
  crypto::Certificate root, ca;

 private:
  TimePoint now_;
};

}  // namespace aloft::testing
