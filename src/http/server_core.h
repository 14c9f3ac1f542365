// What every connection of one Server shares: the options, the request pipeline, the worker pool,
// the connection counts and the registry stop() walks. Held by shared_ptr from each connection, so
// a connection destroyed while the io_contexts are torn down still finds it.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <list>
#include <memory>
#include <mutex>
#include <vector>

#include "herald/http.h"
#include "http/request_pipeline.h"
#include "http/worker_pool.h"

namespace herald::http::detail {

class Connection;

struct ServerCore {
  ServerCore(std::shared_ptr<const Router> router, ServerOptions o)
      : options(std::move(o)), pipeline(std::move(router), options), pool(options.max_queued_requests) {}

  using Registry = std::list<std::weak_ptr<Connection>>;

  // Adds `c` to the registry; the connection keeps the iterator and calls untrack() when it dies.
  Registry::iterator track(const std::shared_ptr<Connection>& c) {
    std::lock_guard lock(mu_);
    return connections_.insert(connections_.end(), c);
  }
  void untrack(Registry::iterator it) {
    {
      std::lock_guard lock(mu_);
      connections_.erase(it);
    }
    emptied_.notify_all();
  }
  // Every connection still alive.
  std::vector<std::shared_ptr<Connection>> live() {
    std::vector<std::shared_ptr<Connection>> out;
    std::lock_guard lock(mu_);
    for (const auto& w : connections_) {
      if (auto c = w.lock()) out.push_back(std::move(c));
    }
    return out;
  }
  // Waits until no connection is left or `deadline` passes; true when none is left.
  bool wait_until_empty(std::chrono::steady_clock::time_point deadline) {
    std::unique_lock lock(mu_);
    return emptied_.wait_until(lock, deadline, [&] { return connections_.empty(); });
  }

  const ServerOptions options;
  const RequestPipeline pipeline;  // thread-safe (immutable)
  WorkerPool pool;                 // thread-safe; stopped by Server::stop() before the core dies

  // Set once by stop(): connections finish their request and close, the acceptor closes new ones.
  std::atomic<bool> stopping{false};
  // Connections counted against max_connections. Only the acceptor's thread increments it (after
  // checking the limit, so the check cannot race another increment); a connection's destructor
  // decrements it from whatever thread drops the last reference.
  std::atomic<std::size_t> open_connections{0};
  // Over-limit connections being answered 503 and drained; bounded so that a flood of them costs
  // file descriptors for at most a moment.
  std::atomic<std::size_t> rejecting{0};

 private:
  std::mutex mu_;  // guards connections_
  std::condition_variable emptied_;
  Registry connections_;
};

}  // namespace herald::http::detail
