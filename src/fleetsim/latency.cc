#include "fleetsim/latency.h"

#include <algorithm>
#include <cmath>

namespace aloft::fleetsim {

namespace {
const double kStep = std::log(1.02);
}

size_t LatencyHistogram::Bucket(int64_t us) {
  if (us < 1) return 0;
  return static_cast<size_t>(std::log(static_cast<double>(us)) / kStep) + 1;
}

double LatencyHistogram::Upper(size_t bucket) {
  return bucket == 0 ? 1.0 : std::exp(static_cast<double>(bucket) * kStep);
}

void LatencyHistogram::Add(int64_t us) {
  const size_t b = Bucket(us);
  if (counts_.size() <= b) counts_.resize(b + 1, 0);
  ++counts_[b];
  ++count_;
}

void LatencyHistogram::Merge(const LatencyHistogram& other) {
  if (counts_.size() < other.counts_.size()) counts_.resize(other.counts_.size(), 0);
  for (size_t i = 0; i < other.counts_.size(); ++i) counts_[i] += other.counts_[i];
  count_ += other.count_;
}

double LatencyHistogram::PercentileMs(double p) const {
  if (count_ == 0) return 0;
  const uint64_t rank = std::max<uint64_t>(
      1, static_cast<uint64_t>(std::ceil(p / 100.0 * static_cast<double>(count_))));
  uint64_t seen = 0;
  for (size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= rank) return Upper(i) / 1000.0;
  }
  return Upper(counts_.size()) / 1000.0;
}

}  // namespace aloft::fleetsim
