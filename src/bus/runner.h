// Internal: the durable side of the bus. A HandlerRunner owns one durable handler and its lanes;
// each Lane is one thread that reads the store from its checkpoint and calls the handler.
//
// Invariant that everything here protects: a lane's saved checkpoint never passes an event that
// has not been handled, dead-lettered or parked. Retrying events wait in the lane's `pending_`
// queue (per stream), so the lane keeps serving other streams while one stream backs off, and
// the checkpoint stays at or below the oldest pending event.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "bus/batch_cache.h"
#include "bus/dispatch_context.h"
#include "bus/tick_clock.h"
#include "herald/clock.h"
#include "herald/event_bus.h"

namespace herald::bus {

// Monotonic time on BusOptions::time (the steady clock unless a test gave a manual source).
using SteadyTime = TimeSource::TimePoint;

// A lane's cadences, all measured on BusOptions::time.
// Checkpoints are saved at most this often while events flow (and always on stop/reset), so the
// hot path does not pay a database write per event; a crash re-delivers at most this much work.
inline constexpr std::chrono::milliseconds kCheckpointInterval{100};
// Longest single wait on the store, so stop and reset requests are seen promptly.
inline constexpr std::chrono::milliseconds kMaxWaitSlice{100};
// Back-off after a store error in the lane loop.
inline constexpr std::chrono::milliseconds kStoreErrorBackoff{200};

// How often a lane renews its lease (and a standby lane asks for it): the poll interval, but at
// least three times per ttl so one slow renewal does not lose the lease.
inline std::chrono::milliseconds renew_every(const BusOptions& o) {
  return std::max(std::chrono::milliseconds(1), std::min(o.poll_interval, o.lease_ttl / 3));
}

// Failure counters of one handler, shared by its lanes and by redrive/replay calls (atomics:
// read by status calls without a lock; written off the hot path).
struct HandlerMetrics {
  std::atomic_int64_t failed{0};
  std::atomic_int64_t retried{0};
  std::atomic_int64_t dead_lettered{0};
};

// What every handle() call of one lane adds: successes and the latency histogram. Written only
// with the lane's call_mu held, so writers never overlap and a plain load-add-store is enough
// (no locked read-modify-write on the hot path); status calls read the atomics without a lock.
struct alignas(64) CallMetrics {
  std::atomic_int64_t processed{0};
  std::atomic_int64_t latency_counts[LatencyHistogram::kBuckets] = {};
  std::atomic_int64_t latency_count{0};
  std::atomic_int64_t latency_sum_us{0};

  // REQUIRES: the lane's call_mu held.
  void record(bool ok, std::int64_t us);
  // Adds this lane's figures to `h` and returns its processed count.
  std::int64_t add_to(LatencyHistogram& h) const;
};

class HandlerRunner;

// One partition (by stream hash) of a handler's events, run by one thread.
// The lease and fencing token a lane's writes carry (BusOptions::use_leases): each fenced write
// commits in one transaction with StoreTransaction::check_lease, so it is refused (lease_lost)
// once another instance took the lease. A null lease fences nothing.
struct WriteFence {
  const std::string* lease = nullptr;
  std::int64_t token = 0;
};

class Lane {
 public:
  Lane(HandlerRunner& runner, int index);
  ~Lane();
  Lane(const Lane&) = delete;
  Lane& operator=(const Lane&) = delete;

  void start();
  void wake();  // interrupts a sleep (stop or reset requested)
  void join();
  bool wait_exited(SteadyTime deadline);
  bool exited() const { return exited_.load(std::memory_order_acquire); }
  bool final_save_ok() const { return final_save_ok_.load(std::memory_order_acquire); }

  // Asks the lane thread to move its read position to `position` and drop pending retries.
  void request_reset(std::int64_t position);

  int index() const { return index_; }
  const std::string& checkpoint_name() const { return checkpoint_name_; }
  // Next position this lane will hand to the handler (lowest pending or read position).
  std::int64_t checkpoint() const { return checkpoint_.load(std::memory_order_acquire); }
  bool loaded() const { return loaded_.load(std::memory_order_acquire); }
  HandlerState state() const { return state_.load(std::memory_order_acquire); }
  bool reset_pending() const { return reset_pending_.load(std::memory_order_acquire); }
  // Whether this lane runs now: it holds its lease (always true while running without leases).
  bool active() const { return active_.load(std::memory_order_acquire); }

  // Held around every handle() call for this lane's streams, so a redrive or replay on a user
  // thread never runs the handler concurrently with this lane (a one-lane handler need not be
  // thread-safe). It also guards `dispatch` and the writes to `call_metrics`.
  std::mutex call_mu;
  DispatchContext dispatch;  // readied for each call; one per lane, so no per-call allocation
  CallMetrics call_metrics;  // see CallMetrics

