// herald/event_bus.h — the event bus: durable subscriptions on the store, live in-process
// subscriptions, retries, dead letters, replay, observability and graceful stop.
//
// Delivery: publish() appends durably and returns without waiting for any handler. Each durable
// handler has a runner that reads the store from its checkpoint, in position order, so an event is
// handled because it is in the store: a crash between append and handling is recovered on restart.
// Each handler sees each event of its types at least once, in order within a stream; with
// HandlerContext::exactly_once its effects in the store happen exactly once.
//
//   auto store = herald::open_store("sqlite:///var/lib/shop/events.db");
//   herald::EventBus bus(std::shared_ptr<herald::EventStore>(std::move(*store)));
//   bus.register_handler(std::make_shared<SendWelcomeEmail>());
//   bus.start();
//   bus.publish("user-1", herald::ExpectedVersion::no_stream(), {herald::to_event(registered)});
//   auto sub = bus.subscribe("UserRegistered", [](const herald::RecordedEvent& e) { … });
//   …
//   auto report = bus.stop(std::chrono::steady_clock::now() + std::chrono::seconds(5));
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "herald/event_store.h"
#include "herald/handler.h"

namespace herald {

// Where a durable handler with no saved checkpoint starts.
enum class StartFrom : std::uint8_t { beginning, end };

// Per-handler options. Default: values shown.
struct HandlerOptions {
  RetryPolicy retry;
  // Parallel lanes; events are partitioned by stream (hash of stream id), so each stream stays
  // in order. REQUIRES: 1 <= lanes <= 64.
  // Each lane has its own checkpoint, "<handler>#<lane>/<lanes>" ("<handler>" with one lane).
  // Changing the count between runs restarts every lane from the lowest old checkpoint: nothing
  // is skipped, some events may be handled again (logged as a warning).
  int lanes = 1;
  // Once an event of stream S is dead-lettered, park this handler's later events of S behind it.
  bool park_stream_after_dead_letter = true;
  StartFrom start_from = StartFrom::beginning;
  std::size_t batch_size = 512;  // events read from the store per step
};

// Bus-wide options.
struct BusOptions {
  // This process's identity for leases (several instances on one database). Empty: a fresh UUID.
  std::string instance_id;
  // Take a lease per handler lane before running it, so one instance at a time runs it.
  bool use_leases = false;
  std::chrono::milliseconds lease_ttl{5'000};
  // How long a runner waits on the store before looking again (also the lease renewal cadence).
  std::chrono::milliseconds poll_interval{500};
};

enum class HandlerState : std::uint8_t { running, catching_up, retrying, parked, stopped, failed };
std::string_view to_string(HandlerState s);

// Latency of handle() calls, in fixed buckets (upper bounds in microseconds).
struct LatencyHistogram {
  static constexpr std::int64_t kBucketUpperUs[] = {50, 100, 250, 500, 1'000, 2'500, 5'000,
                                                    10'000, 25'000, 50'000, 100'000, 250'000,
                                                    500'000, 1'000'000, 2'500'000, 10'000'000};
  static constexpr std::size_t kBuckets = std::size(kBucketUpperUs) + 1;  // last one: +Inf
  std::int64_t counts[kBuckets] = {};  // not cumulative
  std::int64_t count = 0;
  std::int64_t sum_us = 0;
};

struct HandlerStatus {
  std::string name;
  HandlerState state = HandlerState::stopped;
  int lanes = 1;
  // Lanes this instance runs now: those whose lease it holds (with BusOptions::use_leases), else
  // every started lane. 0 on a standby instance.
  int active_lanes = 0;
  std::int64_t checkpoint = 0;  // next position to handle (the lowest over its lanes)
  std::int64_t lag = 0;         // head position + 1 - checkpoint, never negative
  std::int64_t processed = 0;   // handled successfully
  std::int64_t failed = 0;      // calls that returned an error (each attempt counts)
  std::int64_t retried = 0;     // retries scheduled
  std::int64_t dead_lettered = 0;
  std::int64_t parked = 0;      // events now parked behind a dead letter
  LatencyHistogram latency;
  std::string last_error;
};

// Appends made through the bus: publish() and every append through store() (modules' commands,
// handlers' follow-up events), so published_events equals the events this process wrote.
struct BusStats {
  std::int64_t published_events = 0;
  std::int64_t publish_calls = 0;
  std::int64_t publish_failures = 0;
  std::int64_t live_deliveries = 0;  // calls made to subscribe() callbacks
};

// Progress of a replay or reset, by handler.
struct ReplayProgress {
  std::string handler;
  std::int64_t done = 0;
  std::int64_t total = 0;
  bool finished = false;
};

// What stop() could not finish before its deadline.
struct StopReport {
  bool clean = true;                      // every runner stopped and persisted its checkpoint
  std::vector<std::string> unfinished;    // handlers with a call still in flight at the deadline
  std::int64_t pending_events = 0;        // committed events not yet handled, over all handlers
};

class EventBus;

// Ends a live subscription when destroyed or on unsubscribe(). Movable, not copyable.
class Subscription {
 public:
  Subscription() = default;
  Subscription(Subscription&&) noexcept;
  Subscription& operator=(Subscription&&) noexcept;
  ~Subscription();
  void unsubscribe();
  bool active() const { return active_ != nullptr; }

