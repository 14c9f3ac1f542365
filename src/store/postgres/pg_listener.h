// How a PostgreSQL store learns of appends made by other stores (other processes): a thread
// holding a LISTEN herald_events connection raises the head on each notification, and while some
// wait_for is blocked it also polls the head, so that a lost notification only delays a waiter,
// never stalls it.
#pragma once

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include "herald/status.h"
#include "store/head_signal.h"
#include "store/postgres/pg_support.h"

namespace herald::detail::pg {

class PgListener {
 public:
  // Listens on `url` (its own connection, reopened when lost) and publishes heads on `head`,
  // which must outlive this object. Polls every `poll_interval` while someone waits.
  PgListener(std::string url, std::chrono::milliseconds poll_interval, HeadSignal& head);
  // Stops and joins the thread; frees the wake-up descriptor.
  ~PgListener();
  PgListener(const PgListener&) = delete;
  PgListener& operator=(const PgListener&) = delete;

  // Starts the thread. internal when it cannot be started.
  Status start();

  // Wakes the thread so that it re-reads whether anyone waits (called on the first waiter) or
  // sees stop(). Thread-safe; a no-op before start().
  void wake();

  // Marks a wait_for in progress for its lifetime: while one exists the thread polls. Create it
  // before HeadSignal::wait_for, whose first-waiter hook calls wake().
  class Waiting {
   public:
    explicit Waiting(PgListener& listener) : listener_(listener) { ++listener_.waiting_; }
    ~Waiting() { --listener_.waiting_; }
    Waiting(const Waiting&) = delete;
    Waiting& operator=(const Waiting&) = delete;

   private:
    PgListener& listener_;
  };

  // Makes the thread exit and waits for it (unless called on it). Idempotent.
  void stop();

 private:
  void listen_loop();
  // Reads the head from the database and publishes it; false when the query failed.
  bool poll_head(PGconn* conn);

  const std::string url_;
  const std::chrono::milliseconds poll_interval_;
  HeadSignal& head_;
  int wake_fd_ = -1;  // eventfd that wakes the thread; set in start(), closed in the destructor
  std::atomic<int> waiting_{0};  // live Waiting objects
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace herald::detail::pg
