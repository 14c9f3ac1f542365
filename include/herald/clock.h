// herald/clock.h — time behind a small injected interface, so tests can use a fake clock.
#pragma once

#include <atomic>
#include <memory>

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

}  // namespace herald
