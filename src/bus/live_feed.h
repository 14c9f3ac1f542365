// Internal: the live, in-process side of the bus (EventBus::subscribe). One thread tails the
// store and calls the callbacks; nothing about it is durable.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bus/batch_cache.h"
#include "herald/event_bus.h"

namespace herald {

namespace bus {

// One live subscription. Shared by the Subscription handle and the feed, so either may go first.
struct LiveSubscription {
  std::string type;  // "*" for all
  std::int64_t from_position = 0;  // the first position it may see (head + 1 when subscribed)
  std::function<void(const RecordedEvent&)> fn;
  // mu is held while fn runs and while unsubscribing, so after unsubscribe() returns fn is never
  // called again. Recursive: a callback may drop its own subscription.
  std::recursive_mutex mu;
  bool active = true;  // guarded by mu
  std::atomic_bool dropped{false};  // set after unsubscribe, read by the feed to prune

  // Ends the subscription; after it returns, fn is not called again (unless from inside fn).
  void end();
};

class LiveFeed {
 public:
  LiveFeed(std::shared_ptr<EventStore> store, std::shared_ptr<BatchCache> cache)
      : store_(std::move(store)), cache_(std::move(cache)) {}
  ~LiveFeed() { stop(); }

  std::shared_ptr<LiveSubscription> add(std::string type, std::function<void(const RecordedEvent&)> fn);
  void start();
  void stop();  // joins the thread; idempotent
  std::int64_t deliveries() const { return deliveries_.load(std::memory_order_relaxed); }

 private:
  void run();

  const std::shared_ptr<EventStore> store_;
  const std::shared_ptr<BatchCache> cache_;
  std::thread thread_;
  std::atomic_bool stopping_{false};
  std::atomic_int64_t deliveries_{0};
  // subs_mu_ guards subs_ and started_. A subscription's from_position is taken under it, and
  // the feed reads the head and snapshots subs_ under it too, so a new subscription is never
  // skipped by the feed jumping ahead while nobody was listening.
  std::mutex subs_mu_;
  std::vector<std::shared_ptr<LiveSubscription>> subs_;
  bool started_ = false;
  std::int64_t next_position_ = 0;  // the feed thread's cursor (set before the thread starts)
};

}  // namespace bus
}  // namespace herald
