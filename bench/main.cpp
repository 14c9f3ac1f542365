// herald_bench — throughput and latency of the Herald store and bus, next to baselines measured
// in the same run (see bench/README.md).
//
//   herald_bench                                   every scenario on a sqlite store in $TMPDIR
//   herald_bench --store memory: --json            one JSON object per scenario per line
//   herald_bench --scenario append_1x1,read_all --store postgres://localhost/herald
//
// Exit status: 0 when every scenario ran (or was skipped), 1 when one failed, 2 for bad flags.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <sstream>

#include "bench.h"
#include "herald/version.h"

namespace herald::bench {

#ifndef HERALD_BENCH_WITH_BUS
// The bus scenarios need herald_bus (src/bus); without it they report themselves as skipped so
// that `--scenario all` still lists them.
void register_bus_scenarios(Registry& r) {
  for (const char* name : {"dispatch_memory", "e2e_latency_sqlite"}) {
    r.add({name, "(needs herald_bus, which this build does not have)", [name](const Options&) {
             Json j;
             j["scenario"] = name;
             j["skipped"] = "herald_bus not built";
             return Result<Json>(std::move(j));
           }});
  }
}
#endif

#ifndef HERALD_BENCH_WITH_JETSTREAM
// The JetStream scenarios need herald_jetstream (libnats); without it they report themselves as
// skipped.
void register_jetstream_scenarios(Registry& r) {
  for (const char* name : {"naive_jetstream_async_publish", "relay_jetstream"}) {
    r.add({name, "(needs herald_jetstream, which this build does not have)", [name](const Options&) {
             Json j;
             j["scenario"] = name;
             j["skipped"] = "herald_jetstream not built";
             return Result<Json>(std::move(j));
           }});
  }
}
#endif

#ifndef HERALD_BENCH_WITH_HTTP
// The HTTP scenarios drive the shop's users module (herald_shop_modules); a build without apps/
// lists them as skipped.
void register_http_scenarios(Registry& r) {
  for (const char* name : {"http_health", "http_health_1conn", "http_register", "http_health_under_slowloris",
                           "http_signin", "http_cart_authenticated"}) {
    r.add({name, "(needs herald_shop_modules, which this build does not have)", [name](const Options&) {
             Json j;
             j["scenario"] = name;
             j["skipped"] = "herald_shop_modules not built";
             return Result<Json>(std::move(j));
           }});
  }
}
#endif

namespace {

std::vector<std::string> split_names(const std::string& list) {
  std::vector<std::string> out;
  std::stringstream ss(list);
  std::string item;
  while (std::getline(ss, item, ',')) {
    auto b = item.find_first_not_of(" \t");
    auto e = item.find_last_not_of(" \t");
    if (b != std::string::npos) out.push_back(item.substr(b, e - b + 1));
  }
  return out;
}

std::string cell(const Json& j, const char* key) {
  if (!j.contains(key)) return "-";
  const Json& v = j[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_float()) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.1f", v.get<double>());
    return buf;
  }
  return v.dump();
}

void print_table_header() {
  std::printf("%-20s %-8s %10s %8s %12s %10s %10s  %s\n", "scenario", "store", "events", "seconds",
              "events/s", "p50_us", "p99_us", "details");
}

void print_table_row(const Json& j) {
  static const char* const kColumns[] = {"scenario", "store",  "events", "seconds",
                                         "events_per_s", "p50_us", "p99_us"};
  std::string details;
  for (const auto& [k, v] : j.items()) {
    bool column = false;
    for (const char* c : kColumns) column = column || k == c;
    if (column) continue;
    if (!details.empty()) details += ' ';
    details += k + "=" + (v.is_string() ? v.get<std::string>() : v.dump());
  }
  std::printf("%-20s %-8s %10s %8s %12s %10s %10s  %s\n", cell(j, "scenario").c_str(),
              cell(j, "store").c_str(), cell(j, "events").c_str(), cell(j, "seconds").c_str(),
              cell(j, "events_per_s").c_str(), cell(j, "p50_us").c_str(), cell(j, "p99_us").c_str(),
              details.c_str());
  std::fflush(stdout);
}

// User + system CPU time of the whole process so far.
double cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  auto secs = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
  return secs(u.ru_utime) + secs(u.ru_stime);
}

