// Pieces of the Prometheus text exposition (format 0.0.4) shared by the files that write /metrics.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "herald/status.h"

namespace herald::detail {

// A label value with backslash, double quote and newline escaped.
std::string escape_label(std::string_view value);

// A number as Prometheus reads it, in the shortest exact-enough form ("5e-05", "0.25", "10").
std::string format_number(double value);

// herald_build_info{version="…",compiler="…",build_type="…"} 1: which build is running.
void append_build_info(std::string& out);

// What the process uses, from /proc/self (Linux).
struct ProcessStats {
  double cpu_seconds = 0;            // user + system CPU time
  std::int64_t resident_bytes = 0;   // resident set size
  std::int64_t virtual_bytes = 0;    // address space size
  std::int64_t open_fds = 0;         // open file descriptors
  std::int64_t max_fds = 0;          // RLIMIT_NOFILE's soft limit
  double start_time_seconds = 0;     // when the process started, in seconds since the Unix epoch
};
// unavailable when /proc cannot be read (not Linux, or /proc hidden).
Result<ProcessStats> read_process_stats();

// The process_* families of the Prometheus client libraries (process_cpu_seconds_total,
// process_resident_memory_bytes, process_open_fds, process_start_time_seconds, …).
void append_process_metrics(const ProcessStats& stats, std::string& out);

}  // namespace herald::detail
