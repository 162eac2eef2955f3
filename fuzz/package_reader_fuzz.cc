// libFuzzer target for the package reader: tar parsing, manifest JSON, canonical-form and field
// checks, signature checking, decompression and hashing of payloads.
//
// The seed corpus (corpus/package_reader/) holds small packages signed by the key whose public half
// is embedded below (corpus/package_reader.pub), so mutations that keep the signature intact reach
// the payload code both with and without a trust set.
//
//   build/fuzz/fuzz/package_reader_fuzz -max_total_time=60 <copy of corpus/package_reader>
#include <cstddef>
#include <cstdint>

#include "core/io.h"
#include "crypto/trust.h"
#include "pkg/package.h"

namespace {

constexpr char kCorpusKey[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MCowBQYDK2VwAyEATzOfaoePKPg5e6V/78+EQ0Zswum21VZnWov4aLxysoA=\n"
    "-----END PUBLIC KEY-----\n";

class DiscardSink final : public aloft::pkg::PayloadSink {
 public:
  aloft::Status Begin(const aloft::pkg::Component&) override { return aloft::OkStatus(); }
  aloft::Status Write(aloft::ByteSpan) override { return aloft::OkStatus(); }
  aloft::Status End(const aloft::pkg::Component&) override { return aloft::OkStatus(); }
};

const aloft::crypto::TrustSet& Trust() {
  static const aloft::crypto::TrustSet trust(
      {aloft::crypto::PublicKey::FromPem(kCorpusKey, "corpus key").value()}, 1);
  return trust;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  aloft::ByteSpan input(data, size);
  for (bool verified : {false, true}) {
    aloft::MemorySource source(input);
    auto reader = aloft::pkg::PackageReader::Open(source, "fuzz", verified ? &Trust() : nullptr);
    if (!reader.ok()) continue;
    DiscardSink sink;
    (void)(*reader)->ReadPayloads(sink);
  }
  return 0;
}
