// shop/auth/sign_in_limiter — counts failed sign-ins per key (an account's e-mail address, a
// client address) in fixed windows, and says how long a key that reached its limit must wait.
//
// In memory, per process: with several instances behind a balancer each keeps its own counts, so
// the limit an attacker meets is the per-instance limit times the instances (docs/security.md).
// Bounded: at most `max_keys` keys per limiter; past it, expired windows are dropped and, if that
// is not enough, the oldest window goes (an attacker filling the table can only reset counts early,
// never lock anyone out).
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "herald/clock.h"

namespace shop::auth {

struct LimitRule {
  int max_failures = 5;                       // failures per window before the key is refused
  std::chrono::seconds window{15 * 60};       // counted from the window's first failure
};

// Thread-safe: every method takes mu_.
class SignInLimiter {
 public:
  SignInLimiter(std::shared_ptr<herald::Clock> clock, LimitRule rule, std::size_t max_keys = 100'000)
      : clock_(std::move(clock)), rule_(rule), max_keys_(max_keys) {}

  // nullopt when `key` may try now; else how long until it may (at least one second).
  std::optional<std::chrono::seconds> blocked_for(const std::string& key) const;
  // Counts a failure of `key`.
  void record_failure(const std::string& key);
  // Forgets `key`'s failures (a successful sign-in of the account).
  void reset(const std::string& key);

 private:
  struct Window {
    herald::Timestamp started;
    int failures = 0;
  };
  void make_room();  // REQUIRES: mu_ held

  const std::shared_ptr<herald::Clock> clock_;
  const LimitRule rule_;
  const std::size_t max_keys_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Window> windows_;  // guarded by mu_
};

}  // namespace shop::auth
