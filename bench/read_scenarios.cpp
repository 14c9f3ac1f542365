// Read scenarios on a prefilled store (the prefill is not timed). Each reads everything twice and
// reports the second (warm) pass; the first pass is reported as cold_events_per_s.
#include <algorithm>
#include <atomic>
#include <mutex>
#include <numeric>
#include <random>
#include <thread>

#include "bench.h"

namespace herald::bench {
namespace {

// Fills `streams` streams with `per_stream` events each, from a few threads so that a group-commit
// backend is not fsync-bound during the (untimed) prefill.
Status prefill(EventStore& store, std::int64_t streams, std::size_t per_stream) {
  constexpr int kThreads = 4;
  std::atomic_int64_t next{0};
  std::mutex mu;
  Status first_error;  // guarded by mu
  auto fill = [&] {
    try {
      for (;;) {
        std::int64_t s = next.fetch_add(1);
        if (s >= streams) return;
        {
          std::lock_guard lock(mu);
          if (!first_error.is_ok()) return;
        }
        auto r = store.append("fill-" + std::to_string(s), ExpectedVersion::no_stream(),
                              make_events(s * static_cast<std::int64_t>(per_stream), per_stream));
        if (!r) {
          std::lock_guard lock(mu);
          if (first_error.is_ok()) first_error = r.status();
          return;
        }
      }
    } catch (const std::exception& e) {
      std::lock_guard lock(mu);
      if (first_error.is_ok()) first_error = Status::internal(std::string("prefill: ") + e.what());
    }
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) threads.emplace_back(fill);
  for (auto& t : threads) t.join();
  return first_error;
}

// One pass of read_all over the whole log in pages; returns events read.
Result<std::int64_t> read_all_pass(EventStore& store, std::size_t page) {
  std::int64_t from = 0;
  std::int64_t count = 0;
  std::size_t bytes = 0;
  for (;;) {
    auto slice = store.read_all(from, page);
    if (!slice) return slice.status();
    count += static_cast<std::int64_t>(slice->events.size());
    for (const auto& e : slice->events) bytes += e.payload.size();  // touch what was read
    if (slice->end_of_log || slice->events.empty()) break;
    from = slice->next_position;
  }
  if (bytes == 0 && count > 0) return Status::internal("read_all returned empty payloads");
  return count;
}

Result<Json> run_read_all(const Options& opt) {
  auto fresh = FreshStore::open(opt, opt.kind);
  if (!fresh) return fresh.status();
  EventStore& store = (*fresh)->store();
  const std::int64_t total = opt.prefill;
  constexpr std::size_t kPerStream = 1000;
  const std::int64_t streams = (total + static_cast<std::int64_t>(kPerStream) - 1) /
                               static_cast<std::int64_t>(kPerStream);
  const auto fill_start = std::chrono::steady_clock::now();
  HERALD_RETURN_IF_ERROR(prefill(store, streams, kPerStream));
  const double fill_secs = seconds_between(fill_start, std::chrono::steady_clock::now());
  const std::int64_t expected = streams * static_cast<std::int64_t>(kPerStream);

  double secs[2] = {0, 0};
  for (double& s : secs) {
    auto t0 = std::chrono::steady_clock::now();
    auto n = read_all_pass(store, opt.page);
    s = seconds_between(t0, std::chrono::steady_clock::now());
    if (!n) return n.status();
    if (*n != expected) {
      return Status::internal("read_all returned " + std::to_string(*n) + " events, expected " +
                              std::to_string(expected));
    }
  }
  Json out = base_result("read_all", (*fresh)->kind(), expected, secs[1]);
  out["page"] = opt.page;
  out["cold_events_per_s"] = round_to(static_cast<double>(expected) / secs[0], 1);
  out["prefill_seconds"] = round_to(fill_secs, 3);
  return out;
}

Result<Json> run_read_stream(const Options& opt) {
  auto fresh = FreshStore::open(opt, opt.kind);
  if (!fresh) return fresh.status();
  EventStore& store = (*fresh)->store();
  constexpr std::size_t kPerStream = 100;
  const std::int64_t streams = opt.streams;
  const auto fill_start = std::chrono::steady_clock::now();
  HERALD_RETURN_IF_ERROR(prefill(store, streams, kPerStream));
  const double fill_secs = seconds_between(fill_start, std::chrono::steady_clock::now());

  // Streams are read in a shuffled order (the same in both passes) so that neighbouring streams
  // in the file do not make the pass look better than a real access pattern.
  std::vector<std::int64_t> order(static_cast<std::size_t>(streams));
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), std::mt19937_64(42));
  std::vector<std::int64_t> lat;
  lat.reserve(order.size());

  double secs[2] = {0, 0};
  std::int64_t count = 0;
  for (int pass = 0; pass < 2; ++pass) {
    count = 0;
    lat.clear();
    auto t0 = std::chrono::steady_clock::now();
    for (std::int64_t s : order) {
      const std::int64_t r0 = now_ns();
      auto events = store.read_stream("fill-" + std::to_string(s), 0, kPerStream,
                                      ReadDirection::forwards);
      lat.push_back(now_ns() - r0);
      if (!events) return events.status();
      if (events->size() != kPerStream) {
        return Status::internal("read_stream returned " + std::to_string(events->size()) +
                                " events, expected " + std::to_string(kPerStream));
      }
      count += static_cast<std::int64_t>(events->size());
    }
    secs[pass] = seconds_between(t0, std::chrono::steady_clock::now());
  }
  Json out = base_result("read_stream", (*fresh)->kind(), count, secs[1]);
  out["streams"] = streams;
  out["events_per_stream"] = kPerStream;
  out["streams_per_s"] = round_to(static_cast<double>(streams) / secs[1], 1);
  out["cold_events_per_s"] = round_to(static_cast<double>(count) / secs[0], 1);
  put_latency(out, summarize(lat));
  out["latency_of"] = "one read_stream call (100 events)";
  out["prefill_seconds"] = round_to(fill_secs, 3);
  return out;
}

}  // namespace

void register_read_scenarios(Registry& r) {
  r.add({"read_all", "read_all over a prefilled store (--prefill) in pages (--page), warm pass",
         run_read_all});
  r.add({"read_stream", "read_stream of --streams streams of 100 events each, forwards, warm pass",
         run_read_stream});
}

}  // namespace herald::bench
