// Internal: the one rule that says what happens after a handler call failed, shared by the lanes
// (Lane::resolve_failure) and replay_range, so a replayed event is retried or dead-lettered
// exactly as the live one would be.
#pragma once

#include <chrono>

#include "herald/handler.h"

namespace herald::bus {

enum class FailureAction {
  retry_later,      // try the same event again after `delay`
  dead_letter,      // give up on it: a dead letter (its stream parks when so configured)
  leave_unhandled,  // the bus is stopping and the handler gave up for that (cancelled): neither
                    // handled nor failed, it comes again on the next run
};

struct FailureDecision {
  FailureAction action = FailureAction::dead_letter;
  std::chrono::milliseconds delay{0};  // retry_later only: RetryPolicy::delay_after, with jitter
};

// After attempt `attempt` (1-based) of an event failed with `st`, under `policy`; `stopping`
// says whether the bus is shutting down. Pure apart from the jitter's random draw; thread-safe.
FailureDecision decide_failure(const RetryPolicy& policy, const Status& st, int attempt, bool stopping);

}  // namespace herald::bus