 private:
  // Events of one stream waiting for a retry of their front event.
  struct Pending {
    std::deque<RecordedEvent> queue;  // in position order; front is the failing one
    int attempts = 0;                 // failed attempts of the front event so far
    SteadyTime due{};                 // when the front event may be tried again
    Timestamp first_failed{};
  };

  void run();
  void loop();
  bool hold_lease();
  // Drops what this lane was doing after its lease ended: another instance owns these events now.
  void lose_lease(const char* why);
  // Whether the lease is surely still ours: renewed less than ttl minus a safety margin ago.
  bool lease_fresh(SteadyTime now) const;
  Status load_position();
  // Writes the checkpoint `pos` (forward only, or any way when `rewind`), fenced by the lease
  // when leases are on; a lease_lost answer marks the lane fenced_.
  Status write_checkpoint(std::int64_t pos, bool rewind);
  WriteFence fence() const;
  // A write was refused by the fence: another instance owns the lane; the lane drops its work at
  // the next boundary of its loop (it never retries a refused write).
  void note_status(const Status& st) {
    if (st.code() == StatusCode::lease_lost) fenced_ = true;
  }
  void apply_reset();
  // `mark` (TickClock ticks): see HandlerRunner::invoke_in_lane.
  void handle_new(const RecordedEvent& e, std::int64_t& mark);
  void drain(Pending& p);
  // After attempt `attempt` of p.queue.front() failed with `st`: schedules a retry or
  // dead-letters it (parking the rest when configured). Returns true when the caller should go
  // on draining the queue.
  bool resolve_failure(Pending& p, const Status& st, int attempt);
  void process_due_retries();
  std::size_t queued() const;
  std::int64_t safe_position() const;
  void maybe_save(bool force);
  void sleep_until(SteadyTime t);
  std::optional<SteadyTime> next_due() const;

  HandlerRunner& runner_;
  const int index_;
  const std::string checkpoint_name_;
  std::thread thread_;

  // Published for status and stop() (written by the lane thread).
  std::atomic_int64_t checkpoint_{0};
  std::atomic_bool loaded_{false};
  std::atomic<HandlerState> state_{HandlerState::stopped};
  std::atomic_bool exited_{false};
  std::atomic_bool final_save_ok_{true};
  std::atomic_bool reset_pending_{false};  // a reset was asked and not applied yet
  std::atomic_bool active_{false};         // mirrors lease_held_ (or "running" without leases)

  // wake_mu_ guards reset_request_ and pairs with wake_cv_ for interruptible sleeps.
  std::mutex wake_mu_;
  std::condition_variable wake_cv_;
  std::optional<std::int64_t> reset_request_;

  // Lane-thread only.
  std::int64_t read_pos_ = 0;
  std::int64_t last_saved_ = -1;
  SteadyTime last_save_time_{};
  bool lease_held_ = false;
  std::int64_t lease_token_ = 0;  // the fencing token of the current holding, while lease_held_
  bool fenced_ = false;           // a write got lease_lost since the last loop boundary
  SteadyTime last_renew_{};  // when the last lease request was sent (the lease runs from there)
  std::map<std::string, Pending, std::less<>> pending_;
};

// A durable handler: its options, lanes, parked streams and metrics.
class HandlerRunner {
 public:
  HandlerRunner(std::shared_ptr<EventStore> store, const BusOptions& bus_options,
                std::string instance_id, std::shared_ptr<BatchCache> cache,
                std::shared_ptr<EventHandler> handler, HandlerOptions options);
  ~HandlerRunner();

  // Reconciles the stored lane layout with options().lanes, then starts the lane threads.
  Status start();
  void request_stop();
  // Waits for every lane to exit; false when the deadline passed first.
  bool wait_stopped(SteadyTime deadline);
  void join();
  // Whether every lane persisted its checkpoint when it exited.
  bool final_save_ok() const {
    for (const auto& lane : lanes_) {
      if (!lane->final_save_ok()) return false;
    }
    return true;
  }
  bool running() const { return started_.load(std::memory_order_acquire); }

  const std::string& name() const { return name_; }
  const HandlerOptions& options() const { return options_; }
  EventStore& store() const { return *store_; }
  // clock and time are never null (the bus fills in the defaults).
  const BusOptions& bus_options() const { return bus_options_; }
  TimeSource& time() const { return *bus_options_.time; }
  Timestamp wall_now() const { return bus_options_.clock->now(); }
  const std::string& instance_id() const { return instance_id_; }
  const ReadFilter& filter() const { return filter_; }
  BatchCache& cache() const { return *cache_; }
  const std::atomic_bool& stopping() const { return stopping_; }
  HandlerMetrics& metrics() { return metrics_; }

  std::string checkpoint_name(int lane, int lanes) const;
  int lane_of(std::string_view stream_id) const;
  bool wants(const RecordedEvent& e) const { return handler_->handles(e.type); }

