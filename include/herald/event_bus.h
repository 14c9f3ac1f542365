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

#include "herald/clock.h"
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

// Bus-wide options; copied by the bus, then only read.
struct BusOptions {
  // This process's identity for leases (several instances on one database). Empty: a fresh UUID.
  std::string instance_id;
  // Take a lease per handler lane before running it, so one instance at a time runs it.
  bool use_leases = false;
  std::chrono::milliseconds lease_ttl{5'000};
  // How long a runner waits on the store before looking again (also the lease renewal cadence).
  std::chrono::milliseconds poll_interval{500};
  // Wall time of what the bus records: a dead letter's first and last failure. Null:
  // system_clock().
  std::shared_ptr<Clock> clock;
  // Monotonic time and waits for everything the bus schedules: retry delays (in the lanes and in
  // replay_range), lease renewal and freshness, poll and store-error back-off, the cadence of
  // checkpoint saves. Null: steady_time_source(). With a ManualTimeSource none of these moves
  // until advance() (leases: give the store a clock advanced with it, StoreOptions::clock).
  // Not used for stop()'s deadline, which is the caller's real time, nor for handler latency.
  std::shared_ptr<TimeSource> time;
};

enum class HandlerState : std::uint8_t { running, catching_up, retrying, parked, stopped, failed };
// The enumerator's name ("running", …; "unknown" for a value outside the enum). Static storage.
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
namespace bus {
struct LiveSubscription;
struct BusState;
}  // namespace bus

// Ends a live subscription when destroyed or on unsubscribe(). Movable, not copyable; one handle
// is used by one thread at a time (it may be moved to another). [[nodiscard]]: a handle dropped
// at once ends its subscription at once, which is never what the caller meant.
class [[nodiscard]] Subscription {
 public:
  // An inactive handle.
  Subscription() = default;
  // Takes `other`'s subscription; `other` becomes inactive.
  Subscription(Subscription&& other) noexcept;
  // Ends this handle's subscription (if any), then takes `other`'s.
  Subscription& operator=(Subscription&& other) noexcept;
  ~Subscription();  // unsubscribe()
  // Ends the subscription: when it returns, the callback is not running and is never called
  // again (unless called from inside the callback, which then finishes its current call).
  // Idempotent; valid after the bus is gone.
  void unsubscribe();
  // Whether the handle still holds a subscription (false after unsubscribe or a move).
  bool active() const { return active_ != nullptr; }

 private:
  friend class EventBus;
  explicit Subscription(std::shared_ptr<bus::LiveSubscription> sub) : active_(std::move(sub)) {}
  std::shared_ptr<bus::LiveSubscription> active_;  // shared with the bus's live feed
};

// The bus. Thread-safety: every method may be called from any thread, concurrently. Failures are
// returned as Status codes, never thrown; an unknown handler name is not_found.
class EventBus {
 public:
  // The bus shares the store with its owner (and every thread the store needs). Nothing runs
  // until start(). `options` are copied.
  explicit EventBus(std::shared_ptr<EventStore> store, BusOptions options = {});
  // stop() with a 5 s deadline (real time) if still running; then waits for any call still in
  // flight to return.
  ~EventBus();
  EventBus(const EventBus&) = delete;
  EventBus& operator=(const EventBus&) = delete;

  // The bus's view of the store it was given: every call forwards to it, and every append through
  // it counts in stats() as published. Give it to code that writes events (modules, repositories)
  // so that the bus's figures cover them. Lives as long as the bus; thread-safe like the store.
  EventStore& store() const;
  // The same view, shared: it may outlive the bus (and then only stops counting for nobody).
  std::shared_ptr<EventStore> shared_store() const;

  // Appends durably (EventStore::append through store()), then returns; never waits for
  // handlers. Success and failure are the store's (wrong_expected_version, invalid_argument, …);
  // nothing is written on failure.
  Result<AppendResult> publish(std::string_view stream_id, ExpectedVersion expected,
                               std::vector<EventData> events);

  // Live, in-process, not durable: `fn` is called for each event of `type` ("*" for all)
  // committed after this call, from the bus's one feed thread, in position order, once the bus
  // is started. Exceptions from `fn` are caught and logged. The subscription ends when the
  // returned handle is dropped or unsubscribed. An empty type or a null fn gives an inactive
  // handle. `fn` is kept (shared) until then.
  [[nodiscard]] Subscription subscribe(std::string type, std::function<void(const RecordedEvent&)> fn);

