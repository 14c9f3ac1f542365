#include "system/http_metrics.h"

#include <algorithm>

#include "system/prometheus_text.h"

namespace herald::detail {

void HttpMetrics::record(const http::RouteObservation& o) {
  const double seconds = std::chrono::duration<double>(o.duration).count();
  const auto bucket = static_cast<std::size_t>(
      std::lower_bound(kBuckets.begin(), kBuckets.end(), seconds) - kBuckets.begin());
  const int status_class = std::clamp(o.status / 100, 1, 5);
  std::lock_guard lock(mu_);
  // Keyed by the pattern, never the path: /api/users/{id} is one series however many users exist.
  auto& s = series_[Key{std::string(http::to_string(o.method)), o.pattern.empty() ? "unmatched" : std::string(o.pattern),
                        status_class}];
  ++s.count;
  if (bucket < kBuckets.size()) ++s.buckets[bucket];
  s.sum_seconds += seconds;
}

void HttpMetrics::append(std::string& out) const {
  std::lock_guard lock(mu_);
  if (series_.empty()) return;
  auto labels = [](const Key& k) {
    return "method=\"" + std::get<0>(k) + "\",route=\"" + escape_label(std::get<1>(k)) + "\",status=\"" +
           std::to_string(std::get<2>(k)) + "xx\"";
  };
  out += "# HELP herald_http_requests_total HTTP requests answered, by route pattern and status class.\n";
  out += "# TYPE herald_http_requests_total counter\n";
  for (const auto& [k, s] : series_) out += "herald_http_requests_total{" + labels(k) + "} " + std::to_string(s.count) + "\n";

  out += "# HELP herald_http_request_duration_seconds Time to route and handle a request.\n";
  out += "# TYPE herald_http_request_duration_seconds histogram\n";
  for (const auto& [k, s] : series_) {
    const std::string l = labels(k);
    std::int64_t cumulative = 0;
    for (std::size_t i = 0; i < kBuckets.size(); ++i) {
      cumulative += s.buckets[i];
      out += "herald_http_request_duration_seconds_bucket{" + l + ",le=\"" + format_number(kBuckets[i]) + "\"} " +
             std::to_string(cumulative) + "\n";
    }
    out += "herald_http_request_duration_seconds_bucket{" + l + ",le=\"+Inf\"} " + std::to_string(s.count) + "\n";
    out += "herald_http_request_duration_seconds_sum{" + l + "} " + format_number(s.sum_seconds) + "\n";
    out += "herald_http_request_duration_seconds_count{" + l + "} " + std::to_string(s.count) + "\n";
  }
}

}  // namespace herald::detail
