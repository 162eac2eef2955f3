#include "server/metrics.h"

#include <cstdio>

namespace aloft::server {

Metrics::Metrics() = default;

void AppendMetric(std::string& out, std::string_view name, std::string_view type,
                  std::string_view help, int64_t value) {
  out.append("# HELP ").append(name).append(" ").append(help).append("\n");
  out.append("# TYPE ").append(name).append(" ").append(type).append("\n");
  out.append(name).append(" ").append(std::to_string(value)).append("\n");
}

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
  AppendMetric(out, "aloft_active_downloads", "gauge", "Artifact downloads being sent.",
               active_downloads.load());
  AppendMetric(out, "aloft_download_bytes_total", "counter", "Artifact bytes sent.",
               static_cast<int64_t>(download_bytes.load()));
  AppendMetric(out, "aloft_device_check_ins_total", "counter", "Device check-ins handled.",
               static_cast<int64_t>(check_ins.load()));
  AppendMetric(out, "aloft_devices_seen", "gauge",
               "Distinct devices that checked in since this process started.",
               static_cast<int64_t>(seen_.size()));
  out += extra;
  return out;
}

}  // namespace aloft::server
