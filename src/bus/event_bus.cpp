// The EventBus facade: owns the runners (one per durable handler) and the live feed, and routes
// the admin calls (replay, dead letters, status) to the right runner.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <deque>
#include <mutex>
#include <unordered_set>
#include <map>

#include "bus/handler_registry.h"
#include "bus/live_feed.h"
#include "bus/runner.h"
#include "herald/event_bus.h"
#include "herald/event_store_wrapper.h"
#include "herald/id.h"

namespace herald {

std::string_view to_string(HandlerState s) {
  switch (s) {
    case HandlerState::running: return "running";
    case HandlerState::catching_up: return "catching_up";
    case HandlerState::retrying: return "retrying";
    case HandlerState::parked: return "parked";
    case HandlerState::stopped: return "stopped";
    case HandlerState::failed: return "failed";
  }
  return "unknown";
}

namespace {

struct PublishCounters {
  std::atomic_int64_t published_events{0};
  std::atomic_int64_t publish_calls{0};
  std::atomic_int64_t publish_failures{0};
};

// The bus's view of its store. Every append through it counts as published, whoever makes it:
// publish(), a module's command handler, a handler's follow-up event, an aggregate repository.
// So the bus's publish figures and the store's event count agree however events are written.
class PublishingStore final : public EventStoreWrapper {
 public:
  PublishingStore(std::shared_ptr<EventStore> inner, PublishCounters& counters)
      : EventStoreWrapper(std::move(inner)), counters_(counters) {}

  Result<AppendResult> append(std::string_view stream_id, ExpectedVersion expected,
                              std::vector<EventData> events) override {
    counters_.publish_calls.fetch_add(1, std::memory_order_relaxed);
    // An idempotent retry (the same ids again: a redelivered handler's follow-up event, or the
    // shop's registration written by its HTTP path and its handler at once) succeeds with the
    // original append's positions and writes nothing. A replay of an append readable before this
    // call began returns positions at or below the head seen here; one racing its original
    // returns the same first position as the original, which recent_ remembers.
    const std::int64_t head_before = inner_log().head_position();
    auto r = EventStoreWrapper::append(stream_id, expected, std::move(events));
    if (r) {
      if (r->first_position > head_before && first_time(r->first_position)) {
        counters_.published_events.fetch_add(r->last_position - r->first_position + 1, std::memory_order_relaxed);
      }
    } else {
      counters_.publish_failures.fetch_add(1, std::memory_order_relaxed);
    }
    return r;
  }

 private:
  // Whether no append through this store returned `first_position` among the last kRemembered.
  bool first_time(std::int64_t first_position) {
    std::lock_guard lock(recent_mu_);
    if (!recent_set_.insert(first_position).second) return false;
    recent_.push_back(first_position);
    if (recent_.size() > kRemembered) {
      recent_set_.erase(recent_.front());
      recent_.pop_front();
    }
    return true;
  }

  static constexpr std::size_t kRemembered = 4096;  // far more appends than can race one another
  PublishCounters& counters_;  // the bus's; outlives this (the bus's BusState owns both)
  std::mutex recent_mu_;       // guards recent_, recent_set_
  std::deque<std::int64_t> recent_;
  std::unordered_set<std::int64_t> recent_set_;
};

}  // namespace

namespace bus {

// The bus's state behind EventBus (its pimpl).
struct BusState {
  enum class Phase { idle, running, stopped };

  BusState(std::shared_ptr<EventStore> s, BusOptions o)
      : store(std::make_shared<PublishingStore>(std::move(s), counters)),
        options(std::move(o)),
        cache(std::make_shared<bus::BatchCache>(store)),
        feed(store, cache) {
    instance_id = options.instance_id.empty() ? new_uuid_v7() : options.instance_id;
    if (!options.clock) options.clock = system_clock();
    if (!options.time) options.time = steady_time_source();
  }

  std::shared_ptr<bus::HandlerRunner> runner(std::string_view name) const {
    std::lock_guard lock(mu);
    auto it = runners.find(name);
    return it == runners.end() ? nullptr : it->second;
  }

  // Declared first: `store` counts into it from construction on.
  PublishCounters counters;
  // Constant after construction. The PublishingStore over the store the bus was given.
  std::shared_ptr<EventStore> store;
  BusOptions options;  // clock and time never null
  std::string instance_id;
  std::shared_ptr<bus::BatchCache> cache;  // thread-safe; shared by runners and the feed

  bus::HandlerRegistry registry;  // name uniqueness; has its own mutex
  bus::LiveFeed feed;             // thread-safe on its own