  // Makes `handler` (shared with the caller) a durable subscriber; starts it at once when the
  // bus is running. Failure: invalid_argument for a null handler, an empty name or bad options
  // (see HandlerOptions, RetryPolicy); already_exists for a duplicate name; failed_precondition
  // after stop(); the store's error when starting it fails. Nothing is registered on failure.
  Status register_handler(std::shared_ptr<EventHandler> handler, HandlerOptions options = {});
  // Stops the handler's runner (blocking until an in-flight call returns) and forgets it; its
  // checkpoint and dead letters stay in the store. not_found when absent.
  Status unregister_handler(std::string_view name);
  // The registered handlers' names, sorted.
  std::vector<std::string> handler_names() const;

  // Starts every registered handler's runner and the live-subscription feed. Idempotent while
  // running. Failure: failed_precondition after stop(); the store's error when a runner cannot
  // load its state (then nothing is left running).
  Status start();
  // Takes no new work, lets in-flight calls finish until `deadline` (real steady time: it bounds
  // the caller's wait for threads, not the bus's schedule), persists checkpoints, releases
  // leases. Idempotent (a second call returns the first report); after it the bus cannot be
  // started again. A handler still inside a call at the deadline is listed in `unfinished`; the
  // bus's destructor then waits for that call to return.
  StopReport stop(std::chrono::steady_clock::time_point deadline);

  // Replay: moves a handler's checkpoint back (or forward) to `position` and lets it catch up
  // (at once when running, else at start). Retries pending for the skipped range are dropped.
  // invalid_argument for a position outside [0, head + 1]; the store's error when writing the
  // checkpoint of a stopped handler fails.
  Status reset_checkpoint(std::string_view handler, std::int64_t position);
  // The same, to the first event recorded at or after `time` (head + 1 when none).
  Status reset_checkpoint_to_time(std::string_view handler, Timestamp time);
  // Runs the handler over positions [from, to) on the calling thread (serialized with its lanes'
  // calls), without touching its checkpoint. Each failure is decided as in the handler's lanes
  // (one rule for both): retried after the policy's delay (waited on BusOptions::time) or
  // dead-lettered, parking its stream when configured. `progress` (may be null) is called on this
  // thread after each event.
  // invalid_argument for from < 0 or to < from; the store's error when reading or dead-lettering
  // fails (events before it were handled); cancelled when the bus stops while an event waits for
  // a retry or the handler returned cancelled because of the stop (that event is left as it is).
  Status replay_range(std::string_view handler, std::int64_t from, std::int64_t to,
                      const std::function<void(const ReplayProgress&)>& progress = nullptr);
  // Progress of the last reset (catching up to the head as it was at the reset), per handler;
  // finished (0 of 0) when there was none.
  Result<ReplayProgress> replay_progress(std::string_view handler) const;

  // Dead letters (durable in the store), in id order; all handlers' when `handler` is empty.
  Result<std::vector<DeadLetter>> dead_letters(std::string_view handler = {}) const;
  // Runs the handler again on that entry's event now, on the calling thread. Success removes the
  // entry (and releases events parked behind it, in order); failure keeps it with attempts + 1
  // and returns the handler's error. not_found for an unknown id; failed_precondition when the
  // entry waits behind an earlier one of its stream or its handler is not registered here.
  Status redrive(std::int64_t dead_letter_id);
  // Redrives each of a handler's entries in position order; returns the first failure (entries
  // still parked behind a failing one are not failures).
  Status redrive_all(std::string_view handler);
  // Drops the entry without running the handler; parked events behind it then run (on this
  // thread). not_found for an unknown id.
  Status discard(std::int64_t dead_letter_id);

  // Observability; cheap (atomics and one head read per handler), safe from any thread.
  std::vector<HandlerStatus> handler_statuses() const;
  Result<HandlerStatus> handler_status(std::string_view name) const;
  BusStats stats() const;
  // This process's lease owner id (BusOptions::instance_id, or the UUID made for it); lives as
  // long as the bus.
  const std::string& instance_id() const;

 private:
  std::unique_ptr<bus::BusState> state_;
};

}  // namespace herald
