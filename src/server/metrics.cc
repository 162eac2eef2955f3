#include "server/metrics.h"

#include <cstdio>

namespace aloft::server {

Metrics::Metrics() = default;

int Metrics::AddRoute(std::string route, std::string method) {
  std::lock_guard lock(mu_);
  routes_.push_back({std::move(route), std::move(method), {}, {}});
  return static_cast<int>(routes_.size()) - 1;
}

void Metrics::RecordRequest(int route, int status, double seconds) {
  std::lock_guard lock(mu_);
  RouteStats& r = routes_.at(route < 0 || static_cast<size_t>(route) >= routes_.size() ? 0 : route);
  ++r.by_status[status];
  Histogram& h = r.latency;
  for (size_t i = 0; i < std::size(kBuckets); ++i)
    if (seconds <= kBuckets[i]) ++h.buckets[i];
  ++h.count;
  h.sum += seconds;
}

void Metrics::DeviceSeen(int64_t device_id) {
  CheckIn();
  std::lock_guard lock(mu_);
  seen_.insert(device_id);
}

std::string Metrics::Render(const std::string& extra) const {
  std::string out;
  char buf[64];
  std::lock_guard lock(mu_);
  out += "# HELP aloft_http_requests_total HTTP requests by route, method and status.\n";
  out += "# TYPE aloft_http_requests_total counter\n";
  for (const auto& r : routes_) {
    for (const auto& [status, n] : r.by_status) {
      out += "aloft_http_requests_total{route=\"" + r.route + "\",method=\"" + r.method +
             "\",status=\"" + std::to_string(status) + "\"} " + std::to_string(n) + "\n";
    }
  }
  out += "# HELP aloft_http_request_duration_seconds Time to handle a request (body excluded).\n";
  out += "# TYPE aloft_http_request_duration_seconds histogram\n";
  for (const auto& r : routes_) {
    const Histogram& h = r.latency;
    if (h.count == 0) continue;
    const std::string& route = r.route;
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
