// Prometheus text-format metrics (exposition format 0.0.4): counters by route and status, latency
// histograms by route, gauges. Thread-safe; recording takes one short lock.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace aloft::server {

// Appends one Prometheus sample with its HELP and TYPE lines.
void AppendMetric(std::string& out, std::string_view name, std::string_view type,
                  std::string_view help, int64_t value);

class Metrics {
 public:
  Metrics();
  // Registers a route (pattern and method) before serving; returns its index for RecordRequest.
  // Index 0 is "unmatched".
  int AddRoute(std::string route, std::string method);
  void RecordRequest(int route, int status, double seconds);
  // A check-in; DeviceSeen also counts the device among those seen (call it once per device or
  // more: the set keeps each once).
  void CheckIn() { check_ins.fetch_add(1, std::memory_order_relaxed); }
  void DeviceSeen(int64_t device_id);

  std::atomic<int64_t> active_downloads{0};
  std::atomic<uint64_t> download_bytes{0};
  std::atomic<uint64_t> check_ins{0};

  // Renders everything; `extra` is appended (server counters, store figures).
  std::string Render(const std::string& extra) const;

 private:
  static constexpr double kBuckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                        0.05,   0.1,   0.25,   0.5,   1,    2.5};
  struct Histogram {
    uint64_t buckets[std::size(kBuckets)] = {};
    uint64_t count = 0;
    double sum = 0;
  };
  struct RouteStats {
    std::string route, method;
    std::map<int, uint64_t> by_status;
    Histogram latency;
  };
  mutable std::mutex mu_;
  std::vector<RouteStats> routes_ = {{"unmatched", "any", {}, {}}};
  std::unordered_set<int64_t> seen_;
};

}  // namespace aloft::server
