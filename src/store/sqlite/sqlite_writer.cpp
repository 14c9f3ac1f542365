#include "store/sqlite/sqlite_writer.h"

#include <string>
#include <utility>

#include <spdlog/spdlog.h>

#include "store/sqlite/sqlite_sql.h"

namespace herald::detail::sqlite {
namespace {

void complete(WriteRequest* r, Status s) {
  r->status = std::move(s);
  r->done.set_value();
}

}  // namespace

void GroupWriter::start() {
  thread_ = std::thread([this] { loop(); });
  writer_id_ = thread_.get_id();
}

bool GroupWriter::stop() {
  {
    std::lock_guard lk(queue_mu_);
    stopping_ = true;
    queue_cv_.notify_one();
  }
  if (std::this_thread::get_id() == writer_id_) return false;
  std::lock_guard join_lk(join_mu_);
  if (thread_.joinable()) thread_.join();
  return true;
}

std::int64_t GroupWriter::queued() const {
  std::lock_guard lk(queue_mu_);
  return static_cast<std::int64_t>(queue_.size());
}

Status GroupWriter::submit_op(std::function<Status(Connection&)> op) {
  WriteRequest req;
  req.op = std::move(op);
  HERALD_RETURN_IF_ERROR(submit(req));
  return req.status;
}

// Queues `req` for the writer and waits for it. The returned Status says whether it could be
// queued at all; the request's own outcome is in req.status.
Status GroupWriter::submit(WriteRequest& req) {
  if (std::this_thread::get_id() == writer_id_) {
    return Status::failed_precondition(
        "a transact callback called back into the store; use its StoreTransaction instead");
  }
  auto done = req.done.get_future();
  {
    std::lock_guard lk(queue_mu_);
    if (stopping_) return Status::failed_precondition("the store is closed");
    if (!poisoned_.is_ok()) {
      return Status::failed_precondition("the store is poisoned by an earlier failed commit: " +
                                         poisoned_.to_string());
    }
    queue_.push_back(&req);
    if (queue_.size() == 1) queue_cv_.notify_one();
  }
  done.wait();
  return {};
}


void GroupWriter::loop() {
  std::vector<WriteRequest*> group;
  for (;;) {
    {
      std::unique_lock lk(queue_mu_);
      queue_cv_.wait(lk, [&] { return !queue_.empty() || stopping_; });
      if (queue_.empty()) break;  // stopping, and everything queued before close() is done
      group.swap(queue_);
    }
    run_group(group);
    group.clear();
    wal_.truncate_if_wanted(conn_);
  }
}

// Runs one group of requests in one transaction and completes every one of them.
void GroupWriter::run_group(const std::vector<WriteRequest*>& group) {
  Status poisoned;
  {
    std::lock_guard lk(queue_mu_);
    poisoned = poisoned_;
  }
  if (!poisoned.is_ok()) {
    for (WriteRequest* r : group) {
      complete(r, Status::failed_precondition("the store is poisoned by an earlier failed commit: " +
                                              poisoned.to_string()));
    }
    return;
  }

  std::int64_t committed_head = head_.head();
  std::int64_t next_position = committed_head + 1;
  std::vector<WriteRequest*> applied;     // released savepoints, waiting for COMMIT
  std::vector<RecordedEvent> written;     // their new events, in position order
  applied.reserve(group.size());
  bool in_txn = false;

  for (std::size_t i = 0; i < group.size(); ++i) {
    WriteRequest* r = group[i];
    if (!in_txn) {
      Status s = step(conn_, kBegin);
      if (!s.is_ok()) {
        // Nothing of this group is pending (applied is empty here): fail the rest at once
        // rather than waiting busy_timeout once per request.
        for (std::size_t j = i; j < group.size(); ++j) complete(group[j], s);
        return;
      }
      in_txn = true;
      // The write lock is held now: take the head from the database, not from memory, so
      // that positions stay right even if another process wrote to this file.
      auto db_head = read_db_head();
      if (!db_head) {
        (void)step(conn_, kRollback);
        for (std::size_t j = i; j < group.size(); ++j) complete(group[j], db_head.status());
        return;
      }
      if (*db_head != committed_head) {
        adopt_foreign_head(*db_head);
        committed_head = *db_head;
        next_position = committed_head + 1;
      }
    }
    Status s = step(conn_, kSavepoint);
    if (s.is_ok()) {
      const std::size_t written_before = written.size();
      s = run_request(*r, next_position, written);
      if (sqlite3_get_autocommit(conn_.db()) != 0) {
        // SQLite rolled the whole transaction back (I/O error, disk full, out of memory): the
        // requests applied before this one are lost too. Nothing was committed, so the store is
        // still consistent: fail them, and start a new transaction for the rest of the group.
        Status lost = Status::unavailable("the group's transaction was rolled back: " +
                                          (s.is_ok() ? std::string("unknown error") : s.to_string()));
        for (WriteRequest* a : applied) complete(a, lost);
        applied.clear();
        written.clear();
        next_position = committed_head + 1;
        in_txn = false;
        complete(r, s.is_ok() ? lost : std::move(s));
        continue;
      }
      if (s.is_ok()) {
        s = step(conn_, kRelease);
      } else {
        written.resize(written_before);
        Status undo = step(conn_, kRollbackTo);
        if (undo.is_ok()) undo = step(conn_, kRelease);
        if (!undo.is_ok()) {
          // Cannot undo this request's partial work: give up the whole group's transaction.
          (void)step(conn_, kRollback);
          Status lost = Status::unavailable("cannot roll back a failed request: " + undo.to_string());
          for (WriteRequest* a : applied) complete(a, lost);
          applied.clear();
          written.clear();
          next_position = committed_head + 1;
          in_txn = false;
        }
        complete(r, std::move(s));
        continue;
      }
      if (s.is_ok()) {
        applied.push_back(r);
        continue;
      }
    }
    // SAVEPOINT or RELEASE failed: the transaction's state is unknown; drop the whole group.
    (void)step(conn_, kRollback);
    for (WriteRequest* a : applied) complete(a, s);
    applied.clear();
    written.clear();
    next_position = committed_head + 1;
    in_txn = false;
    complete(r, std::move(s));
  }
  if (!in_txn) return;

  Status commit = step(conn_, kCommit);
  if (!commit.is_ok()) {
    // After a failed COMMIT (e.g. a failed fsync) we cannot know what is on the disk: refuse all
    // later writes rather than risk reusing positions or acknowledging lost data.
    (void)conn_.exec(kRollback);
    {
      std::lock_guard lk(queue_mu_);
      poisoned_ = commit;
    }
    for (WriteRequest* a : applied) complete(a, commit);
    return;
  }
  commits_.fetch_add(1);
  if (!written.empty()) tail_.publish(std::move(written), next_position - 1);
  for (WriteRequest* a : applied) complete(a, {});
}

Result<std::int64_t> GroupWriter::read_db_head() {
  HERALD_PREPARE(s, conn_, kHead);
  int rc = s.step();
  if (rc != SQLITE_ROW) return conn_.error(rc, "reading the head");
  return s.is_null(0) ? std::int64_t{-1} : s.int64(0);
}

// Another process appended to this file (supported, though its appends wake no wait_for here
// until this store writes): the cache no longer ends at the head, so start it afresh, and
// publish the database's head.
void GroupWriter::adopt_foreign_head(std::int64_t head) {
  spdlog::warn("sqlite store {}: the log was appended to by another process (head {} -> {})",
               path_, head_.head(), head);
  tail_.restart_at(head);
}

// Runs one request inside its savepoint. Nothing thrown escapes the writer thread: an exception
// (out of memory) fails the request, whose savepoint is then rolled back.
Status GroupWriter::run_request(WriteRequest& r, std::int64_t& next_position,
                                std::vector<RecordedEvent>& written) {
  try {
    if (r.op) return r.op(conn_);
    return apply_append(conn_, r.append, to_micros(clock_->now()), next_position, written);
  } catch (const std::exception& e) {
    return Status::internal(std::string("write request threw: ") + e.what());
  } catch (...) {
    return Status::internal("write request threw a non-standard exception");
  }
}

}  // namespace herald::detail::sqlite
