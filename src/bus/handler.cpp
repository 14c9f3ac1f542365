// The handler framework's out-of-line parts: type matching, retry delays, the registry and the
// exactly-once helper of HandlerContext.
#include <algorithm>
#include <cmath>

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

Status HandlerRegistry::add(std::shared_ptr<EventHandler> handler) {
  if (!handler) return Status::invalid_argument("handler is null");
  std::string name = handler->name();
  if (name.empty()) return Status::invalid_argument("handler name is empty");
  std::lock_guard lock(mu_);
  auto it = std::lower_bound(handlers_.begin(), handlers_.end(), name,
                             [](const auto& h, const std::string& n) { return h->name() < n; });
  if (it != handlers_.end() && (*it)->name() == name) {
    return Status::already_exists("a handler named '" + name + "' is already registered");
  }
  handlers_.insert(it, std::move(handler));
  return Status::ok();
}

Status HandlerRegistry::remove(std::string_view name) {
  std::lock_guard lock(mu_);
  auto it = std::find_if(handlers_.begin(), handlers_.end(),
                         [&](const auto& h) { return h->name() == name; });
  if (it == handlers_.end()) return Status::not_found("no handler named '" + std::string(name) + "'");
  handlers_.erase(it);
  return Status::ok();
}

std::shared_ptr<EventHandler> HandlerRegistry::find(std::string_view name) const {
  std::lock_guard lock(mu_);
  for (const auto& h : handlers_) {
    if (h->name() == name) return h;
  }
  return nullptr;
}

std::vector<std::shared_ptr<EventHandler>> HandlerRegistry::list() const {
  std::lock_guard lock(mu_);
  return handlers_;
}

Status HandlerContext::exactly_once(const RecordedEvent& event,
                                    const std::function<Status(StoreTransaction&)>& work) {
  if (!work) return Status::invalid_argument("exactly_once: work is empty");
  return store_.transact([&](StoreTransaction& tx) -> Status {
    auto fresh = tx.inbox_record(handler_name_, event.id);
    if (!fresh) return fresh.status();
    if (!*fresh) return Status::ok();  // the effect already committed once: skip it
    HERALD_RETURN_IF_ERROR(work(tx));
    // Only ever a step forward: the bus sets the hint to just past this event.
    if (checkpoint_name_ != nullptr) return tx.save_checkpoint(*checkpoint_name_, checkpoint_position_);
    return Status::ok();
  });
}

}  // namespace herald
