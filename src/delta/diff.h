// Making a delta patch: base + target -> patch (docs/delta-format.md).
//
// Matching is done on a suffix array of the base (libdivsufsort). Each region of the target is
// covered by an approximate match against the base (bsdiff's family: a match is extended while at
// least half its bytes agree, the rest go to the diff stream as byte differences, which compress
// to almost nothing when a pointer moved by a constant) or by new bytes. Where a match starts and
// ends is chosen by an estimate of what each choice costs once entropy-coded, not by length.
//
//   ALOFT_ASSIGN_OR_RETURN(Bytes patch, delta::Diff(old_image, new_image, {}));
#pragma once

#include <cstdint>

#include "core/encoding.h"
#include "core/error.h"
#include "delta/format.h"

namespace aloft::delta {

inline constexpr uint64_t kDefaultWindow = 256 << 10;
// The estimated compressed bytes between two segment boundaries: bounds what a decoder buffers.
inline constexpr uint64_t kDefaultSegment = 128 << 10;

struct DiffOptions {
  // The largest window / dictionary a stream decoder may need (a power of two, 4 KiB..128 MiB).
  uint64_t window = kDefaultWindow;
  // 0: the smaller of kDefaultSegment and 4 x window, so that a patch made for a small window
  // also needs a small segment buffer.
  uint64_t segment = 0;
};

struct DiffStats {
  uint64_t ops = 0;
  uint64_t matched = 0;  // target bytes covered by matches
  uint64_t stream_raw[kStreams] = {};
  uint64_t stream_packed[kStreams] = {};
  Codec codec[kStreams] = {};
  uint32_t segments = 0;
  uint32_t max_segment = 0;
};

// Errors: kOutOfRange for images of 2 GiB or more.
Result<Bytes> Diff(ByteSpan base, ByteSpan target, const DiffOptions& options,
                   DiffStats* stats = nullptr);

}  // namespace aloft::delta
