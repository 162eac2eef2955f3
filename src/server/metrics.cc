#include "server/metrics.h"

#include <cstdio>

namespace aloft::server {

void Metrics::RecordRequest(const std::string& route, const std::string& method, int status,
                            double seconds) {
  std::lock_guard lock(mu_);
  ++requests_[{route, method, status}];
  Histogram& h = latency_[route];
  for (size_t i = 0; i < std::size(kBuckets); ++i)
    if (seconds <= kBuckets[i]) ++h.buckets[i];
  ++h.count;
  h.sum += seconds;
}

void Metrics::DeviceSeen(int64_t device_id) {
  check_ins.fetch_add(1);
  std::lock_guard lock(mu_);
  seen_.insert(device_id);
}

std::string Metrics::Render(const std::string& extra) const {
  std::string out;
  char buf[64];
  std::lock_guard lock(mu_);
  out += "# HELP aloft_http_requests_total HTTP requests by route, method and status.\n";
  out += "# TYPE aloft_http_requests_total counter\n";
  for (const auto& [key, n] : requests_) {
    const auto& [route, method, status] = key;
    out += "aloft_http_requests_total{route=\"" + route + "\",method=\"" + method + "\",status=\"" +
           std::to_string(status) + "\"} " + std::to_string(n) + "\n";
  }
  out += "# HELP aloft_http_request_duration_seconds Time to handle a request (body excluded).\n";
  out += "# TYPE aloft_http_request_duration_seconds histogram\n";
  for (const auto& [route, h] : latency_) {
    for (size_t i = 0; i < std::size(kBuckets); ++i) {
      std::snprintf(buf, sizeof buf, "%g", kBuckets[i]);
      out += "aloft_http_request_duration_seconds_bucket{route=\"" + route + "\",le=\"" + buf +
             "\"} " + std::to_string(h.buckets[i]) + "\n";
    }
    out += "aloft_http_request_duration_seconds_bucket{route=\"" + route + "\",le=\"+Inf\"} " +
           std::to_string(h.count) + "\n";
    std::snprintf(buf, sizeof buf, "%.6f", h.sum);
    out += "aloft_http_request_duration_seconds_sum{route=\"" + route + "\"} " + buf + "\n";
    out += "aloft_http_request_duration_seconds_count{route=\"" + route + "\"} " +
           std::to_string(h.count) + "\n";
  }
  out += "# HELP aloft_active_downloads Artifact downloads being sent.\n";
  out += "# TYPE aloft_active_downloads gauge\n";
  out += "aloft_active_downloads " + std::to_string(active_downloads.load()) + "\n";
  out += "# HELP aloft_download_bytes_total Artifact bytes sent.\n";
  out += "# TYPE aloft_download_bytes_total counter\n";
  out += "aloft_download_bytes_total " + std::to_string(download_bytes.load()) + "\n";
  out += "# HELP aloft_device_check_ins_total Device check-ins handled.\n";
  out += "# TYPE aloft_device_check_ins_total counter\n";
  out += "aloft_device_check_ins_total " + std::to_string(check_ins.load()) + "\n";
  out += "# HELP aloft_devices_seen Distinct devices that checked in since this process started.\n";
  out += "# TYPE aloft_devices_seen gauge\n";
  out += "aloft_devices_seen " + std::to_string(seen_.size()) + "\n";
  out += extra;
  return out;
}

}  // namespace aloft::server
