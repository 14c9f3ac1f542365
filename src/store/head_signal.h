// The published head of a log, and waiting for it to pass a position: EventLog::wait_for's one
// protocol, shared by every backend (each used to write its own).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>

#include "herald/status.h"

namespace herald::detail {

// Thread-safe. The head only moves forward; close() is final.
class HeadSignal {
 public:
  // `backend` names the store in the cancelled message ("the sqlite store was closed").
  // `on_first_waiter`, when set, is called (under no lock of this object's callers, but under its
  // own mutex) each time the number of waiters goes from 0 to 1: PostgreSQL wakes its listener.
  explicit HeadSignal(std::string backend, std::function<void()> on_first_waiter = nullptr);

  // The last published position, -1 before any. Lock-free.
  std::int64_t head() const { return head_.load(std::memory_order_acquire); }

  // Raises the head to `position` (a lower or equal one is ignored) and wakes every waiter whose
  // position it passes. A caller that must publish in step with other state (SQLite's tail cache)
  // calls it while holding that state's lock: this object's mutex is always taken last.
  void publish(std::int64_t position);

  // Wakes every waiter with cancelled, now and in the future. Idempotent.
  void close();
  bool closed() const { return closed_.load(std::memory_order_acquire); }

  // ok once head() > after_position; timeout after `timeout`; cancelled once closed (closing wins
  // over data: a waiter woken by shutdown must stop, not process more). A timeout of a year or
  // more means practically forever.
  Status wait_for(std::int64_t after_position, std::chrono::milliseconds timeout);

 private:
  const std::string backend_;
  const std::function<void()> on_first_waiter_;
  mutable std::mutex mu_;             // guards waiters_ and the wait protocol over head_/closed_
  std::condition_variable moved_;     // notified on publish() and close()
  int waiters_ = 0;                   // guarded by mu_
  std::atomic<std::int64_t> head_{-1};  // written under mu_, read anywhere
  std::atomic_bool closed_{false};      // written under mu_, read anywhere
};

}  // namespace herald::detail
