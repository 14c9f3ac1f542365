// herald/handler.h — the event-handler framework: handler interface, context, retry policy.
//
//   class SendWelcomeEmail final : public herald::EventHandler {
//    public:
//     std::string name() const override { return "notifications.send_welcome_email"; }
//     std::vector<std::string> event_types() const override { return {"UserRegistered"}; }
//     herald::Status handle(const herald::RecordedEvent& e, herald::HandlerContext& ctx) override;
//   };
//
// A handler reports failure by returning a Status: codes the RetryPolicy calls retryable
// (unavailable, timeout, wrong_expected_version, internal by default) are retried with backoff;
// the others (permanent, invalid_argument, corruption, …) go straight to the dead letters.
// An exception thrown from handle() is caught by the bus and treated as internal.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "herald/event.h"
#include "herald/event_store.h"
#include "herald/status.h"

namespace herald {

namespace bus {
class DispatchContext;
}

// What a handler gets besides the event. The bus makes one for each handler lane (another
// dispatcher makes its own through src/bus/dispatch_context.h) and readies it before each call of
// handle(); a handler may use it only during that call and only on that call's thread. It is not
// copyable and a handler cannot make one: it holds the store and the checkpoint the call may
// commit.
class HandlerContext {
 public:
  HandlerContext(const HandlerContext&) = delete;
  HandlerContext& operator=(const HandlerContext&) = delete;

  // The store the handler's effects go to (the bus's view of it, so appends count as published).
  // Lives at least as long as the bus; thread-safe like any EventStore.
  EventStore& store() const { return store_; }
  // The handler's name(): the key of its inbox records, checkpoint and dead letters.
  const std::string& handler_name() const { return handler_name_; }
  // 1 on the first try of this event, 2 on the first retry, …; a redrive continues the count.
  int attempt() const { return attempt_; }
  // True once the bus is shutting down: a long handler should return Status::cancelled soon (the
  // event then stays unhandled and comes again after a restart). Safe to poll from the call.
  bool stopping() const { return stopping_ != nullptr && stopping_->load(std::memory_order_relaxed); }

  // Exactly-once effects: runs `work` in one store transaction that also records
  // (handler_name(), event.id) in the inbox, and returns its result.
  // Success: ok when `work` ran and its writes committed together with the inbox record (and,
  // when the bus knows every earlier event of the lane is settled, with the lane's checkpoint
  // just past `event`, so a crash right after does not hand the event out again); also ok,
  // without calling `work`, when the inbox already holds the pair (the effect committed before).
  // Failure: invalid_argument for an empty `work`; `work`'s own error, or the store's error
  // (unavailable, timeout, …), and then nothing of `work` nor the inbox record is written.
  // `work` runs on the calling thread, inside the store's transaction: it must not call
  // transact() or wait for another thread that writes to the same store.
  // When the bus runs with leases (BusOptions::use_leases), the transaction first checks that
  // this lane's lease is still held under the fencing token of this call (see check_lease), so a
  // paused instance whose lease passed to another one commits nothing: lease_lost, and the bus
  // stops the lane at once.
  Status exactly_once(const RecordedEvent& event,
                      const std::function<Status(StoreTransaction&)>& work);

  // For effects outside the store (an e-mail, a call to another service): call it immediately
  // before acting. ok when the dispatcher fenced nothing (no leases) or this call's lease is still
  // held under the token it was dispatched with; lease_lost when another instance took the lease
  // meanwhile (return that status: the bus stops the lane, and the new owner handles the event);
  // the store's error (unavailable, …) otherwise. It narrows the window of a duplicate effect to
  // the time between this check and the effect; it cannot close it (see docs/distributed.md).
  Status check_lease() const;

 private:
  // Made and readied only by bus::DispatchContext (src/bus/dispatch_context.h).
  friend class bus::DispatchContext;
  HandlerContext(EventStore& store, std::string handler_name, const std::atomic_bool* stopping)
      : store_(store), handler_name_(std::move(handler_name)), stopping_(stopping) {}
  ~HandlerContext() = default;