int run(int argc, char** argv) {
  Registry registry;
  register_baseline_scenarios(registry);
  register_append_scenarios(registry);
  register_read_scenarios(registry);
  register_dispatch_baseline(registry);
  register_bus_scenarios(registry);
  register_http_scenarios(registry);
  register_sustained_scenarios(registry);
  register_jetstream_scenarios(registry);

  Options opt;
  std::string scenarios = "all";
  bool json = false;
  bool list = false;
  CLI::App app{"herald_bench: throughput and latency of the Herald store and bus"};
  const auto build = build_info();
  app.set_version_flag("--version", "herald_bench " + std::string(build.version) + " (" + std::string(build.compiler) +
                                        ", " + std::string(build.build_type) + ")");
  app.add_option("--scenario", scenarios, "scenario name, comma-separated names, or all")
      ->capture_default_str();
  app.add_option("--store", opt.store_url,
                 "store URL: memory:, sqlite:///dir/events.db (each scenario uses a fresh "
                 "directory under dir; default $TMPDIR or /tmp), postgres://… (each scenario "
                 "uses a fresh database)");
  app.add_flag("--json", json, "print one JSON object per scenario per line, nothing else");
  app.add_flag("--list", list, "list the scenarios and exit");
  app.add_option("--events", opt.events,
                 "event budget: cap of time-bound scenarios, count of dispatch ones (0: default)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--seconds", opt.seconds, "duration of time-bound scenarios")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--prefill", opt.prefill, "read_all: events written before reading")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--page", opt.page, "read_all: events per read_all call")
      ->check(CLI::Range(1, 10'000))
      ->capture_default_str();
  app.add_option("--streams", opt.streams, "read_stream: number of 100-event streams")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--rate", opt.rate, "e2e_latency_sqlite: events published per second")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--sustained-seconds", opt.sustained_seconds, "sustained_append: how long the load lasts")
      ->check(CLI::PositiveNumber);
  app.add_option("--nats-url", opt.nats_url,
                 "nats-server for relay_jetstream and naive_jetstream_async_publish (skipped without; "
                 "default $HERALD_BENCH_NATS_URL)");
  app.add_option("--wal-limit-bytes", opt.wal_limit_bytes, "sustained_append: the SQLite WAL limit (default 64 MiB)");
  if (const char* nats = std::getenv("HERALD_BENCH_NATS_URL"); nats != nullptr) opt.nats_url = nats;
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }

  if (list) {
    for (const auto& s : registry.all()) std::printf("%-20s %s\n", s.name.c_str(), s.description.c_str());
    return 0;
  }

  if (opt.store_url.empty()) {
    const char* t = std::getenv("TMPDIR");
    std::string base = (t != nullptr && *t != '\0') ? t : "/tmp";
    opt.store_url = "sqlite://" + base + "/events.db";
  }
  auto kind = store_kind_of(opt.store_url);
  if (!kind) {
    std::fprintf(stderr, "herald_bench: %s\n", kind.status().to_string().c_str());
    return 2;
  }
  opt.kind = *kind;

  std::vector<const Scenario*> selected;
  for (const auto& name : split_names(scenarios)) {
    if (name == "all") {
      for (const auto& s : registry.all()) selected.push_back(&s);
      continue;
    }
    const Scenario* s = registry.find(name);
    if (s == nullptr) {
      std::fprintf(stderr, "herald_bench: unknown scenario '%s' (see --list)\n", name.c_str());
      return 2;
    }
    selected.push_back(s);
  }
  if (selected.empty()) {
    std::fprintf(stderr, "herald_bench: no scenario selected\n");
    return 2;
  }

  if (!json) print_table_header();
  int failures = 0;
  for (const Scenario* s : selected) {
    if (!json) std::fprintf(stderr, "running %s…\n", s->name.c_str());
    Result<Json> r = Status::internal("not run");
    const double cpu0 = cpu_seconds();
    try {
      r = s->run(opt);
    } catch (const std::exception& e) {
      r = Status::internal(std::string("exception: ") + e.what());
    }
    Json line;
    if (r) {
      line = std::move(*r);
    } else {
      ++failures;
      line["scenario"] = s->name;
      line["store"] = to_string(opt.kind);
      line["error"] = r.status().to_string();
    }
    // Context for reading the numbers on a shared machine: CPU this process used during the
    // scenario (all threads, setup included) and the 1-minute load average after it.
    if (!line.contains("skipped")) {
      line["cpu_seconds"] = round_to(cpu_seconds() - cpu0, 3);
      double load = 0;
      if (::getloadavg(&load, 1) == 1) line["load_1m"] = round_to(load, 2);
    }
    if (json) {
      std::cout << line.dump() << std::endl;  // flushed per line so a consumer sees progress
    } else {
      print_table_row(line);
    }
  }
  return failures == 0 ? 0 : 1;
}

}  // namespace
}  // namespace herald::bench

int main(int argc, char** argv) {
  // Library logs go to stderr so that stdout carries only results (--json: only JSON lines).
  spdlog::set_default_logger(spdlog::stderr_color_mt("herald_bench"));
  try {
    return herald::bench::run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "herald_bench: %s\n", e.what());
    return 1;
  }
}
