// replay_range: a handler over a range of positions on the caller's thread, its failures decided
// by the lanes' rule (failure_policy.h) and its retry waits on BusOptions::time.
#include "bus/failure_policy.h"
#include "bus/runner.h"

namespace herald::bus {

Status HandlerRunner::replay_range(std::int64_t from, std::int64_t to,
                                   const std::function<void(const ReplayProgress&)>& progress) {
  if (from < 0 || to < from) {
    return Status::invalid_argument("replay range [" + std::to_string(from) + ", " + std::to_string(to) +
                                    ") is invalid");
  }
  ReplayProgress p;
  p.handler = name_;
  p.total = to - from;  // counted in positions: cheap to know up front
  std::int64_t pos = from;
  while (pos < to) {
    auto slice = store_->read_all(pos, std::min<std::size_t>(options_.batch_size, static_cast<std::size_t>(to - pos)),
                                  filter_);
    if (!slice) return slice.status();
    for (const auto& e : slice->events) {
      if (e.position >= to) break;
      Timestamp first_failed{};
      for (int attempt = 1;; ++attempt) {
        Status st = invoke(e, attempt);
        if (st.is_ok()) break;
        if (attempt == 1) first_failed = wall_now();
        const bool stopping = stopping_.load(std::memory_order_acquire);
        const FailureDecision next = decide_failure(options_.retry, st, attempt, stopping);
        if (next.action == FailureAction::retry_later && !stopping) {
          metrics_.retried.fetch_add(1, std::memory_order_relaxed);
          std::unique_lock lock(stop_mu_);
          if (!time().wait_until(lock, stop_cv_, time().now() + next.delay,
                                 [this] { return stopping_.load(std::memory_order_acquire); })) {
            continue;
          }
        }
        if (next.action != FailureAction::dead_letter) {
          // Stopping: the lanes would keep the event for the next run; a replay ends here.
          return Status::cancelled("replay of handler " + name_ + " stopped at position " +
                                   std::to_string(e.position) + ": the bus is stopping");
        }
        Status dl = add_dead_letter(e, attempt, st, first_failed);
        if (!dl.is_ok() && dl.code() != StatusCode::already_exists) return dl;
        break;
      }
      p.done = e.position + 1 - from;
      if (progress) progress(p);
    }
    pos = std::min(to, slice->next_position);
    if (slice->end_of_log) break;
  }
  p.done = p.total;
  p.finished = true;
  if (progress) progress(p);
  return Status::ok();
}

}  // namespace herald::bus
