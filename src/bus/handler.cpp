// The handler framework's out-of-line parts: type matching, retry delays, the exactly-once helper
// of HandlerContext and the exception-proof call of a handler.
#include <algorithm>
#include <cmath>

#include "bus/dispatch_context.h"
#include "herald/handler.h"

namespace herald {

bool EventHandler::handles(std::string_view type) const {
  auto types = event_types();
  return types.empty() || std::find(types.begin(), types.end(), type) != types.end();
}

std::chrono::milliseconds RetryPolicy::delay_after(int attempt, double unit_random) const {
  if (attempt < 1) attempt = 1;
  if (!delays.empty()) {
    // An explicit list is taken literally: no jitter, the last entry repeats.
    std::size_t k = std::min<std::size_t>(static_cast<std::size_t>(attempt), delays.size());
    return std::max(std::chrono::milliseconds{0}, delays[k - 1]);
  }
  const double cap = static_cast<double>(std::max<std::int64_t>(0, max_delay.count()));
  double base = static_cast<double>(std::max<std::int64_t>(0, initial_delay.count())) *
                std::pow(std::max(1.0, multiplier), attempt - 1);
  base = std::min(base, cap);  // also keeps pow's overflow (inf) out of the cast below
  double j = std::clamp(jitter, 0.0, 1.0);
  double r = std::clamp(unit_random, 0.0, 1.0);
  double scaled = base * (1.0 - j + 2.0 * j * r);
  // The cap bounds the delay after jitter too, so max_delay is a real upper bound.
  scaled = std::clamp(scaled, 0.0, cap);
  return std::chrono::milliseconds{static_cast<std::int64_t>(std::llround(scaled))};
}

bool RetryPolicy::is_retryable_by_default(const Status& s) {
  switch (s.code()) {
    case StatusCode::unavailable:
    case StatusCode::timeout:
    case StatusCode::wrong_expected_version:
    case StatusCode::internal:
      return true;
    default:
      return false;
  }
}

Status HandlerContext::exactly_once(const RecordedEvent& event,
                                    const std::function<Status(StoreTransaction&)>& work) {
  if (!work) return Status::invalid_argument("exactly_once: work is empty");
  return store_.transact([&](StoreTransaction& tx) -> Status {
    if (fence_lease_ != nullptr) HERALD_RETURN_IF_ERROR(tx.check_lease(*fence_lease_, fence_token_));
    auto fresh = tx.inbox_record(handler_name_, event.id);
    if (!fresh) return fresh.status();
    if (*fresh == InboxOutcome::already_recorded) return Status::ok();  // the effect committed once: skip it
    HERALD_RETURN_IF_ERROR(work(tx));
    // Only ever a step forward: the bus sets the hint to just past this event.
    if (checkpoint_name_ != nullptr) return tx.save_checkpoint(*checkpoint_name_, checkpoint_position_);
    return Status::ok();
  });
}

Status HandlerContext::check_lease() const {
  if (fence_lease_ == nullptr) return Status::ok();
  return store_.transact([&](StoreTransaction& tx) { return tx.check_lease(*fence_lease_, fence_token_); });
}

namespace bus {

Status call_handler(EventHandler& handler, const RecordedEvent& event, HandlerContext& ctx) {
  try {
    return handler.handle(event, ctx);
  } catch (const std::exception& ex) {
    return Status::internal(std::string("handler threw: ") + ex.what());
  } catch (...) {
    return Status::internal("handler threw a non-standard exception");
  }
}

}  // namespace bus
}  // namespace herald
