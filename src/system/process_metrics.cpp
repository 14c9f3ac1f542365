// process_* metrics from /proc/self, with the names and meanings of the Prometheus client
// libraries, so the usual dashboards and alerts work unchanged.
#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "system/prometheus_text.h"

namespace herald::detail {

namespace {

void gauge(std::string& out, std::string_view name, std::string_view type, std::string_view help, const std::string& value) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
  out += name;
  out += ' ';
  out += value;
  out += '\n';
}

// Seconds since the epoch at which the system booted (/proc/stat "btime").
Result<std::int64_t> boot_time() {
  std::ifstream f("/proc/stat");
  std::string key;
  while (f >> key) {
    if (key == "btime") {
      std::int64_t t = 0;
      if (f >> t) return t;
      break;
    }
    f.ignore(std::numeric_limits<std::streamsize>::max(), '\n');
  }
  return Status::unavailable("/proc/stat has no btime");
}

}  // namespace

Result<ProcessStats> read_process_stats() {
  ProcessStats st;
  const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  const auto page = static_cast<std::int64_t>(::sysconf(_SC_PAGESIZE));

  // /proc/self/stat: "pid (comm) state …"; comm may hold spaces and parentheses, so the fields are
  // counted from the last ')'. utime, stime and starttime are fields 14, 15 and 22.
  std::string stat;
  {
    std::ifstream f("/proc/self/stat");
    if (!std::getline(f, stat)) return Status::unavailable("cannot read /proc/self/stat");
  }
  const auto close = stat.rfind(')');
  if (close == std::string::npos) return Status::unavailable("malformed /proc/self/stat");
  std::istringstream rest(stat.substr(close + 1));
  std::vector<std::string> fields;  // fields[0] is field 3 (state)
  for (std::string f; rest >> f;) fields.push_back(std::move(f));
  if (fields.size() < 20) return Status::unavailable("short /proc/self/stat");
  double utime = 0;
  double stime = 0;
  double start = 0;
  try {
    utime = std::stod(fields[14 - 3]);
    stime = std::stod(fields[15 - 3]);
    start = std::stod(fields[22 - 3]);
  } catch (const std::exception&) {
    return Status::unavailable("malformed /proc/self/stat");
  }
  st.cpu_seconds = (utime + stime) / ticks;
  auto btime = boot_time();
  if (!btime) return btime.status();
  st.start_time_seconds = static_cast<double>(*btime) + start / ticks;

  {
    std::ifstream f("/proc/self/statm");
    std::int64_t size = 0;
    std::int64_t resident = 0;
    if (!(f >> size >> resident)) return Status::unavailable("cannot read /proc/self/statm");
    st.virtual_bytes = size * page;
    st.resident_bytes = resident * page;
  }

  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return Status::unavailable("cannot list /proc/self/fd");
  std::int64_t fds = 0;
  while (const dirent* e = ::readdir(dir)) {
    if (e->d_name[0] != '.') ++fds;
  }
  ::closedir(dir);
  st.open_fds = fds - 1;  // the directory stream itself was one of them

  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) == 0) {
    st.max_fds = lim.rlim_cur == RLIM_INFINITY ? -1 : static_cast<std::int64_t>(lim.rlim_cur);
  }
  return st;
}

void append_process_metrics(const ProcessStats& s, std::string& out) {
  gauge(out, "process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.",
        format_number(s.cpu_seconds));
  gauge(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", std::to_string(s.resident_bytes));
  gauge(out, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", std::to_string(s.virtual_bytes));
  gauge(out, "process_open_fds", "gauge", "Number of open file descriptors.", std::to_string(s.open_fds));
  if (s.max_fds > 0) {
    gauge(out, "process_max_fds", "gauge", "Maximum number of open file descriptors.", std::to_string(s.max_fds));
  }
  gauge(out, "process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.",
        format_number(s.start_time_seconds));
}

}  // namespace herald::detail