  // mu guards runners and phase. Runners are shared_ptr so an admin call holding one survives a
  // concurrent unregister_handler.
  mutable std::mutex mu;
  std::map<std::string, std::shared_ptr<bus::HandlerRunner>, std::less<>> runners;
  Phase phase = Phase::idle;
  std::optional<StopReport> stop_report;
};

}  // namespace bus

namespace {

Status validate(const HandlerOptions& o) {
  if (o.lanes < 1 || o.lanes > 64) return Status::invalid_argument("lanes must be in [1, 64], got " + std::to_string(o.lanes));
  if (o.batch_size == 0) return Status::invalid_argument("batch_size must be positive");
  const RetryPolicy& r = o.retry;
  if (r.max_attempts < 1) return Status::invalid_argument("retry.max_attempts must be at least 1");
  if (r.initial_delay.count() < 0 || r.max_delay.count() < 0) {
    return Status::invalid_argument("retry delays must not be negative");
  }
  if (!(r.multiplier >= 1.0)) return Status::invalid_argument("retry.multiplier must be >= 1");
  if (!(r.jitter >= 0.0 && r.jitter <= 1.0)) return Status::invalid_argument("retry.jitter must be in [0, 1]");
  for (auto d : r.delays) {
    if (d.count() < 0) return Status::invalid_argument("retry.delays must not be negative");
  }
  return Status::ok();
}

}  // namespace

EventBus::EventBus(std::shared_ptr<EventStore> store, BusOptions options)
    : state_(std::make_unique<bus::BusState>(std::move(store), std::move(options))) {
  // spdlog creates its registry lazily, inside the (uninstrumented) shared library. Creating it
  // here, before any runner thread exists, keeps the lanes' first concurrent log calls from
  // racing on that construction as far as ThreadSanitizer can tell.
  (void)spdlog::default_logger_raw();
}

EventBus::~EventBus() {
  // Real time, not BusOptions::time: the bound is on this thread's wait for the lane threads to
  // leave, which a manual time source would never end.
  (void)stop(std::chrono::steady_clock::now() + std::chrono::seconds(5));
  // Runner destructors join any lane still inside a handler call past the deadline.
}

EventStore& EventBus::store() const { return *state_->store; }
std::shared_ptr<EventStore> EventBus::shared_store() const { return state_->store; }

Result<AppendResult> EventBus::publish(std::string_view stream_id, ExpectedVersion expected,
                                       std::vector<EventData> events) {
  return state_->store->append(stream_id, expected, std::move(events));  // counted by PublishingStore
}

Subscription EventBus::subscribe(std::string type, std::function<void(const RecordedEvent&)> fn) {
  if (!fn || type.empty()) return Subscription{};  // nothing to call: an inactive handle
  return Subscription(state_->feed.add(std::move(type), std::move(fn)));
}

Status EventBus::register_handler(std::shared_ptr<EventHandler> handler, HandlerOptions options) {
  if (!handler) return Status::invalid_argument("handler is null");
  HERALD_RETURN_IF_ERROR(validate(options));
  std::lock_guard lock(state_->mu);
  if (state_->phase == bus::BusState::Phase::stopped) return Status::failed_precondition("the bus is stopped");
  HERALD_RETURN_IF_ERROR(state_->registry.add(handler));
  auto runner = std::make_shared<bus::HandlerRunner>(state_->store, state_->options, state_->instance_id, state_->cache, handler,
                                                     std::move(options));
  if (state_->phase == bus::BusState::Phase::running) {
    Status st = runner->start();
    if (!st.is_ok()) {
      (void)state_->registry.remove(runner->name());
      return st;
    }
  }
  state_->runners.emplace(runner->name(), std::move(runner));
  return Status::ok();
}

Status EventBus::unregister_handler(std::string_view name) {
  std::shared_ptr<bus::HandlerRunner> runner;
  {
    std::lock_guard lock(state_->mu);
    auto it = state_->runners.find(name);
    if (it == state_->runners.end()) return Status::not_found("no handler named '" + std::string(name) + "'");
    runner = std::move(it->second);
    state_->runners.erase(it);
    (void)state_->registry.remove(name);
  }
  runner->request_stop();
  runner->join();  // waits for an in-flight call; the lanes save their checkpoints on the way out
  return Status::ok();
}

std::vector<std::string> EventBus::handler_names() const {
  std::lock_guard lock(state_->mu);
  std::vector<std::string> names;
  for (const auto& [name, r] : state_->runners) names.push_back(name);
  return names;
}

Status EventBus::start() {
  std::lock_guard lock(state_->mu);
  if (state_->phase == bus::BusState::Phase::running) return Status::ok();
  if (state_->phase == bus::BusState::Phase::stopped) return Status::failed_precondition("the bus was stopped; create a new one");
  for (auto& [name, runner] : state_->runners) {
    Status st = runner->start();
    if (!st.is_ok()) {
      spdlog::error("bus: cannot start handler {}: {}", name, st.to_string());
      for (auto& [n, r] : state_->runners) r->request_stop();
      for (auto& [n, r] : state_->runners) r->join();
      return st;
    }
  }
  state_->feed.start();
  state_->phase = bus::BusState::Phase::running;
  return Status::ok();
}

StopReport EventBus::stop(std::chrono::steady_clock::time_point deadline) {
  std::vector<std::shared_ptr<bus::HandlerRunner>> runners;
  {
    std::lock_guard lock(state_->mu);
    if (state_->stop_report) return *state_->stop_report;
    bool was_running = state_->phase == bus::BusState::Phase::running;
    state_->phase = bus::BusState::Phase::stopped;
    if (!was_running) {
      state_->stop_report = StopReport{};
      return *state_->stop_report;
    }
    for (auto& [name, r] : state_->runners) runners.push_back(r);
  }
  for (auto& r : runners) r->request_stop();
  state_->feed.stop();
  StopReport report;
  for (auto& r : runners) {
    if (!r->wait_stopped(deadline)) {
      report.clean = false;
      report.unfinished.push_back(r->name());
      spdlog::warn("bus stop: handler {} still has a call in flight at the deadline", r->name());
      continue;
    }
    r->join();
    if (!r->final_save_ok()) report.clean = false;
  }
  for (auto& r : runners) {
    report.pending_events += r->pending_events();
  }
  std::lock_guard lock(state_->mu);
  state_->stop_report = report;
  return report;
}

Status EventBus::reset_checkpoint(std::string_view handler, std::int64_t position) {
  auto r = state_->runner(handler);
  if (!r) return Status::not_found("no handler named '" + std::string(handler) + "'");
  return r->reset_checkpoint(position);
}

Status EventBus::reset_checkpoint_to_time(std::string_view handler, Timestamp time) {
  auto r = state_->runner(handler);
  if (!r) return Status::not_found("no handler named '" + std::string(handler) + "'");
  ReadFilter since;
  since.since = time;
  // read_all skips non-matching events cheaply in every backend; the first match is the target.
  auto slice = state_->store->read_all(0, 1, since);
  if (!slice) return slice.status();
  std::int64_t position = slice->events.empty() ? state_->store->head_position() + 1 : slice->events.front().position;
  return r->reset_checkpoint(position);
}

Status EventBus::replay_range(std::string_view handler, std::int64_t from, std::int64_t to,
                              const std::function<void(const ReplayProgress&)>& progress) {
  auto r = state_->runner(handler);
  if (!r) return Status::not_found("no handler named '" + std::string(handler) + "'");
  return r->replay_range(from, to, progress);
}

Result<ReplayProgress> EventBus::replay_progress(std::string_view handler) const {
  auto r = state_->runner(handler);
  if (!r) return Status::not_found("no handler named '" + std::string(handler) + "'");
  return r->progress();
}

Result<std::vector<DeadLetter>> EventBus::dead_letters(std::string_view handler) const {
  return state_->store->list_dead_letters(handler);
}

Status EventBus::redrive(std::int64_t dead_letter_id) {
  auto entry = state_->store->get_dead_letter(dead_letter_id);
  if (!entry) return entry.status();
  auto r = state_->runner(entry->handler);
  if (!r) {
    return Status::failed_precondition("dead letter " + std::to_string(dead_letter_id) + " belongs to handler '" +
                                       entry->handler + "', which is not registered on this bus");
  }
  return r->redrive(*entry);
}

Status EventBus::redrive_all(std::string_view handler) {
  auto r = state_->runner(handler);
  if (!r) return Status::not_found("no handler named '" + std::string(handler) + "'");
  auto entries = state_->store->list_dead_letters(handler);
  if (!entries) return entries.status();
  std::sort(entries->begin(), entries->end(), [](const auto& a, const auto& b) { return a.position < b.position; });
  Status first_failure;
  for (const auto& listed : *entries) {
    // Entries released by an earlier redrive in this loop are gone; parked ones behind a
    // still-failing entry stay (failed_precondition): neither is a failure of this call.
    auto entry = state_->store->get_dead_letter(listed.id);
    if (!entry) continue;
    Status st = r->redrive(*entry);
    if (st.is_ok() || st.code() == StatusCode::failed_precondition || st.code() == StatusCode::not_found) continue;
    if (first_failure.is_ok()) first_failure = st;
  }
  return first_failure;
}

Status EventBus::discard(std::int64_t dead_letter_id) {
  auto entry = state_->store->get_dead_letter(dead_letter_id);
  if (!entry) return entry.status();
  auto r = state_->runner(entry->handler);
  if (!r) {
    // No runner to release parked events to: just drop the entry.
    return state_->store->remove_dead_letter(dead_letter_id);
  }
  return r->discard(*entry);
}

std::vector<HandlerStatus> EventBus::handler_statuses() const {
  std::vector<std::shared_ptr<bus::HandlerRunner>> runners;
  {
    std::lock_guard lock(state_->mu);
    for (auto& [name, r] : state_->runners) runners.push_back(r);
  }
  std::vector<HandlerStatus> out;
  for (auto& r : runners) out.push_back(r->status());
  return out;
}

Result<HandlerStatus> EventBus::handler_status(std::string_view name) const {
  auto r = state_->runner(name);
  if (!r) return Status::not_found("no handler named '" + std::string(name) + "'");
  return r->status();
}

const std::string& EventBus::instance_id() const { return state_->instance_id; }

BusStats EventBus::stats() const {
  BusStats s;
  s.published_events = state_->counters.published_events.load(std::memory_order_relaxed);
  s.publish_calls = state_->counters.publish_calls.load(std::memory_order_relaxed);
  s.publish_failures = state_->counters.publish_failures.load(std::memory_order_relaxed);
  s.live_deliveries = state_->feed.deliveries();
  return s;
}

}  // namespace herald
