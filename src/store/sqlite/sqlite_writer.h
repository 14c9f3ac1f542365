// The SQLite backend's writer: ONE thread owns the only write connection, and every write
// (append, checkpoint, dead letter, lease, transact) is a request queued to it. The writer takes
// all pending requests, runs them in one transaction — each inside its own SAVEPOINT so that each
// succeeds or fails on its own — and COMMITs once: with synchronous=FULL that is one fsync for the
// whole group (group commit). Positions are assigned here, from the head read under the write
// lock at the start of each group (so even another process writing the same file cannot make
// positions collide); an append that fails rolls back to its savepoint and gives its positions
// back, so positions stay gap-free. After COMMIT the new events go to the tail cache, which
// publishes the head.
//
// A failed COMMIT fails every request of its group and poisons the writer: later writes return
// failed_precondition carrying the original error (as leveldb does after a failed sync), because
// after a failed fsync we cannot know what reached the disk.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "herald/clock.h"
#include "store/head_signal.h"
#include "store/sqlite/sqlite_append.h"
#include "store/sqlite/sqlite_connection.h"
#include "store/sqlite/sqlite_tail_cache.h"
#include "store/sqlite/sqlite_wal.h"

namespace herald::detail::sqlite {

// One queued write. Lives on the caller's stack until `done` is fulfilled; after that the writer
// never touches it again.
struct WriteRequest {
  AppendRequest append;  // an append, when `op` is empty
  // Any other write, run on the writer connection inside the request's savepoint.
  std::function<Status(Connection&)> op;
  Status status;  // the outcome, set by the writer before `done`
  std::promise<void> done;
};

// Thread-safe: submit from any thread but the writer's own; start/stop from the store's owner.
class GroupWriter {
 public:
  // Takes `conn`, configured and migrated; `tail`, `head` and `wal` must outlive stop().
  GroupWriter(std::string path, Connection conn, TailCache& tail, HeadSignal& head, WalCheckpointer& wal,
              std::shared_ptr<Clock> clock)
      : path_(std::move(path)), conn_(std::move(conn)), tail_(tail), head_(head), wal_(wal),
        clock_(std::move(clock)) {}
  ~GroupWriter() { (void)stop(); }

  void start();

  // Queues `req` and waits until the writer completed it. The returned Status says whether it
  // could be queued at all (failed_precondition when stopping, poisoned, or called from the
  // writer thread itself, i.e. from a transact callback); the request's own outcome is req.status.
  Status submit(WriteRequest& req);
  // Runs `op` on the writer connection inside its own savepoint of the next group; its status.
  Status submit_op(std::function<Status(Connection&)> op);

  // Takes no more requests; what is queued completes. Joins the thread unless called on it (from a
  // transact callback: it stops after this group, and a later stop() joins it). True once joined.
  bool stop();

  // The write connection, for the store to close last; only after stop() returned true.
  Connection release_connection() { return std::move(conn_); }

  std::int64_t commits() const { return commits_.load(); }
  std::int64_t queued() const;

 private:
  void loop();
  void run_group(const std::vector<WriteRequest*>& group);
  Result<std::int64_t> read_db_head();
  void adopt_foreign_head(std::int64_t head);
  Status run_request(WriteRequest& r, std::int64_t& next_position, std::vector<RecordedEvent>& written);

  const std::string path_;
  Connection conn_;  // owned by the writer thread once started
  TailCache& tail_;
  HeadSignal& head_;
  WalCheckpointer& wal_;
  const std::shared_ptr<Clock> clock_;

  std::thread::id writer_id_;  // the writer thread's id (none before start())
  std::mutex join_mu_;         // guards thread_ (joined by one stop() at a time)
  std::thread thread_;

  mutable std::mutex queue_mu_;  // guards queue_, stopping_, poisoned_
  std::condition_variable queue_cv_;
  std::vector<WriteRequest*> queue_;
  bool stopping_ = false;
  Status poisoned_;  // the failed COMMIT's error; ok while healthy
  std::atomic<std::int64_t> commits_{0};  // successful group COMMITs (diagnostics)
};

}  // namespace herald::detail::sqlite
