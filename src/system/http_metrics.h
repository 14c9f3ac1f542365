// Request counts and latencies by route, fed by the router's observer (http::Router::set_observer)
// and exposed in /metrics as herald_http_requests_total and herald_http_request_duration_seconds.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <tuple>

#include "herald/http.h"

namespace herald::detail {

// Thread-safe: record() from every HTTP worker, append() from the /metrics handler.
class HttpMetrics {
 public:
  // Upper bounds of the latency buckets, in seconds (+Inf is implied).
  static constexpr std::array<double, 14> kBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                      0.1,    0.25,  0.5,    1,     2.5,   5,     10};

  void record(const http::RouteObservation& observation);

  // Appends both families in the Prometheus text format; nothing before the first request.
  // Labels: method, route (the pattern, "unmatched" when none matched), status ("2xx" … "5xx").
  void append(std::string& out) const;

 private:
  struct Series {
    std::int64_t count = 0;
    std::array<std::int64_t, kBuckets.size()> buckets{};  // not cumulative; append() sums them
    double sum_seconds = 0;
  };
  using Key = std::tuple<std::string, std::string, int>;  // method, route, status class (2 for 2xx)

  mutable std::mutex mu_;
  std::map<Key, Series> series_;  // guarded by mu_; bounded by routes x methods x 5
};

}  // namespace herald::detail
