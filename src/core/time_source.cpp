// TimeSource implementations: the steady clock, and the manual one tests advance.
#include <algorithm>

#include "herald/clock.h"

namespace herald {

namespace {

class SteadyTimeSource final : public TimeSource {
 public:
  TimePoint now() const override { return std::chrono::steady_clock::now(); }
  bool wait_until(std::unique_lock<std::mutex>& lock, std::condition_variable& cv, TimePoint deadline,
                  const std::function<bool()>& done) override {
    return cv.wait_until(lock, deadline, done);
  }
  std::chrono::milliseconds uninterruptible_slice() const override { return std::chrono::hours(24); }
};

}  // namespace

std::shared_ptr<TimeSource> steady_time_source() {
  static const std::shared_ptr<TimeSource> source = std::make_shared<SteadyTimeSource>();
  return source;
}

TimeSource::TimePoint ManualTimeSource::now() const {
  std::lock_guard lock(mu_);
  return now_;
}

int ManualTimeSource::waiting() const {
  std::lock_guard lock(mu_);
  return static_cast<int>(waiters_.size());
}

bool ManualTimeSource::wait_until(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                                  TimePoint deadline, const std::function<bool()>& done) {
  Waiter self{lock.mutex(), &cv};
  {
    // Registered under the caller's lock, before the first look at the time: an advance() that
    // moves the time after that look must take this lock to notify, so it cannot slip in
    // between the look and cv.wait (no lost wake-up).
    std::lock_guard guard(mu_);
    waiters_.push_back(&self);
  }
  while (!done() && now() < deadline) cv.wait(lock);
  // Deregister with the caller's lock released: advance() may be waiting for it in its wake pass,
  // holding notify_mu_.
  lock.unlock();
  {
    std::lock_guard pass(notify_mu_);
    std::lock_guard guard(mu_);
    waiters_.erase(std::find(waiters_.begin(), waiters_.end(), &self));
  }
  lock.lock();
  return done();
}

void ManualTimeSource::advance(std::chrono::nanoseconds d) {
  std::lock_guard pass(notify_mu_);
  std::vector<Waiter*> woken;
  {
    std::lock_guard guard(mu_);
    if (d.count() > 0) now_ += std::chrono::duration_cast<TimePoint::duration>(d);
    woken = waiters_;
  }
  for (Waiter* w : woken) {
    std::lock_guard waiter_lock(*w->mutex);  // see wait_until: no notification falls in a gap
    w->cv->notify_all();
  }
}

}  // namespace herald
