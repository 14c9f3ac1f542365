// The retry-or-dead-letter rule (failure_policy.h).
#include "bus/failure_policy.h"

#include <random>

namespace herald::bus {
namespace {

double unit_random() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng);
}

}  // namespace

FailureDecision decide_failure(const RetryPolicy& policy, const Status& st, int attempt, bool stopping) {
  if (stopping && st.code() == StatusCode::cancelled) return {FailureAction::leave_unhandled, {}};
  if (policy.is_retryable(st) && attempt < policy.max_attempts) {
    return {FailureAction::retry_later, policy.delay_after(attempt, unit_random())};
  }
  return {FailureAction::dead_letter, {}};
}

}  // namespace herald::bus
