#include "auth/sign_in_limiter.h"

#include <algorithm>

namespace shop::auth {

std::optional<std::chrono::seconds> SignInLimiter::blocked_for(const std::string& key) const {
  std::lock_guard lock(mu_);
  auto it = windows_.find(key);
  if (it == windows_.end() || it->second.failures < rule_.max_failures) return std::nullopt;
  const auto ends = it->second.started + rule_.window;
  const auto now = clock_->now();
  if (now >= ends) return std::nullopt;
  // Rounded up, so a client that waits exactly Retry-After is let in.
  auto wait = std::chrono::ceil<std::chrono::seconds>(ends - now);
  return std::max(wait, std::chrono::seconds{1});
}

void SignInLimiter::record_failure(const std::string& key) {
  std::lock_guard lock(mu_);
  const auto now = clock_->now();
  auto it = windows_.find(key);
  if (it == windows_.end()) {
    if (windows_.size() >= max_keys_) make_room();
    windows_.emplace(key, Window{now, 1});
    return;
  }
  if (now >= it->second.started + rule_.window) {
    it->second = Window{now, 1};
  } else {
    ++it->second.failures;
  }
}

void SignInLimiter::reset(const std::string& key) {
  std::lock_guard lock(mu_);
  windows_.erase(key);
}

void SignInLimiter::make_room() {
  const auto now = clock_->now();
  std::erase_if(windows_, [&](const auto& kv) { return now >= kv.second.started + rule_.window; });
  if (windows_.size() < max_keys_) return;
  auto oldest = std::min_element(windows_.begin(), windows_.end(),
                                 [](const auto& a, const auto& b) { return a.second.started < b.second.started; });
  windows_.erase(oldest);
}

}  // namespace shop::auth
