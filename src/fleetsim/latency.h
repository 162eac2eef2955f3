// Latencies in microseconds, kept as counts in buckets 2 % wide (a few KiB whatever the count),
// for percentiles of millions of requests.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace aloft::fleetsim {

class LatencyHistogram {
 public:
  void Add(int64_t us);
  void Merge(const LatencyHistogram& other);
  uint64_t count() const { return count_; }
  // The `p`th percentile (0-100) in milliseconds; 0 with no samples.
  double PercentileMs(double p) const;

 private:
  static size_t Bucket(int64_t us);
  static double Upper(size_t bucket);  // the bucket's upper bound, us
  std::vector<uint64_t> counts_;
  uint64_t count_ = 0;
};

}  // namespace aloft::fleetsim
