// bench/bench.h — shared pieces of herald_bench: options, the scenario registry, fresh stores in
// temporary places, payloads and latency statistics.
//
// A scenario is a function Options -> Result<Json>. It opens whatever it needs (a fresh store via
// FreshStore::open, a scratch directory via TempDir), cleans up before returning, and returns one
// JSON object with at least: scenario, store, events, seconds, events_per_s (and p50_us / p99_us
// when it measures per-operation latency). Registering one is a line in its file's
// register_*_scenarios function; main.cpp calls those.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "herald/event_store.h"
#include "herald/status.h"

namespace herald::bench {

// Insertion-ordered so that "scenario" comes first on every line.
using Json = nlohmann::ordered_json;

enum class StoreKind { memory, sqlite, postgres };
std::string_view to_string(StoreKind kind);

// Command-line knobs; 0 means "the scenario's default".
struct Options {
  std::string store_url;  // as given on the command line, or the default sqlite URL
  StoreKind kind = StoreKind::sqlite;
  std::int64_t events = 0;         // event budget (cap for time-bound scenarios)
  double seconds = 2.0;            // time budget of time-bound scenarios
  std::int64_t prefill = 200'000;  // read_all: events written before reading
  std::size_t page = 10'000;       // read_all: events per read_all call
  std::int64_t streams = 1'000;    // read_stream: streams of 100 events
  double rate = 5'000;             // e2e_latency_sqlite: published events per second
  double sustained_seconds = 60;   // sustained_append: how long the load lasts
  std::size_t wal_limit_bytes = 0;  // sustained_append: StoreOptions::sqlite_wal_limit_bytes (0: default)
  std::string nats_url;  // relay_jetstream, naive_jetstream_async_publish: nats-server; empty: skipped
};

// Parses the scheme of a store URL. invalid_argument for anything else.
Result<StoreKind> store_kind_of(std::string_view url);

// A directory created fresh (mkdtemp) under `base` and removed with its contents on destruction.
class TempDir {
 public:
  // invalid_argument / unavailable when `base` does not exist or is not writable.
  static Result<std::unique_ptr<TempDir>> create(const std::filesystem::path& base);
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  explicit TempDir(std::filesystem::path p) : path_(std::move(p)) {}
  std::filesystem::path path_;
};

// Where scratch files of a run go: the directory of the --store sqlite URL, else $TMPDIR or /tmp.
std::filesystem::path scratch_base(const Options& options);

#ifdef HERALD_BENCH_WITH_POSTGRES
// A database created on the server of `admin_url` and dropped (WITH (FORCE)) on destruction.
class FreshPgDatabase {
 public:
  static Result<std::unique_ptr<FreshPgDatabase>> create(const std::string& admin_url);
  ~FreshPgDatabase();
  FreshPgDatabase(const FreshPgDatabase&) = delete;
  FreshPgDatabase& operator=(const FreshPgDatabase&) = delete;
  const std::string& url() const { return url_; }    // admin_url with the database replaced
  const std::string& name() const { return name_; }

 private:
  FreshPgDatabase() = default;
  std::string admin_url_;
  std::string name_;
  std::string url_;
};
#endif

// A store of a given kind that no other scenario has touched, torn down on destruction:
//   memory   -> "memory:"
//   sqlite   -> a fresh directory under scratch_base() holding the URL's file name (events.db)
//   postgres -> a fresh database (CREATE DATABASE) on the --store server, dropped afterwards
class FreshStore {
 public:
  static Result<std::unique_ptr<FreshStore>> open(const Options& options, StoreKind kind,
                                                  const StoreOptions& store_options = {});
  ~FreshStore();
  FreshStore(const FreshStore&) = delete;
  FreshStore& operator=(const FreshStore&) = delete;

  EventStore& store() { return *store_; }
  const std::shared_ptr<EventStore>& shared() { return store_; }
  StoreKind kind() const { return kind_; }
  // The directory holding the sqlite database; empty for other kinds.
  std::filesystem::path directory() const;

 private:
  FreshStore() = default;
  StoreKind kind_ = StoreKind::memory;
  std::shared_ptr<EventStore> store_;
  std::unique_ptr<TempDir> dir_;
#ifdef HERALD_BENCH_WITH_POSTGRES
  std::unique_ptr<FreshPgDatabase> pg_db_;  // dropped after store_ is closed
#endif
};

// Events pushed through dispatch_memory and std_function_loop when --events is not given.
inline constexpr std::int64_t kDispatchDefaultEvents = 200'000;

// A JSON object of exactly 200 bytes (the payload size of every append scenario) carrying `seq`.
inline constexpr std::size_t kPayloadBytes = 200;
std::string make_payload(std::int64_t seq);
// `count` events of type "BenchEvent" with 200-byte payloads numbered from `first_seq`; ids are
// left empty so the store assigns UUIDv7s.
std::vector<EventData> make_events(std::int64_t first_seq, std::size_t count);

// Latency summary of per-operation samples in nanoseconds (the vector is sorted in place).
struct LatencySummary {
  double p50_us = 0, p99_us = 0, p999_us = 0, max_us = 0, mean_us = 0;
};
LatencySummary summarize(std::vector<std::int64_t>& samples_ns);
// Adds p50_us, p99_us, p999_us, max_us, mean_us to `out`.
void put_latency(Json& out, const LatencySummary& s);

// Rounds for readable output.
double round_to(double v, int decimals);

// Seconds between two steady_clock points.
inline double seconds_between(std::chrono::steady_clock::time_point a,
                              std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}
inline std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// The start of a result line: scenario, store, events, seconds, events_per_s.
Json base_result(std::string_view scenario, StoreKind kind, std::int64_t events, double seconds);

struct Scenario {
  std::string name;
  std::string description;  // one line for --list
  std::function<Result<Json>(const Options&)> run;
};

// Scenarios in registration order (the order of `--scenario all`).
class Registry {
 public:
  void add(Scenario s) { scenarios_.push_back(std::move(s)); }
  const Scenario* find(std::string_view name) const;
  const std::vector<Scenario>& all() const { return scenarios_; }

 private:
  std::vector<Scenario> scenarios_;
};

// Each scenario file registers its scenarios here.
void register_baseline_scenarios(Registry& r);  // fsync_rate, naive_sqlite/postgres_1x1
void register_dispatch_baseline(Registry& r);   // std_function_loop
void register_append_scenarios(Registry& r);
void register_read_scenarios(Registry& r);
void register_bus_scenarios(Registry& r);  // bus_scenarios.cpp, or skips when herald_bus is absent
void register_http_scenarios(Registry& r);  // http_scenarios.cpp, or skips without the shop modules
void register_sustained_scenarios(Registry& r);  // sustained_append
void register_jetstream_scenarios(Registry& r);  // jetstream_scenarios.cpp, or skips without libnats

}  // namespace herald::bench
