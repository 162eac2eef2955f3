#include "delta/diff.h"

#include <divsufsort.h>

#include <algorithm>
#include <cstring>
#include <future>
#include <thread>
#include <vector>

#include "core/hash.h"
#include "delta/codec.h"

namespace aloft::delta {
namespace {

struct Op {
  uint64_t add = 0;    // bytes copied from the base, each plus a diff byte
  uint64_t extra = 0;  // new bytes
  int64_t seek = 0;    // base position change after the op
};

size_t CommonPrefix(const uint8_t* a, const uint8_t* b, size_t n) {
  size_t i = 0;
  while (i + 8 <= n) {
    uint64_t x, y;
    std::memcpy(&x, a + i, 8);
    std::memcpy(&y, b + i, 8);
    if (x != y) return i + (std::countr_zero(x ^ y) >> 3);
    i += 8;
  }
  while (i < n && a[i] == b[i]) ++i;
  return i;
}

// Finds the base suffix sharing the longest prefix with `t`: returns its length and position.
class Matcher {
 public:
  explicit Matcher(ByteSpan base) : base_(base), sa_(base.size()) {
    if (!base.empty()) {
      divsufsort(base.data(), sa_.data(), static_cast<saidx_t>(base.size()));
    }
  }

  size_t Longest(ByteSpan t, int64_t* pos) const {
    if (sa_.empty() || t.empty()) return 0;
    size_t lo = 0, hi = sa_.size() - 1;
    // Binary search keeping the prefix both bounds are known to share with `t`.
    size_t lo_lcp = Lcp(lo, t), hi_lcp = Lcp(hi, t);
    while (hi - lo >= 2) {
      size_t mid = lo + (hi - lo) / 2;
      size_t skip = std::min(lo_lcp, hi_lcp);
      size_t off = sa_[mid];
      size_t n = std::min(base_.size() - off, t.size());
      size_t l = skip + CommonPrefix(base_.data() + off + skip, t.data() + skip, n - skip);
      bool less = l < n ? base_[off + l] < t[l] : n < t.size();
      if (less) {
        lo = mid;
        lo_lcp = l;
      } else {
        hi = mid;
        hi_lcp = l;
      }
    }
    if (lo_lcp >= hi_lcp) {
      *pos = sa_[lo];
      return lo_lcp;
    }
    *pos = sa_[hi];
    return hi_lcp;
  }

 private:
  size_t Lcp(size_t i, ByteSpan t) const {
    size_t off = sa_[i];
    return CommonPrefix(base_.data() + off, t.data(), std::min(base_.size() - off, t.size()));
  }