  // Calls handle() once (under the lane's call_mu), catching exceptions, recording metrics and
  // logging a failure.
  Status invoke(const RecordedEvent& e, int attempt) { return invoke(e, attempt, lane_of(e.stream_id)); }
  // Same, when the caller already knows the event's lane; a lane thread passes its fence, so the
  // handler's exactly_once and check_lease are fenced (a user thread's redrive is not).
  Status invoke(const RecordedEvent& e, int attempt, int lane, WriteFence fence = {});
  // The lane's hot path: attempt 1, and when `checkpoint` is set, lets exactly_once commit
  // `*checkpoint` = e.position + 1 with its effects. `mark` is when the previous call of this lane
  // ended (or the lane's page loop began); it is the call's start, and is moved to its end. One
  // clock read per event instead of two: the latency then includes the lane's own per-event
  // bookkeeping, tens of nanoseconds.
  Status invoke_in_lane(const RecordedEvent& e, int lane, const std::string* checkpoint, std::int64_t& mark,
                        WriteFence fence);
  void note_error(const RecordedEvent& e, int attempt, const Status& st);

  // ---- parked streams (dead_letters.cpp) ----
  // fenced: the write was refused because another instance holds the lane's lease.
  enum class ParkResult { not_parked, parked, error, fenced };
  // Parks `e` when its stream is parked for this handler.
  ParkResult park_if_parked(const RecordedEvent& e, WriteFence fence = {});
  // Dead-letters `e` (and parks its stream when configured). Returns the store's error if any.
  Status add_dead_letter(const RecordedEvent& e, int attempts, const Status& error,
                         Timestamp first_failed, WriteFence fence = {});
  // Re-reads which streams of lane `lane` (all when -1) are parked, from the store.
  Status reload_parked(int lane);
  // Runs parked entries of `stream` whose turn has come; unparks the stream when none is left.
  Status release_parked(const std::string& stream);
  // On a lane's (re)start: releases its streams whose first entry is a parked one (the failed
  // entry ahead of it was redriven or discarded just before a crash).
  void release_orphans(int lane);
  Status redrive(const DeadLetter& entry);
  Status discard(const DeadLetter& entry);
  std::int64_t parked_count() const { return parked_count_.load(std::memory_order_relaxed); }

  // ---- replay ----
  Status reset_checkpoint(std::int64_t position);
  ReplayProgress progress() const;
  Status replay_range(std::int64_t from, std::int64_t to,
                      const std::function<void(const ReplayProgress&)>& progress);

  HandlerStatus status() const;
  // Committed events this handler has not handled yet (summed over lanes).
  std::int64_t pending_events() const;

 private:
  friend class Lane;
  Status reconcile_lane_layout();
  Status call(const RecordedEvent& e, int attempt, int lane, const std::string* checkpoint, std::int64_t* mark,
              WriteFence fence);
  Result<RecordedEvent> read_event(std::int64_t position, std::string_view event_id);
  Result<std::int64_t> store_dead_letter(const DeadLetter& dl, WriteFence fence);
  std::vector<std::int64_t> lane_checkpoints() const;
  Status run_parked_entry(DeadLetter entry);

  // Constant after construction.
  const std::shared_ptr<EventStore> store_;
  const BusOptions bus_options_;
  const std::string instance_id_;
  const std::shared_ptr<BatchCache> cache_;
  const std::shared_ptr<EventHandler> handler_;
  const HandlerOptions options_;
  const std::string name_;
  const TickClock& clock_;  // latency timestamps
  ReadFilter filter_;
  std::vector<std::unique_ptr<Lane>> lanes_;  // created in the constructor, never resized

  std::atomic_bool stopping_{false};
  std::atomic_bool started_{false};
  // stop_mu_ pairs with stop_cv_, which request_stop() notifies (after setting stopping_), so a
  // replay_range waiting for a retry on the caller's thread ends at once.
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  HandlerMetrics metrics_;

  // park_mu_ guards parked_streams_: a lane adding a parked entry and a redrive unparking the
  // stream decide under it, so no parked entry is left behind an unparked stream.
  // parked_stream_count_ mirrors its size for the lanes' lock-free fast path (only a stream's own
  // lane can park it, so "0" cannot turn stale for that lane).
  mutable std::mutex park_mu_;
  std::set<std::string, std::less<>> parked_streams_;
  std::atomic_int64_t parked_stream_count_{0};
  std::atomic_int64_t parked_count_{0};  // parked dead-letter entries

  // Serializes redrive/discard of this handler's entries.
  std::mutex redrive_mu_;

  // status_mu_ guards last_error_ and the last reset's range.
  mutable std::mutex status_mu_;
  std::string last_error_;
  std::optional<std::int64_t> reset_from_;
  std::int64_t reset_target_ = -1;  // head position when the reset was asked
};

}  // namespace herald::bus
