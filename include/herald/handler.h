// herald/handler.h — the event-handler framework: handler interface, context, retry policy,
// registry.
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
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "herald/event.h"
#include "herald/event_store.h"
#include "herald/status.h"

namespace herald {

namespace bus {
class HandlerRunner;
}

// What a handler gets besides the event. Created by the bus for one call of handle(); valid only
// during that call; used by that call's thread only.
class HandlerContext {
 public:
  HandlerContext(EventStore& store, std::string handler_name, int attempt,
                 const std::atomic_bool* stopping)
      : store_(store), handler_name_(std::move(handler_name)), attempt_(attempt), stopping_(stopping) {}

  EventStore& store() const { return store_; }
  const std::string& handler_name() const { return handler_name_; }
  int attempt() const { return attempt_; }  // 1 on the first try
  // True once the bus is shutting down: long handlers should return (cancelled) soon.
  bool stopping() const { return stopping_ != nullptr && stopping_->load(std::memory_order_relaxed); }

  // Exactly-once effects: runs `work` in one store transaction that also records
  // (handler, event.id) in the inbox. When the inbox already has it, `work` is not run and ok is
  // returned. `work`'s own writes (documents, checkpoint) commit with the inbox record or not at all.
  Status exactly_once(const RecordedEvent& event,
                      const std::function<Status(StoreTransaction&)>& work);

  // Set by the bus when it is safe to commit the handler's checkpoint with the effects: no
  // earlier event of this lane is still pending. exactly_once then also saves `*subscription` =
  // `position` in its transaction, so a crash right after it does not hand the event out again.
  // `subscription` must outlive this context; null (the default) saves nothing.
  void set_checkpoint_hint(const std::string* subscription, std::int64_t position) {
    checkpoint_name_ = subscription;
    checkpoint_position_ = position;
  }

 private:
  // The bus keeps one context per lane and readies it for each call (no per-call allocation).
  friend class bus::HandlerRunner;
  void begin_call(int attempt, const std::string* subscription, std::int64_t position) {
    attempt_ = attempt;
    set_checkpoint_hint(subscription, position);
  }

  EventStore& store_;
  std::string handler_name_;
  int attempt_;
  const std::atomic_bool* stopping_;
  const std::string* checkpoint_name_ = nullptr;
  std::int64_t checkpoint_position_ = 0;
};

// A durable subscriber. Implementations must be thread-safe when the handler runs with more than
// one lane (handle() is then called concurrently for different streams).
class EventHandler {
 public:
  virtual ~EventHandler() = default;
  // Unique within a bus; also the name of its checkpoint, dead letters and inbox records.
  virtual std::string name() const = 0;
  // The event types it wants; empty means every type.
  virtual std::vector<std::string> event_types() const = 0;
  virtual Status handle(const RecordedEvent& event, HandlerContext& ctx) = 0;

  bool handles(std::string_view type) const;
};

// How a handler's failures are retried. Default: 5 attempts, 100 ms doubling to at most 10 s,
// ±20% jitter.
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

  static RetryPolicy no_retry() {
    RetryPolicy p;
    p.max_attempts = 1;
    return p;
  }
  static RetryPolicy fixed_delays(std::vector<std::chrono::milliseconds> list, int max_attempts) {
    RetryPolicy p;
    p.delays = std::move(list);
    p.max_attempts = max_attempts;
    return p;
  }

  bool is_retryable(const Status& s) const { return retryable ? retryable(s) : is_retryable_by_default(s); }
  // The delay before the retry that follows failed attempt `attempt` (1-based). `unit_random` is a
  // number in [0, 1) used for jitter.
  std::chrono::milliseconds delay_after(int attempt, double unit_random) const;

  // unavailable, timeout, wrong_expected_version and internal are retryable; the rest permanent.
  static bool is_retryable_by_default(const Status& s);
};

// Handlers by name. Thread-safe: every method takes an internal mutex.
class HandlerRegistry {
 public:
  // already_exists for a duplicate name; invalid_argument for a null handler or an empty name.
  Status add(std::shared_ptr<EventHandler> handler);
  // not_found when absent.
  Status remove(std::string_view name);
  std::shared_ptr<EventHandler> find(std::string_view name) const;
  std::vector<std::shared_ptr<EventHandler>> list() const;  // in name order

 private:
  mutable std::mutex mu_;
  std::vector<std::shared_ptr<EventHandler>> handlers_;  // guarded by mu_, sorted by name
};

}  // namespace herald