 private:
  friend class EventBus;
  struct Impl;
  explicit Subscription(std::shared_ptr<Impl> impl) : active_(std::move(impl)) {}
  std::shared_ptr<Impl> active_;
};

// The bus. Thread-safety: every method may be called from any thread.
class EventBus {
 public:
  // The bus shares the store with its owner. Nothing runs until start().
  explicit EventBus(std::shared_ptr<EventStore> store, BusOptions options = {});
  ~EventBus();  // stop() with a 5 s deadline if still running
  EventBus(const EventBus&) = delete;
  EventBus& operator=(const EventBus&) = delete;

  // The bus's view of the store it was given: every call forwards to it, and every append through
  // it counts in stats() as published. Give it to code that writes events (modules, repositories)
  // so that the bus's figures cover them. Lives as long as the bus; thread-safe like the store.
  EventStore& store() const;
  std::shared_ptr<EventStore> shared_store() const;

  // Appends durably (EventStore::append), then returns; never waits for handlers.
  Result<AppendResult> publish(std::string_view stream_id, ExpectedVersion expected,
                               std::vector<EventData> events);

  // Live, in-process, not durable: `fn` is called for each event of `type` ("*" for all)
  // committed after this call, from a bus thread, in position order. Exceptions from `fn` are
  // caught and logged. The subscription ends when the returned handle is dropped.
  // An empty type or a null fn gives an inactive handle.
  Subscription subscribe(std::string type, std::function<void(const RecordedEvent&)> fn);

  // Makes `handler` a durable subscriber. Starts it at once when the bus is running.
  // already_exists for a duplicate name; invalid_argument for bad options.
  Status register_handler(std::shared_ptr<EventHandler> handler, HandlerOptions options = {});
  // Stops the handler's runner (waiting for an in-flight call) and forgets it; its checkpoint
  // and dead letters stay in the store. not_found when absent.
  Status unregister_handler(std::string_view name);
  std::vector<std::string> handler_names() const;

  // Starts every registered handler's runner and the live-subscription feed. Idempotent.
  Status start();
  // Takes no new work, lets in-flight calls finish until `deadline`, persists checkpoints.
  // Idempotent; after it the bus cannot be started again. A handler still inside a call at the
  // deadline is listed in `unfinished`; the bus's destructor then waits for that call to return.
  StopReport stop(std::chrono::steady_clock::time_point deadline);

  // Replay: move a handler's checkpoint back (or forward) to `position`, or to the first event
  // recorded at or after `time`, and let it catch up. not_found for an unknown handler.
  Status reset_checkpoint(std::string_view handler, std::int64_t position);
  Status reset_checkpoint_to_time(std::string_view handler, Timestamp time);
  // Runs the handler over positions [from, to) on the calling thread, without touching its
  // checkpoint; failures follow its retry policy and end in dead letters. `progress` (may be
  // null) is called after each event.
  Status replay_range(std::string_view handler, std::int64_t from, std::int64_t to,
                      const std::function<void(const ReplayProgress&)>& progress = nullptr);
  // Progress of the last reset (catching up to the head), per handler.
  Result<ReplayProgress> replay_progress(std::string_view handler) const;

  // Dead letters (durable in the store).
  Result<std::vector<DeadLetter>> dead_letters(std::string_view handler = {}) const;
  // Runs the handler again on that entry's event now, on the calling thread. Success removes the
  // entry (and releases events parked behind it, in order); failure keeps it with attempts + 1
  // and returns the handler's error.
  Status redrive(std::int64_t dead_letter_id);
  // Redrives each of a handler's entries in position order; returns the first failure.
  Status redrive_all(std::string_view handler);
  // Drops the entry without running the handler; parked events behind it then run.
  Status discard(std::int64_t dead_letter_id);

  // Observability.
  std::vector<HandlerStatus> handler_statuses() const;
  Result<HandlerStatus> handler_status(std::string_view name) const;
  BusStats stats() const;
  // This process's lease owner id (BusOptions::instance_id, or the UUID made for it).
  const std::string& instance_id() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace herald