  EventStore& store_;
  std::string handler_name_;
  int attempt_ = 1;
  const std::atomic_bool* stopping_;
  // When set, exactly_once also saves *checkpoint_name_ = checkpoint_position_ in its transaction.
  const std::string* checkpoint_name_ = nullptr;
  std::int64_t checkpoint_position_ = 0;
  // When set, the lease whose fencing token fence_token_ every fenced write checks.
  const std::string* fence_lease_ = nullptr;
  std::int64_t fence_token_ = 0;
};

// A durable subscriber, shared with the bus by shared_ptr (the bus keeps it until
// unregister_handler or its own destruction). handle() is called from a bus thread, one call at a
// time per lane: with HandlerOptions::lanes > 1 it is called concurrently for different streams,
// so it must then be thread-safe; name() and event_types() may be called from any thread.
class EventHandler {
 public:
  virtual ~EventHandler() = default;
  // Unique within a bus, not empty, constant for the handler's life; also the name of its
  // checkpoint, dead letters and inbox records, so renaming a handler restarts it.
  virtual std::string name() const = 0;
  // The event types it wants; empty means every type. Read once when the handler is registered.
  virtual std::vector<std::string> event_types() const = 0;
  // Handles one event. ok: done, the checkpoint may move past it. An error: the bus retries it
  // (RetryPolicy::is_retryable) or dead-letters it; cancelled while ctx.stopping() leaves it for
  // the next run. An exception counts as internal. `event` and `ctx` are valid only during the
  // call.
  virtual Status handle(const RecordedEvent& event, HandlerContext& ctx) = 0;

  // Whether `type` is one of event_types() (always true when that is empty). Calls
  // event_types(); thread-safe when it is.
  bool handles(std::string_view type) const;
};

// How a handler's failures are retried. Default: 5 attempts, 100 ms doubling to at most 10 s,
// ±20% jitter. A plain value: copied into HandlerOptions and then only read (from the handler's
// lane threads and from redrive/replay callers), so `retryable` must be thread-safe.
// EventBus::register_handler rejects (invalid_argument) max_attempts < 1, negative delays,
// multiplier < 1 and jitter outside [0, 1].
struct RetryPolicy {
  int max_attempts = 5;  // total calls, the first included; 1 means no retry
  std::chrono::milliseconds initial_delay{100};
  double multiplier = 2.0;
  std::chrono::milliseconds max_delay{10'000};
  double jitter = 0.2;  // each delay is scaled by a random factor in [1 - jitter, 1 + jitter]
  // When not empty, the delay before retry k (k = 1, 2, …) is delays[min(k, size) - 1] instead.
  std::vector<std::chrono::milliseconds> delays;
  // Which failures are worth retrying; null uses is_retryable_by_default.
  std::function<bool(const Status&)> retryable;

  // One attempt: every failure goes straight to the dead letters.
  static RetryPolicy no_retry() {
    RetryPolicy p;
    p.max_attempts = 1;
    return p;
  }
  // The given delays, taken literally (no jitter, the last one repeats), for `max_attempts` calls.
  static RetryPolicy fixed_delays(std::vector<std::chrono::milliseconds> list, int max_attempts) {
    RetryPolicy p;
    p.delays = std::move(list);
    p.max_attempts = max_attempts;
    return p;
  }

  // Whether failure `s` is worth another attempt (`retryable`, else is_retryable_by_default).
  bool is_retryable(const Status& s) const { return retryable ? retryable(s) : is_retryable_by_default(s); }
  // The delay before the retry that follows failed attempt `attempt` (1-based). `unit_random` is a
  // number in [0, 1) used for jitter (values outside are clamped). Never negative, never above
  // max_delay (unless `delays` says so). Pure: thread-safe.
  std::chrono::milliseconds delay_after(int attempt, double unit_random) const;

  // unavailable, timeout, wrong_expected_version and internal are retryable; the rest permanent.
  static bool is_retryable_by_default(const Status& s);
};

}  // namespace herald
