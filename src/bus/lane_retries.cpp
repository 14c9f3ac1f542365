// A lane's failed events: retrying the front of a pending stream when it is due, and what a
// failure turns into (decide_failure: a later retry, a dead letter parking the stream, or left
// for the next run when the bus stops).
#include <spdlog/spdlog.h>

#include "bus/failure_policy.h"
#include "bus/runner.h"

namespace herald::bus {

void Lane::drain(Pending& p) {
  while (!p.queue.empty() && !runner_.stopping().load(std::memory_order_relaxed)) {
    const RecordedEvent& e = p.queue.front();
    int attempt = p.attempts + 1;
    Status st = runner_.invoke(e, attempt, index_, fence());
    if (st.is_ok()) {
      p.queue.pop_front();
      p.attempts = 0;
      continue;
    }
    if (st.code() == StatusCode::lease_lost) {
      fenced_ = true;  // stop at once: no retry, no dead letter (see Lane::note_status)
      return;
    }
    if (p.attempts == 0) {
      p.first_failed = runner_.wall_now();
    }
    if (!resolve_failure(p, st, attempt)) return;
  }
}

bool Lane::resolve_failure(Pending& p, const Status& st, int attempt) {
  const RecordedEvent& e = p.queue.front();
  const SteadyTime now = runner_.time().now();
  const FailureDecision next = decide_failure(runner_.options().retry, st, attempt, runner_.stopping().load());
  if (next.action == FailureAction::leave_unhandled) {
    p.attempts = attempt - 1;
    p.due = now;
    return false;
  }
  if (next.action == FailureAction::retry_later) {
    p.attempts = attempt;
    p.due = now + next.delay;
    runner_.metrics().retried.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  Status dl = runner_.add_dead_letter(e, attempt, st, p.first_failed, fence());
  note_status(dl);
  if (fenced_) return false;
  if (!dl.is_ok() && dl.code() != StatusCode::already_exists) {
    // Cannot record it: keep it pending (the checkpoint stays below it) and try later.
    p.attempts = attempt - 1;
    p.due = now + kStoreErrorBackoff;
    return false;
  }
  p.queue.pop_front();
  p.attempts = 0;
  if (!runner_.options().park_stream_after_dead_letter) return true;
  // The stream is parked now: the rest of its queue waits behind the dead letter, durably.
  while (!p.queue.empty()) {
    auto r = runner_.park_if_parked(p.queue.front(), fence());
    if (r == HandlerRunner::ParkResult::fenced) {
      fenced_ = true;
      return false;
    }
    if (r != HandlerRunner::ParkResult::parked) {
      p.due = now + kStoreErrorBackoff;
      return false;
    }
    p.queue.pop_front();
  }
  return false;
}

void Lane::process_due_retries() {
  if (pending_.empty()) return;
  const SteadyTime now = runner_.time().now();
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (runner_.stopping().load(std::memory_order_relaxed)) return;
    Pending& p = it->second;
    if (!p.queue.empty() && p.due <= now) {
      // attempts == 0: the front never failed in the handler; an earlier park or dead-letter
      // write failed, so route the queue again before running anything.
      auto r = HandlerRunner::ParkResult::not_parked;
      while (p.attempts == 0 && !p.queue.empty() &&
             (r = runner_.park_if_parked(p.queue.front(), fence())) == HandlerRunner::ParkResult::parked) {
        p.queue.pop_front();
      }
      if (r == HandlerRunner::ParkResult::fenced) fenced_ = true;
      else if (r == HandlerRunner::ParkResult::error) p.due = now + kStoreErrorBackoff;
      else drain(p);
      if (fenced_) return;  // the loop drops pending_ (lose_lease): no iterator survives that
    }
    if (p.queue.empty()) it = pending_.erase(it);
    else ++it;
  }
}

}  // namespace herald::bus
