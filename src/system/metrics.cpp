// Prometheus text exposition format 0.0.4 of the bus, its handlers and the store.
// Counters end in _total, the latency histogram is in seconds with cumulative buckets and +Inf,
// so `promtool check metrics` accepts the output (tests/system/metrics_test.cpp runs it).
#include <algorithm>
#include <cstdio>
#include <sstream>

#include "herald/system.h"
#include "herald/version.h"
#include "system/prometheus_text.h"

namespace herald {

namespace detail {

// Label values escape backslash, double quote and newline (exposition format rules).
std::string escape_label(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string format_number(double value) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.15g", value);
  return buf;
}

void append_build_info(std::string& out) {
  const auto b = build_info();
  out += "# HELP herald_build_info Which Herald build is running (always 1).\n";
  out += "# TYPE herald_build_info gauge\n";
  out += "herald_build_info{version=\"" + escape_label(b.version) + "\",compiler=\"" + escape_label(b.compiler) +
         "\",build_type=\"" + escape_label(b.build_type) + "\"} 1\n";
}

}  // namespace detail

namespace {

using detail::escape_label;

std::string seconds(std::int64_t us) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", static_cast<double>(us) / 1e6);
  return buf;
}

class Writer {
 public:
  void family(std::string_view name, std::string_view type, std::string_view help) {
    out_ << "# HELP " << name << ' ' << help << '\n' << "# TYPE " << name << ' ' << type << '\n';
  }
  void sample(std::string_view name, std::string_view labels, std::int64_t value) {
    out_ << name;
    if (!labels.empty()) out_ << '{' << labels << '}';
    out_ << ' ' << value << '\n';
  }
  void sample(std::string_view name, std::string_view labels, const std::string& value) {
    out_ << name;
    if (!labels.empty()) out_ << '{' << labels << '}';
    out_ << ' ' << value << '\n';
  }
  std::string str() const { return out_.str(); }

 private:
  std::ostringstream out_;
};

std::string handler_label(const HandlerStatus& h) { return "handler=\"" + escape_label(h.name) + "\""; }

}  // namespace

std::string prometheus_metrics(const BusStats& bus, const std::vector<HandlerStatus>& handlers,
                               const StoreStats* store_stats) {
  Writer w;
  w.family("herald_bus_published_events_total", "counter", "Events appended through the bus.");
  w.sample("herald_bus_published_events_total", "", bus.published_events);
  w.family("herald_bus_publish_calls_total", "counter", "Calls of EventBus::publish.");
  w.sample("herald_bus_publish_calls_total", "", bus.publish_calls);
  w.family("herald_bus_publish_failures_total", "counter", "Calls of EventBus::publish that failed.");
  w.sample("herald_bus_publish_failures_total", "", bus.publish_failures);
  w.family("herald_bus_live_deliveries_total", "counter", "Calls made to live subscription callbacks.");
  w.sample("herald_bus_live_deliveries_total", "", bus.live_deliveries);

  struct CounterField {
    const char* name;
    const char* help;
    std::int64_t HandlerStatus::*field;
  };
  static const CounterField kCounters[] = {
      {"herald_handler_processed_total", "Events a handler handled successfully.", &HandlerStatus::processed},
      {"herald_handler_failed_total", "Handler calls that returned an error (each attempt counts).",
       &HandlerStatus::failed},
      {"herald_handler_retried_total", "Retries scheduled by a handler's retry policy.", &HandlerStatus::retried},
      {"herald_handler_dead_lettered_total", "Events a handler sent to the dead letters.",
       &HandlerStatus::dead_lettered},
  };
  static const CounterField kGauges[] = {
      {"herald_handler_lag_events", "Committed events the handler has not reached yet.", &HandlerStatus::lag},
      {"herald_handler_checkpoint_position", "Next global position the handler will handle.",
       &HandlerStatus::checkpoint},
      {"herald_handler_parked_events", "Events parked behind a dead letter of their stream.",
       &HandlerStatus::parked},
  };
  if (!handlers.empty()) {
    for (const auto& c : kCounters) {
      w.family(c.name, "counter", c.help);
      for (const auto& h : handlers) w.sample(c.name, handler_label(h), h.*(c.field));
    }
    for (const auto& g : kGauges) {
      w.family(g.name, "gauge", g.help);
      for (const auto& h : handlers) w.sample(g.name, handler_label(h), h.*(g.field));
    }
    w.family("herald_handler_lanes", "gauge", "Parallel lanes of a handler.");
    for (const auto& h : handlers) w.sample("herald_handler_lanes", handler_label(h), std::int64_t{h.lanes});

    // One-hot over every state so that a dashboard can graph state changes.
    static const HandlerState kStates[] = {HandlerState::running, HandlerState::catching_up, HandlerState::retrying,
                                           HandlerState::parked,  HandlerState::stopped,     HandlerState::failed};
    w.family("herald_handler_state", "gauge", "1 for the handler's current state, 0 for the others.");
    for (const auto& h : handlers) {
      for (auto s : kStates) {
        w.sample("herald_handler_state", handler_label(h) + ",state=\"" + std::string(to_string(s)) + "\"",
                 std::int64_t{h.state == s ? 1 : 0});
      }
    }

    w.family("herald_handler_latency_seconds", "histogram", "Duration of handler calls.");
    for (const auto& h : handlers) {
      std::int64_t cumulative = 0;
      const auto label = handler_label(h);
      for (std::size_t i = 0; i + 1 < LatencyHistogram::kBuckets; ++i) {
        cumulative += h.latency.counts[i];
        w.sample("herald_handler_latency_seconds_bucket",
                 label + ",le=\"" + seconds(LatencyHistogram::kBucketUpperUs[i]) + "\"", cumulative);
      }
      cumulative += h.latency.counts[LatencyHistogram::kBuckets - 1];
      // +Inf must equal _count; the bus counts both, take the larger so the invariant holds even if
      // a sample landed between the two reads.
      std::int64_t total = std::max(cumulative, h.latency.count);
      w.sample("herald_handler_latency_seconds_bucket", label + ",le=\"+Inf\"", total);
      w.sample("herald_handler_latency_seconds_sum", label, seconds(h.latency.sum_us));
      w.sample("herald_handler_latency_seconds_count", label, total);
    }
  }

  w.family("herald_store_up", "gauge", "1 when the store answered the stats query.");
  w.sample("herald_store_up", "", std::int64_t{store_stats != nullptr ? 1 : 0});
  if (store_stats != nullptr) {
    w.family("herald_store_events", "gauge", "Events in the store.");
    w.sample("herald_store_events", "", store_stats->total_events);
    w.family("herald_store_streams", "gauge", "Streams in the store.");
    w.sample("herald_store_streams", "", store_stats->stream_count);
    w.family("herald_store_size_bytes", "gauge", "Bytes the store uses on disk (0 for memory).");
    w.sample("herald_store_size_bytes", "", store_stats->bytes_on_disk);
    w.family("herald_store_wal_bytes", "gauge", "Size of the SQLite write-ahead log (0 for other backends).");
    w.sample("herald_store_wal_bytes", "", store_stats->wal_bytes);
    w.family("herald_store_last_position", "gauge", "Global position of the last event (-1 when empty).");
    w.sample("herald_store_last_position", "", store_stats->last_position);
    if (!store_stats->events_by_type.empty()) {
      w.family("herald_store_events_by_type", "gauge", "Events in the store by event type.");
      for (const auto& [type, n] : store_stats->events_by_type) {
        w.sample("herald_store_events_by_type", "type=\"" + escape_label(type) + "\"", n);
      }
    }
  }
  return w.str();
}

}  // namespace herald