  ByteSpan base_;
  std::vector<saidx_t> sa_;
};

// bsdiff's scan, in our terms: walk the target; at each position find the longest exact match in
// the base; take it when it beats continuing the current alignment by enough; between two taken
// matches, extend the previous forwards and the next backwards as approximate matches, and emit
// what neither covers as new bytes.
std::vector<Op> Scan(ByteSpan o, ByteSpan n, const Matcher& m) {
  std::vector<Op> ops;
  const int64_t on = static_cast<int64_t>(o.size()), nn = static_cast<int64_t>(n.size());
  int64_t scan = 0, len = 0, pos = 0, last_scan = 0, last_pos = 0, last_offset = 0;
  auto same = [&](int64_t op, int64_t np) { return op >= 0 && op < on && o[op] == n[np]; };
  while (scan < nn) {
    int64_t old_score = 0;
    int64_t scsc = scan += len;
    for (; scan < nn; ++scan) {
      len = static_cast<int64_t>(m.Longest(n.subspan(scan), &pos));
      for (; scsc < scan + len; ++scsc) {
        if (same(scsc + last_offset, scsc)) ++old_score;
      }
      if ((len == old_score && len != 0) || len > old_score + 8) break;
      if (same(scan + last_offset, scan)) --old_score;
    }
    if (len == old_score && scan != nn) continue;

    // Forward extension of the previous match: the longest prefix with > 50% agreement.
    int64_t s = 0, best_f = 0, len_f = 0;
    for (int64_t i = 0; last_scan + i < scan && last_pos + i < on;) {
      if (o[last_pos + i] == n[last_scan + i]) ++s;
      ++i;
      if (s * 2 - i > best_f * 2 - len_f) {
        best_f = s;
        len_f = i;
      }
    }
    // Backward extension of the new match.
    int64_t len_b = 0;
    if (scan < nn) {
      int64_t sb = 0, best_b = 0;
      for (int64_t i = 1; scan >= last_scan + i && pos >= i; ++i) {
        if (o[pos - i] == n[scan - i]) ++sb;
        if (sb * 2 - i > best_b * 2 - len_b) {
          best_b = sb;
          len_b = i;
        }
      }
    }
    // Where the two overlap, split at the point that keeps the most agreeing bytes.
    if (last_scan + len_f > scan - len_b) {
      int64_t overlap = (last_scan + len_f) - (scan - len_b);
      int64_t so = 0, best_s = 0, len_s = 0;
      for (int64_t i = 0; i < overlap; ++i) {
        if (n[last_scan + len_f - overlap + i] == o[last_pos + len_f - overlap + i]) ++so;
        if (n[scan - len_b + i] == o[pos - len_b + i]) --so;
        if (so > best_s) {
          best_s = so;
          len_s = i + 1;
        }
      }
      len_f += len_s - overlap;
      len_b -= len_s;
    }
    Op op;
    op.add = static_cast<uint64_t>(len_f);
    op.extra = static_cast<uint64_t>((scan - len_b) - (last_scan + len_f));
    op.seek = (pos - len_b) - (last_pos + len_f);
    if (op.add == 0 && op.extra == 0 && !ops.empty()) {
      ops.back().seek += op.seek;
    } else {
      ops.push_back(op);
    }
    last_scan = scan - len_b;
    last_pos = pos - len_b;
    last_offset = pos - scan;
  }
  // A trailing op that moves nothing would never be read by a decoder.
  if (!ops.empty() && ops.back().add == 0 && ops.back().extra == 0) ops.pop_back();
  return ops;
}

// The diff byte turning `old` into `target` given the carry from the byte before, and the carry
// to the next: see AddWithCarry in format.h.
uint8_t CarryDiff(uint8_t old, uint8_t target, int* carry) {
  uint8_t d = static_cast<uint8_t>(target - old - *carry);
  AddWithCarry(old, d, carry);
  return d;
}

// Large targets are scanned in one slice per core. Each slice starts at base position 0; the op
// before a slice boundary seeks there. The boundaries cost an operation each.
std::vector<Op> ParallelScan(ByteSpan o, ByteSpan n, const Matcher& m) {
  constexpr size_t kMinSlice = 4 << 20;
  const size_t cores = std::max(1u, std::thread::hardware_concurrency());
  const size_t slices = std::clamp<size_t>(n.size() / kMinSlice, 1, cores);
  if (slices == 1) return Scan(o, n, m);
  std::vector<std::future<std::vector<Op>>> jobs;
  for (size_t i = 0; i < slices; ++i) {
    size_t begin = n.size() * i / slices, end = n.size() * (i + 1) / slices;
    jobs.push_back(std::async(std::launch::async, [&o, &m, slice = n.subspan(begin, end - begin)] {
      return Scan(o, slice, m);
    }));
  }
  std::vector<Op> ops;
  for (auto& job : jobs) {
    std::vector<Op> part = job.get();
    if (!ops.empty()) {
      int64_t pos = 0;  // where the previous slices leave the base position
      for (const Op& op : ops) pos += static_cast<int64_t>(op.add) + op.seek;
      ops.back().seek -= pos;
    }
    ops.insert(ops.end(), part.begin(), part.end());
  }
  return ops;
}

struct Streams {
  Bytes s[kStreams];
  // Per segment boundary (target offset), where each stream is cut.
  std::vector<uint64_t> boundaries;
  std::vector<size_t> cuts[kStreams];
};

// Serializes the ops into the three streams and chooses segment boundaries: a boundary falls
// wherever the bytes that will not compress away (control bytes, non-zero differences, new bytes)
// since the last one reach `segment`.
Streams BuildStreams(ByteSpan o, ByteSpan n, const std::vector<Op>& ops, uint64_t segment) {
  Streams st;
  Bytes& ctrl = st.s[kControl];
  Bytes& diff = st.s[kDiff];
  Bytes& extra = st.s[kExtra];
  uint64_t out = 0, weight = 0;
  int64_t base_pos = 0;
  auto cut = [&](uint64_t at) {
    st.boundaries.push_back(at);
    st.cuts[kControl].push_back(ctrl.size());
    st.cuts[kDiff].push_back(diff.size());
    st.cuts[kExtra].push_back(extra.size());
    weight = 0;
  };
  for (const Op& op : ops) {
    size_t ctrl_before = ctrl.size();
    PutVarint(ctrl, op.add);
    PutVarint(ctrl, op.extra);
    PutVarint(ctrl, ZigZag(op.seek));
    weight += ctrl.size() - ctrl_before;
    int carry = 0;
    for (uint64_t i = 0; i < op.add; ++i) {
      uint8_t d = CarryDiff(o[base_pos + i], n[out], &carry);
      diff.push_back(d);
      ++out;
      if (d != 0 && ++weight >= segment) cut(out);
    }
    for (uint64_t i = 0; i < op.extra; ++i) {
      extra.push_back(n[out]);
      ++out;
      if (++weight >= segment) cut(out);
    }
    base_pos += static_cast<int64_t>(op.add) + op.seek;
  }
  if (st.boundaries.empty() ? out > 0 : st.boundaries.back() != out) cut(out);
  return st;
}

}  // namespace

Result<Bytes> Diff(ByteSpan base, ByteSpan target, const DiffOptions& options, DiffStats* stats) {
  constexpr uint64_t kMaxImage = (uint64_t{1} << 31) - 1;
  if (base.size() > kMaxImage || target.size() > kMaxImage) {
    return Error(Code::kOutOfRange, "images of 2 GiB or more are not supported");
  }
  Matcher matcher(base);
  std::vector<Op> ops = ParallelScan(base, target, matcher);
  uint64_t segment =
      options.segment ? options.segment : std::min<uint64_t>(kDefaultSegment, 4 * options.window);
  Streams st = BuildStreams(base, target, ops, segment);
  std::future<Result<EncodedStream>> jobs[kStreams];
  for (int s = 0; s < kStreams; ++s) {
    jobs[s] = std::async(std::launch::async,
                         [&, s] { return EncodeSmallest(st.s[s], st.cuts[s], options.window); });
  }
  EncodedStream enc[kStreams];
  for (int s = 0; s < kStreams; ++s) {
    ALOFT_ASSIGN_OR_RETURN(enc[s], jobs[s].get());
  }

  Header h;
  h.base_size = base.size();
  h.target_size = target.size();
  Bytes bh = Sha256(base), th = Sha256(target);
  std::copy(bh.begin(), bh.end(), h.base_sha256.begin());
  std::copy(th.begin(), th.end(), h.target_sha256.begin());
  for (int s = 0; s < kStreams; ++s) h.streams[s] = enc[s].info;
  h.segments = static_cast<uint32_t>(st.boundaries.size());

  Bytes body;
  uint64_t prev_boundary = 0;
  size_t prev_end[kStreams] = {};
  uint64_t max_segment = 0;
  for (size_t i = 0; i < st.boundaries.size(); ++i) {
    PutVarint(body, st.boundaries[i] - prev_boundary);
    prev_boundary = st.boundaries[i];
    uint64_t sum = 0;
    for (int s = 0; s < kStreams; ++s) {
      PutVarint(body, enc[s].piece_ends[i] - prev_end[s]);
      sum += enc[s].piece_ends[i] - prev_end[s];
    }
    for (int s = 0; s < kStreams; ++s) {
      body.insert(body.end(), enc[s].data.begin() + prev_end[s],
                  enc[s].data.begin() + enc[s].piece_ends[i]);
      prev_end[s] = enc[s].piece_ends[i];
    }
    max_segment = std::max(max_segment, sum);
  }
  if (max_segment > UINT32_MAX) return Error(Code::kOutOfRange, "a patch segment exceeds 4 GiB");
  h.max_segment = static_cast<uint32_t>(max_segment);

  Bytes patch = EncodeHeader(h);
  patch.insert(patch.end(), body.begin(), body.end());
  if (stats) {
    stats->ops = ops.size();
    stats->matched = 0;
    for (const Op& op : ops) stats->matched += op.add;
    for (int s = 0; s < kStreams; ++s) {
      stats->stream_raw[s] = st.s[s].size();
      stats->stream_packed[s] = enc[s].data.size();
      stats->codec[s] = enc[s].info.codec;
    }
    stats->segments = h.segments;
    stats->max_segment = h.max_segment;
  }
  return patch;
}

}  // namespace aloft::delta
