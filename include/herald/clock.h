// herald/clock.h — time behind small injected interfaces, so tests can use fake clocks.
//
// Two kinds of time: Clock is wall time (timestamps that are stored or shown: recorded_at, a dead
// letter's failure times); TimeSource is monotonic time plus a way to wait for it (retry delays,
// lease renewal, poll cadences), so a test can move time forward and wake the waiting threads
// instead of sleeping.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "herald/event.h"

namespace herald {

// Source of wall-clock time. Implementations must be thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual Timestamp now() const = 0;
};

// The process's system clock. Thread-safe; a shared instance lives for the whole program.
std::shared_ptr<Clock> system_clock();

// A clock that only moves when told to. Thread-safe.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(Timestamp start) : now_us_(to_micros(start)) {}
  Timestamp now() const override;
  void set(Timestamp t);
  void advance(std::chrono::microseconds d);

 private:
  std::atomic_int64_t now_us_;
};

// Monotonic time and interruptible waits. Implementations must be thread-safe.
class TimeSource {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  virtual ~TimeSource() = default;

  // Never goes backwards.
  virtual TimePoint now() const = 0;

  // Blocks on `cv` until `done()` is true or now() has reached `deadline`, and returns done().
  // `lock` must hold the mutex that guards what done() reads (and that whoever changes it and
  // notifies `cv` takes); it is held again on return, and done() is evaluated under it. A
  // notification of `cv` is seen at once. `cv` and the mutex must outlive the call.
  virtual bool wait_until(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                          TimePoint deadline, const std::function<bool()>& done) = 0;

  // The longest a thread should block in a wait this source cannot interrupt (such as
  // EventStore::wait_for, which only returns early for a new event) before it looks at now()
  // again. The steady source has no such bound (hours); a manual one wants it short, so time
  // moved by advance() is noticed by a thread parked in the store too.
  virtual std::chrono::milliseconds uninterruptible_slice() const = 0;
};

// std::chrono::steady_clock and std::condition_variable::wait_until. Thread-safe; one shared
// instance lives for the whole program.
std::shared_ptr<TimeSource> steady_time_source();

// Monotonic time that only moves when told to, for tests. advance() wakes every wait_until in
// progress, so a runner waiting for a retry or a renewal runs as soon as its time has come, with
// no real sleep. Thread-safe.
class ManualTimeSource final : public TimeSource {
 public:
  // Starts at `start` (by default one hour after the epoch, so `now() - some duration` is fine).
  explicit ManualTimeSource(TimePoint start = TimePoint{} + std::chrono::hours(1)) : now_(start) {}
  ManualTimeSource(const ManualTimeSource&) = delete;
  ManualTimeSource& operator=(const ManualTimeSource&) = delete;

  TimePoint now() const override;
  bool wait_until(std::unique_lock<std::mutex>& lock, std::condition_variable& cv, TimePoint deadline,
                  const std::function<bool()>& done) override;
  // 1 ms: a thread blocked in a store wait notices advance() within about that much real time.
  std::chrono::milliseconds uninterruptible_slice() const override { return std::chrono::milliseconds(1); }

  // Moves time forward by `d` (a negative `d` is ignored) and wakes every thread inside
  // wait_until; each then sees the new time before it waits again. Returns once all were woken.
  void advance(std::chrono::nanoseconds d);
  // How many threads are inside wait_until now (a test's way to know a runner went to sleep).
  int waiting() const;

 private:
  struct Waiter {
    std::mutex* mutex;
    std::condition_variable* cv;
  };

  // notify_mu_ is held by advance() for its whole wake pass, and by a waiter (with its own lock
  // released) to deregister, so no waiter's mutex or cv is touched after its wait_until returned.
  // Order: notify_mu_, then a waiter's mutex or mu_; a waiter holds its mutex, then takes mu_.
  std::mutex notify_mu_;
  mutable std::mutex mu_;  // guards now_ and waiters_
  TimePoint now_;
  std::vector<Waiter*> waiters_;
};

}  // namespace herald
