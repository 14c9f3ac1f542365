// The SQLite backend's reader connections: a pool that lends each to one thread at a time, and
// a read transaction that gives several statements one snapshot.
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "store/sqlite/sqlite_connection.h"
#include "store/sqlite/sqlite_sql.h"

namespace herald::detail::sqlite {

// Connections for reads. acquire() blocks while all are in use; close() waits for every borrowed
// connection to come back, then closes them.
class ReaderPool {
 public:
  // Returns its connection to the pool on destruction.
  class Handle {
   public:
    Handle(ReaderPool* pool, std::unique_ptr<Connection> c) : pool_(pool), c_(std::move(c)) {}
    Handle(Handle&& o) noexcept : pool_(std::exchange(o.pool_, nullptr)), c_(std::move(o.c_)) {}
    Handle& operator=(Handle&&) = delete;
    ~Handle() {
      if (pool_ != nullptr) pool_->give_back(std::move(c_));
    }
    Connection& operator*() const { return *c_; }
    Connection* operator->() const { return c_.get(); }

   private:
    ReaderPool* pool_;
    std::unique_ptr<Connection> c_;
  };

  void add(std::unique_ptr<Connection> c) {
    std::lock_guard lk(mu_);
    free_.push_back(std::move(c));
  }

  // failed_precondition once closed.
  Result<Handle> acquire() {
    std::unique_lock lk(mu_);
    cv_.wait(lk, [&] { return closed_ || (!free_.empty() && !paused_); });
    if (closed_) return Status::failed_precondition("the store is closed");
    auto c = std::move(free_.back());
    free_.pop_back();
    ++borrowed_;
    return Handle(this, std::move(c));
  }

  // Lends no connection until resume(), and waits up to `wait` for the borrowed ones to come back:
  // true when none is out. For a checkpoint that must see every reader off the WAL; readers
  // arriving meanwhile wait, at most as long as that checkpoint.
  bool pause(std::chrono::milliseconds wait) {
    std::unique_lock lk(mu_);
    paused_ = true;
    return cv_.wait_for(lk, wait, [&] { return borrowed_ == 0; });
  }
  void resume() {
    {
      std::lock_guard lk(mu_);
      paused_ = false;
    }
    cv_.notify_all();
  }

  void close() {
    std::unique_lock lk(mu_);
    closed_ = true;
    cv_.notify_all();
    cv_.wait(lk, [&] { return borrowed_ == 0; });
    free_.clear();
  }

 private:
  void give_back(std::unique_ptr<Connection> c) {
    std::lock_guard lk(mu_);
    --borrowed_;
    free_.push_back(std::move(c));
    cv_.notify_all();
  }

  std::mutex mu_;  // guards free_, borrowed_, closed_, paused_
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Connection>> free_;
  int borrowed_ = 0;
  bool closed_ = false;
  bool paused_ = false;
};

// A read transaction on a reader connection, so that several statements see one snapshot.
// Ends (COMMIT, which for a read-only transaction only releases the snapshot) on destruction.
class ReadTxn {
 public:
  explicit ReadTxn(Connection& c) : c_(c) {}
  Status begin() {
    HERALD_RETURN_IF_ERROR(step(c_, kBeginRead));
    open_ = true;
    return {};
  }
  ~ReadTxn() {
    if (!open_) return;
    if (step(c_, kCommit).is_ok()) return;
    (void)c_.exec("ROLLBACK");
  }
  ReadTxn(const ReadTxn&) = delete;
  ReadTxn& operator=(const ReadTxn&) = delete;

 private:
  Connection& c_;
  bool open_ = false;
};

}  // namespace herald::detail::sqlite
