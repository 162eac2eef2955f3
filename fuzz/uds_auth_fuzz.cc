// libFuzzer target for UDS Authentication (0x29): the request parsers, the X.509 DER parser and
// chain check behind 29 01, and the proof of ownership behind 29 03, as an ECU's Authenticator
// meets them. The first byte picks how the rest is used:
//   0: a whole 29 request;
//   1: the certificateClient of a 29 01 (the DER chain itself);
//   2: a 29 03 after a genuine tester's 29 01 got a challenge;
//   3: a 69 01 response as the tester parses it.
//
//   build/asan/fuzz/uds_auth_fuzz -max_total_time=60 corpus_dir
#include <cstddef>
#include <cstdint>

#include "uds/authentication.h"

namespace {

using namespace aloft;

struct World {
  crypto::PrivateKey root_key = crypto::PrivateKey::Generate(crypto::KeyType::kEcdsaP256).value();
  crypto::PrivateKey tester_key = crypto::PrivateKey::Generate(crypto::KeyType::kEcdsaP256).value();
  crypto::Certificate root, tester;
  std::unique_ptr<uds::Authenticator> ecu;
  World() {
    const auto now = std::chrono::system_clock::now();
    root = crypto::Certificate::Issue({.common_name = "fuzz root",
                                       .not_before = now - std::chrono::hours(1),
                                       .not_after = now + std::chrono::hours(24 * 365),
                                       .ca = true},
                                      root_key.public_key(), nullptr, root_key)
               .value();
    tester = crypto::Certificate::Issue({.common_name = "fuzz tester",
                                         .not_before = now - std::chrono::hours(1),
                                         .not_after = now + std::chrono::hours(24 * 365),
                                         .roles = {"programming"}},
                                        tester_key.public_key(), &root, root_key)
                 .value();
    ecu = std::make_unique<uds::Authenticator>(
        uds::AuthenticationConfig{.anchors = {root}, .roles = {"programming"}});
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static World* w = new World();
  if (size == 0) return 0;
  const std::span<const uint8_t> rest(data + 1, size - 1);
  w->ecu->Reset();
  switch (data[0] % 4) {
    case 0:
      w->ecu->Handle(rest);
      break;
    case 1:
      w->ecu->Handle(uds::EncodeVerifyCertificate(rest));
      break;
    case 2: {
      auto first = w->ecu->Handle(uds::EncodeVerifyCertificate(w->tester.Der()));
      if (first.nrc) __builtin_trap();  // the genuine tester must get a challenge
      w->ecu->Handle(rest);
      break;
    }
    case 3: {
      uds::VerifyCertificateResponse v;
      uds::ParseVerifyCertificateResponse(rest, &v);
      break;
    }
  }
  return 0;
}
