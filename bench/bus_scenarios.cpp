// Bus scenarios (built only when the herald_bus target exists):
//   dispatch_memory     events/s through the bus to 3 no-op durable handlers on the memory store,
//                       next to std_function_loop (baseline_scenarios.cpp);
//   e2e_latency_sqlite  time from publish() returning to a durable handler (and a live
//                       subscription) being called, at a fixed publish rate on a sqlite store.
#include <atomic>
#include <cmath>
#include <thread>

#include "bench.h"
#include "herald/event_bus.h"

namespace herald::bench {
namespace {

using SteadyClock = std::chrono::steady_clock;

// A durable handler that only counts what it was given.
class CountingHandler final : public EventHandler {
 public:
  explicit CountingHandler(std::string name) : name_(std::move(name)) {}
  std::string name() const override { return name_; }
  std::vector<std::string> event_types() const override { return {}; }
  Status handle(const RecordedEvent& /*event*/, HandlerContext& /*ctx*/) override {
    processed_.fetch_add(1, std::memory_order_relaxed);
    return Status::ok();
  }
  std::int64_t processed() const { return processed_.load(std::memory_order_relaxed); }

 private:
  const std::string name_;
  std::atomic_int64_t processed_{0};
};

// Waits until every counter reaches `target` or `timeout` passes; timeout status names the laggard.
Status wait_all(const std::vector<std::shared_ptr<CountingHandler>>& handlers, std::int64_t target,
                std::chrono::seconds timeout) {
  const auto deadline = SteadyClock::now() + timeout;
  for (const auto& h : handlers) {
    while (h->processed() < target) {
      if (SteadyClock::now() > deadline) {
        return Status::timeout(h->name() + " processed " + std::to_string(h->processed()) + " of " +
                               std::to_string(target) + " events");
      }
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  }
  return Status::ok();
}

struct DispatchRun {
  double publish_secs = 0;   // first publish() call to the last one returning
  double dispatch_secs = 0;  // the timed span (see run_dispatch)
  bool clean_stop = false;
};

// Publishes n events in batches of 1000 on a fresh memory store with 3 counting handlers.
// live: the bus runs while publishing; timed from the first publish until all 3 handlers are done.
// catch-up: everything is published first, then the bus starts; timed from start() until done
// (the bus's own cost, without the appends).
Result<DispatchRun> run_dispatch(const Options& opt, std::int64_t n, bool live) {
  constexpr std::int64_t kBatch = 1000;
  auto fresh = FreshStore::open(opt, StoreKind::memory);
  if (!fresh) return fresh.status();

  std::vector<std::shared_ptr<CountingHandler>> handlers;
  EventBus bus((*fresh)->shared());
  for (int i = 1; i <= 3; ++i) {
    handlers.push_back(std::make_shared<CountingHandler>("bench.noop" + std::to_string(i)));
    HERALD_RETURN_IF_ERROR(bus.register_handler(handlers.back()));
  }
  // Built before the clock starts, as std_function_loop's events are: the figure is the bus's
  // cost (appending, reading, dispatching), not the benchmark's.
  std::vector<std::vector<EventData>> batches;
  for (std::int64_t first = 0; first < n; first += kBatch) {
    batches.push_back(make_events(first, static_cast<std::size_t>(std::min(kBatch, n - first))));
  }
  if (live) HERALD_RETURN_IF_ERROR(bus.start());

  DispatchRun run;
  const auto t0 = SteadyClock::now();
  for (std::size_t b = 0; b < batches.size(); ++b) {
    auto r = bus.publish("bench-" + std::to_string(b), ExpectedVersion::no_stream(), std::move(batches[b]));
    if (!r) return r.status();
  }
  const auto t_published = SteadyClock::now();
  run.publish_secs = seconds_between(t0, t_published);
  if (!live) HERALD_RETURN_IF_ERROR(bus.start());
  Status waited = wait_all(handlers, n, std::chrono::seconds(60));
  const auto t1 = SteadyClock::now();
  run.dispatch_secs = seconds_between(live ? t0 : t_published, t1);
  run.clean_stop = bus.stop(SteadyClock::now() + std::chrono::seconds(5)).clean;
  HERALD_RETURN_IF_ERROR(waited);
  return run;
}

Result<Json> run_dispatch_memory(const Options& opt) {
  const std::int64_t n = opt.events > 0 ? opt.events : kDispatchDefaultEvents;
  constexpr int kHandlers = 3;
  auto live = run_dispatch(opt, n, true);
  if (!live) return live.status();
  auto catch_up = run_dispatch(opt, n, false);
  if (!catch_up) return catch_up.status();

  const double nd = static_cast<double>(n);
  Json out = base_result("dispatch_memory", StoreKind::memory, n, live->dispatch_secs);
  out["handlers"] = kHandlers;
  out["publish_batch"] = 1000;
  out["ns_per_event_per_handler"] = round_to(live->dispatch_secs * 1e9 / nd / kHandlers, 2);
  out["publish_seconds"] = round_to(live->publish_secs, 3);
  // Catch-up: the same events already in the store when the bus starts.
  out["catchup_seconds"] = round_to(catch_up->dispatch_secs, 3);
  out["catchup_events_per_s"] = round_to(nd / catch_up->dispatch_secs, 1);
  out["catchup_ns_per_event_per_handler"] =
      round_to(catch_up->dispatch_secs * 1e9 / nd / kHandlers, 2);
  out["clean_stop"] = live->clean_stop && catch_up->clean_stop;
  return out;
}

// Records, per global position, when the durable handler saw the event (steady ns).
class StampingHandler final : public EventHandler {
 public:
  explicit StampingHandler(std::vector<std::atomic_int64_t>& stamps) : stamps_(stamps) {}
  std::string name() const override { return "bench.e2e"; }
  std::vector<std::string> event_types() const override { return {}; }
  Status handle(const RecordedEvent& event, HandlerContext& /*ctx*/) override {
    const std::int64_t t = now_ns();
    if (event.position >= 0 && static_cast<std::size_t>(event.position) < stamps_.size()) {
      stamps_[static_cast<std::size_t>(event.position)].store(t, std::memory_order_relaxed);
    }
    processed_.fetch_add(1, std::memory_order_relaxed);
    return Status::ok();
  }
  std::int64_t processed() const { return processed_.load(std::memory_order_relaxed); }

 private:
  std::vector<std::atomic_int64_t>& stamps_;  // owned by the scenario, outlives the bus
  std::atomic_int64_t processed_{0};
};

// Latencies handled - returned; negative ones (the handler ran before publish() returned, which
// is legal: the event is readable at commit) count as 0 and are counted in `early`.
std::vector<std::int64_t> deltas(const std::vector<std::atomic_int64_t>& handled,
                                 const std::vector<std::int64_t>& returned, std::int64_t n,
                                 std::int64_t& early, std::int64_t& missing) {
  std::vector<std::int64_t> out;
  out.reserve(static_cast<std::size_t>(n));
  early = 0;
  missing = 0;
  for (std::size_t p = 0; p < static_cast<std::size_t>(n); ++p) {
    const std::int64_t h = handled[p].load(std::memory_order_relaxed);
    if (h == 0) {
      ++missing;
      continue;
    }
    std::int64_t d = h - returned[p];
    if (d < 0) {
      ++early;
      d = 0;
    }
    out.push_back(d);
  }
  return out;
}

Result<Json> run_e2e_latency_sqlite(const Options& opt) {
  const double rate = opt.rate;
  const double duration = std::max(1.0, opt.seconds * 1.5);
  std::int64_t total = static_cast<std::int64_t>(std::llround(rate * duration));
  if (opt.events > 0) total = std::min(total, opt.events);
  constexpr std::int64_t kMaxBatch = 1000;

  auto fresh = FreshStore::open(opt, StoreKind::sqlite);
  if (!fresh) return fresh.status();

  // Indexed by global position (the store is fresh and only this publisher writes, so the
  // positions are exactly 0 … total-1). Declared before the bus so they outlive its threads.
  std::vector<std::int64_t> returned_at(static_cast<std::size_t>(total), 0);
  std::vector<std::int64_t> called_at(static_cast<std::size_t>(total), 0);
  std::vector<std::atomic_int64_t> handled_at(static_cast<std::size_t>(total));
  std::vector<std::atomic_int64_t> live_at(static_cast<std::size_t>(total));
  std::atomic_int64_t live_count{0};
  std::vector<std::int64_t> publish_lat;

  auto handler = std::make_shared<StampingHandler>(handled_at);
  EventBus bus((*fresh)->shared());
  HERALD_RETURN_IF_ERROR(bus.register_handler(handler));
  Subscription live = bus.subscribe("*", [&live_at, &live_count](const RecordedEvent& e) {
    const std::int64_t t = now_ns();
    if (e.position >= 0 && static_cast<std::size_t>(e.position) < live_at.size()) {
      live_at[static_cast<std::size_t>(e.position)].store(t, std::memory_order_relaxed);
    }
    live_count.fetch_add(1, std::memory_order_relaxed);
  });
  HERALD_RETURN_IF_ERROR(bus.start());

  // The publisher keeps the schedule "event k is due at k / rate": whenever it is behind (an
  // fsync took longer than 1/rate) it publishes everything due in one batch, so the offered load
  // stays at `rate` whatever the disk does.
  std::int64_t published = 0;
  std::int64_t publishes = 0;
  const auto start = SteadyClock::now();
  while (published < total) {
    const double elapsed = seconds_between(start, SteadyClock::now());
    const std::int64_t due =
        std::min(total, static_cast<std::int64_t>(std::floor(elapsed * rate)) + 1);
    if (due <= published) {
      std::this_thread::sleep_until(
          start + std::chrono::duration_cast<SteadyClock::duration>(
                      std::chrono::duration<double>(static_cast<double>(published) / rate)));
      continue;
    }
    const std::int64_t n = std::min(due - published, kMaxBatch);
    const std::int64_t t0 = now_ns();
    auto r = bus.publish("e2e-" + std::to_string(publishes), ExpectedVersion::no_stream(),
                         make_events(published, static_cast<std::size_t>(n)));
    const std::int64_t t_ret = now_ns();
    if (!r) return r.status();
    publish_lat.push_back(t_ret - t0);
    if (r->first_position < 0 || r->last_position >= total) {
      return Status::internal("unexpected positions from a fresh store: " +
                              std::to_string(r->first_position) + ".." +
                              std::to_string(r->last_position));
    }
    for (std::int64_t p = r->first_position; p <= r->last_position; ++p) {
      returned_at[static_cast<std::size_t>(p)] = t_ret;
      called_at[static_cast<std::size_t>(p)] = t0;
    }
    published += n;
    ++publishes;
  }
  const double publish_secs = seconds_between(start, SteadyClock::now());

  const auto deadline = SteadyClock::now() + std::chrono::seconds(30);
  while ((handler->processed() < total || live_count.load() < total) && SteadyClock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  live.unsubscribe();
  StopReport report = bus.stop(SteadyClock::now() + std::chrono::seconds(5));
  if (handler->processed() < total) {
    return Status::timeout("durable handler processed " + std::to_string(handler->processed()) +
                           " of " + std::to_string(total) + " events within 30 s");
  }

  std::int64_t early = 0;
  std::int64_t missing = 0;
  auto durable = deltas(handled_at, returned_at, total, early, missing);
  std::int64_t live_early = 0;
  std::int64_t live_missing = 0;
  auto live_lat = deltas(live_at, returned_at, total, live_early, live_missing);
  // The same from the moment publish() was called: includes the durable append itself.
  std::int64_t unused_early = 0;
  std::int64_t unused_missing = 0;
  auto from_call = deltas(handled_at, called_at, total, unused_early, unused_missing);

  Json out = base_result("e2e_latency_sqlite", StoreKind::sqlite, total, publish_secs);
  out["target_rate"] = rate;
  out["publishes"] = publishes;
  out["mean_batch"] = round_to(static_cast<double>(total) / static_cast<double>(publishes), 2);
  put_latency(out, summarize(durable));
  out["latency_of"] = "publish() returned -> durable handler called";
  out["handled_before_publish_returned"] = early;
  auto live_summary = summarize(live_lat);
  auto call_summary = summarize(from_call);
  out["from_call_p50_us"] = round_to(call_summary.p50_us, 1);
  out["from_call_p99_us"] = round_to(call_summary.p99_us, 1);
  out["live_p50_us"] = round_to(live_summary.p50_us, 1);
  out["live_p99_us"] = round_to(live_summary.p99_us, 1);
  out["live_missing"] = live_missing;
  auto pub = summarize(publish_lat);
  out["publish_p50_us"] = round_to(pub.p50_us, 1);
  out["publish_p99_us"] = round_to(pub.p99_us, 1);
  out["clean_stop"] = report.clean;
  if (missing > 0) out["missing"] = missing;
  return out;
}

}  // namespace

void register_bus_scenarios(Registry& r) {
  r.add({"dispatch_memory",
         "events/s through the bus to 3 no-op durable handlers on the memory store",
         run_dispatch_memory});
  r.add({"e2e_latency_sqlite",
         "publish() return -> handler call latency at --rate events/s on a sqlite store",
         run_e2e_latency_sqlite});
}

}  // namespace herald::bench
