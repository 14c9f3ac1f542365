#include "store/head_signal.h"

#include <algorithm>
#include <utility>

namespace herald::detail {

HeadSignal::HeadSignal(std::string backend, std::function<void()> on_first_waiter)
    : backend_(std::move(backend)), on_first_waiter_(std::move(on_first_waiter)) {}

void HeadSignal::publish(std::int64_t position) {
  if (position <= head_.load(std::memory_order_acquire)) return;
  {
    std::lock_guard lock(mu_);
    if (position <= head_.load(std::memory_order_relaxed)) return;
    head_.store(position, std::memory_order_release);
  }
  moved_.notify_all();
}

void HeadSignal::close() {
  {
    std::lock_guard lock(mu_);
    closed_.store(true, std::memory_order_release);
  }
  moved_.notify_all();
}

Status HeadSignal::wait_for(std::int64_t after_position, std::chrono::milliseconds timeout) {
  // A year stands in for "forever": steady_clock::now() + milliseconds::max() would overflow.
  const auto capped = std::min(timeout, std::chrono::milliseconds(std::chrono::hours(24 * 366)));
  const auto deadline = std::chrono::steady_clock::now() + capped;
  std::unique_lock lock(mu_);
  if (waiters_++ == 0 && on_first_waiter_) on_first_waiter_();
  const bool moved = moved_.wait_until(lock, deadline, [&] {
    return closed_.load(std::memory_order_relaxed) || head_.load(std::memory_order_relaxed) > after_position;
  });
  --waiters_;
  if (closed_.load(std::memory_order_relaxed)) return Status::cancelled("the " + backend_ + " store was closed");
  if (!moved) {
    return Status::timeout("no event after position " + std::to_string(after_position) + " within " +
                           std::to_string(timeout.count()) + " ms");
  }
  return {};
}

}  // namespace herald::detail
