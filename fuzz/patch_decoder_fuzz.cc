// libFuzzer target for the delta patch decoder (delta::Patcher): header, segment heads, the
// zstd / LZMA2 / stored stream pieces, operations reading the base, and the result's hash check.
//
// An input is a base image and a patch: a 4-byte little-endian base length, the base, the patch.
// The seed corpus (corpus/patch_decoder/) holds real patches of small edits with their bases.
// Each input is applied twice: with the base's hash checked up front (as devices do) and without,
// so that mutated bases still drive the operations. The patch is fed in chunks of varying size.
//
//   build/asan/fuzz/patch_decoder_fuzz -max_total_time=60 <copy of corpus/patch_decoder>
#include <cstddef>
#include <cstdint>

#include "core/io.h"
#include "delta/apply.h"

namespace {

class CountingSink final : public aloft::ByteSink {
 public:
  aloft::Status Write(aloft::ByteSpan data) override {
    bytes_ += data.size();
    return aloft::OkStatus();
  }
  uint64_t bytes_ = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 4) return 0;
  size_t base_len = data[0] | data[1] << 8 | data[2] << 16 | size_t{data[3]} << 24;
  if (base_len > size - 4) base_len = size - 4;
  aloft::ByteSpan base_bytes(data + 4, base_len);
  aloft::ByteSpan patch(data + 4 + base_len, size - 4 - base_len);
  const size_t chunk = 1 + size % 997;
  for (bool check_base : {true, false}) {
    aloft::delta::MemoryBase base(base_bytes);
    CountingSink out;
    aloft::delta::ApplyOptions options;
    options.max_window = 1 << 20;
    options.max_segment = 1 << 20;
    options.check_base = check_base;
    aloft::delta::Patcher patcher(base, out, options);
    aloft::Status s = aloft::OkStatus();
    for (size_t i = 0; i < patch.size() && s.ok(); i += chunk) {
      s = patcher.Write(patch.subspan(i, std::min(chunk, patch.size() - i)));
    }
    if (s.ok()) s = patcher.Finish();
    // A patch that passes must have produced exactly the target size its header announced.
    if (s.ok() && out.bytes_ != patcher.header()->target_size) __builtin_trap();
  }
  return 0;
}
