// The threads route handlers run on. Bounded: a request that finds the queue full is refused at
// once (the server answers 503) instead of waiting behind an unbounded backlog whose memory and
// latency nobody controls.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "herald/status.h"

namespace herald::http::detail {

class WorkerPool {
 public:
  using Task = std::function<void()>;

  // At most `max_queued` tasks wait (running ones not counted).
  explicit WorkerPool(std::size_t max_queued) : max_queued_(max_queued) {}
  ~WorkerPool() { stop(); }
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // unavailable when a thread cannot be created (the ones created are stopped again).
  Status start(int threads);
  // Queues `task`; false when the queue is full or the pool is stopping (the task is not run).
  // Thread-safe. A task must not throw; one that does is logged and the worker carries on.
  bool try_submit(Task task);
  // Refuses new tasks, drops queued ones that have not started, and waits for running ones to
  // return. Idempotent; not from a worker thread.
  void stop();

 private:
  void run() noexcept;

  const std::size_t max_queued_;
  std::mutex mu_;  // guards queue_, stopping_
  std::condition_variable wake_;
  std::deque<Task> queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;  // written by start() and stop() only
};

}  // namespace herald::http::detail
