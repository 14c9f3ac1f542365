#include "http/worker_pool.h"

#include <spdlog/spdlog.h>

#include <exception>
#include <string>
#include <system_error>

namespace herald::http::detail {

Status WorkerPool::start(int threads) {
  try {
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { run(); });
  } catch (const std::system_error& e) {
    stop();
    return Status::unavailable(std::string("cannot start HTTP worker threads: ") + e.what());
  }
  return Status::ok();
}

bool WorkerPool::try_submit(Task task) {
  {
    std::lock_guard lock(mu_);
    if (stopping_ || queue_.size() >= max_queued_) return false;
    queue_.push_back(std::move(task));
  }
  wake_.notify_one();
  return true;
}

void WorkerPool::stop() {
  std::deque<Task> dropped;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    dropped.swap(queue_);
  }
  wake_.notify_all();
  // Destroyed outside the lock: a task's captures may run destructors that take other locks.
  dropped.clear();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

void WorkerPool::run() noexcept {
  while (true) {
    Task task;
    {
      std::unique_lock lock(mu_);
      wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and nothing was left for us
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    try {
      task();
    } catch (const std::exception& e) {
      spdlog::error("http worker: a task threw: {}", e.what());
    } catch (...) {
      spdlog::error("http worker: a task threw a non-exception");
    }
  }
}

}  // namespace herald::http::detail
