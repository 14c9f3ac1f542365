// Append scenarios: W writer threads, each appending batches of B events with 200-byte payloads,
// for --seconds (default 2 s) or until --events are written, whichever comes first. Latency is
// per append call (one sample per batch).
#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>

#include "bench.h"

namespace herald::bench {
namespace {

struct AppendSpec {
  int writers = 1;
  std::size_t batch = 1;
  // 0: each writer appends to its own stream with an exact expected version (what an aggregate
  // does); n > 0: writers share n streams and append with ExpectedVersion::any().
  int shared_streams = 0;
  std::int64_t default_events = 1'000'000;  // cap when --events is not given
};

Result<Json> run_append(const Options& opt, std::string_view name, const AppendSpec& spec) {
  auto fresh = FreshStore::open(opt, opt.kind);
  if (!fresh) return fresh.status();
  EventStore& store = (*fresh)->store();

  const std::int64_t budget = opt.events > 0 ? opt.events : spec.default_events;
  const auto batch = static_cast<std::int64_t>(spec.batch);
  std::atomic_int64_t reserved{0};  // events claimed by writers; a writer stops when over budget
  std::atomic_int64_t written{0};
  std::atomic_int64_t appends{0};
  std::atomic_bool stop{false};
  std::mutex error_mu;
  Status first_error;  // guarded by error_mu: the first failure of any writer
  std::vector<std::vector<std::int64_t>> latencies(static_cast<std::size_t>(spec.writers));

  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                    std::chrono::duration<double>(opt.seconds));
  auto writer = [&](int w) {
    try {
      auto& lat = latencies[static_cast<std::size_t>(w)];
      lat.reserve(1 << 16);
      std::int64_t version = kNoStreamVersion;
      const std::string own_stream = "bench-" + std::to_string(w);
      for (std::int64_t i = 0; !stop.load(std::memory_order_relaxed); ++i) {
        std::int64_t first = reserved.fetch_add(batch);
        if (first + batch > budget || std::chrono::steady_clock::now() >= deadline) break;
        std::vector<EventData> events = make_events(first, spec.batch);
        std::string stream;
        ExpectedVersion expected = ExpectedVersion::any();
        if (spec.shared_streams > 0) {
          stream = "bench-shared" + std::to_string(i % spec.shared_streams);
        } else {
          stream = own_stream;
          expected = version == kNoStreamVersion ? ExpectedVersion::no_stream()
                                                 : ExpectedVersion::exact(version);
        }
        const std::int64_t t0 = now_ns();
        auto r = store.append(stream, expected, std::move(events));
        const std::int64_t t1 = now_ns();
        if (!r) {
          std::lock_guard lock(error_mu);
          if (first_error.is_ok()) first_error = r.status();
          stop = true;
          break;
        }
        version = r->stream_version;
        lat.push_back(t1 - t0);
        written.fetch_add(batch, std::memory_order_relaxed);
        appends.fetch_add(1, std::memory_order_relaxed);
      }
    } catch (const std::exception& e) {
      std::lock_guard lock(error_mu);
      if (first_error.is_ok()) first_error = Status::internal(std::string("writer: ") + e.what());
      stop = true;
    }
  };
  std::vector<std::thread> threads;
  threads.reserve(static_cast<std::size_t>(spec.writers));
  for (int w = 0; w < spec.writers; ++w) threads.emplace_back(writer, w);
  for (auto& t : threads) t.join();
  const double secs = seconds_between(start, std::chrono::steady_clock::now());
  if (!first_error.is_ok()) return first_error;

  std::vector<std::int64_t> all;
  for (auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  Json out = base_result(name, (*fresh)->kind(), written.load(), secs);
  out["appends"] = appends.load();
  out["appends_per_s"] = round_to(static_cast<double>(appends.load()) / secs, 1);
  out["writers"] = spec.writers;
  out["batch"] = spec.batch;
  out["streams"] = spec.shared_streams > 0 ? spec.shared_streams : spec.writers;
  put_latency(out, summarize(all));
  out["latency_of"] = "one append call";
  return out;
}

void add(Registry& r, std::string name, std::string description, AppendSpec spec) {
  r.add(Scenario{name, std::move(description),
                 [name, spec](const Options& opt) { return run_append(opt, name, spec); }});
}

}  // namespace

void register_append_scenarios(Registry& r) {
  add(r, "append_1x1", "1 writer, 1 event per append, per-append latency", {1, 1, 0, 1'000'000});
  add(r, "append_10x1", "10 concurrent writers (own streams), 1 event per append",
      {10, 1, 0, 1'000'000});
  add(r, "append_64x1", "64 concurrent writers (own streams), 1 event per append",
      {64, 1, 0, 1'000'000});
  add(r, "append_64x1_shared", "64 concurrent writers sharing 4 streams (expected any), 1 event",
      {64, 1, 4, 1'000'000});
  add(r, "append_batch_10", "1 writer, batches of 10 events", {1, 10, 0, 2'000'000});
  add(r, "append_batch_100", "1 writer, batches of 100 events", {1, 100, 0, 2'000'000});
  add(r, "append_batch_1000", "1 writer, batches of 1000 events", {1, 1000, 0, 2'000'000});
}

}  // namespace herald::bench
