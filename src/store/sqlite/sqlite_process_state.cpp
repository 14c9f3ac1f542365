// The SQLite backend's process state: every write goes through the writer thread (so it shares
// a group's fsync and never races an append); reads use the reader connections.
#include <string>

#include "store/sqlite/sqlite_rows.h"
#include "store/sqlite/sqlite_sql.h"
#include "store/sqlite/sqlite_store_impl.h"
#include "store/sqlite/sqlite_transaction.h"
#include "store/validation.h"

namespace herald::detail::sqlite {

Status SqliteEventStore::transact(const std::function<Status(StoreTransaction&)>& work) {
  return writer_->submit_op([&work](Connection& c) -> Status {
    SqliteTransaction txn(c);
    try {
      return work(txn);
    } catch (const std::exception& e) {
      return Status::internal(std::string("transaction work threw: ") + e.what());
    } catch (...) {
      return Status::internal("transaction work threw a non-standard exception");
    }
  });
}

// From a reader connection, so that a query never queues behind the writer's commits.
Result<std::string> SqliteEventStore::read_document(std::string_view collection, std::string_view key) {
  auto conn = readers_.acquire();
  if (!conn) return conn.status();
  return SqliteTransaction(**conn).get_document(collection, key);
}
Result<std::vector<Document>> SqliteEventStore::read_documents(std::string_view collection, std::string_view after_key,
                                             std::size_t limit) {
  auto conn = readers_.acquire();
  if (!conn) return conn.status();
  return SqliteTransaction(**conn).list_documents(collection, after_key, limit);
}

Result<std::int64_t> SqliteEventStore::load_checkpoint(std::string_view subscription) {
  HERALD_RETURN_IF_ERROR(validate_checkpoint_name(subscription));
  if (head_.closed()) return closed_status();
  auto conn = readers_.acquire();
  if (!conn) return conn.status();
  Connection& c = **conn;
  HERALD_PREPARE(s, c, kLoadCheckpoint);
  s.bind(1, subscription);
  int rc = s.step();
  if (rc == SQLITE_DONE) {
    return Status::not_found("no checkpoint for '" + std::string(subscription) + "'");
  }
  if (rc != SQLITE_ROW) return c.error(rc, "loading a checkpoint");
  return s.int64(0);
}

Status SqliteEventStore::save_checkpoint(std::string_view subscription, std::int64_t position) {
  HERALD_RETURN_IF_ERROR(validate_checkpoint(subscription, position));
  return writer_->submit_op([&](Connection& c) { return SqliteTransaction(c).save_checkpoint(subscription, position); });
}

Result<std::int64_t> SqliteEventStore::add_dead_letter(const DeadLetter& d) {
  HERALD_RETURN_IF_ERROR(validate_dead_letter(d));
  std::int64_t id = 0;
  HERALD_RETURN_IF_ERROR(writer_->submit_op([&](Connection& c) -> Status {
    auto added = SqliteTransaction(c).add_dead_letter(d);
    if (!added) return added.status();
    id = *added;
    return {};
  }));
  return id;
}

Result<DeadLetter> SqliteEventStore::get_dead_letter(std::int64_t id) {
  if (head_.closed()) return closed_status();
  auto conn = readers_.acquire();
  if (!conn) return conn.status();
  Connection& c = **conn;
  HERALD_PREPARE(s, c, kGetDeadLetter);
  s.bind(1, id);
  int rc = s.step();
  if (rc == SQLITE_DONE) return Status::not_found("no dead letter " + std::to_string(id));
  if (rc != SQLITE_ROW) return c.error(rc, "reading a dead letter");
  return read_dead_letter_row(s);
}

Result<std::vector<DeadLetter>> SqliteEventStore::list_dead_letters(std::string_view handler) {
  if (head_.closed()) return closed_status();
  auto conn = readers_.acquire();
  if (!conn) return conn.status();
  Connection& c = **conn;
  HERALD_PREPARE(s, c, handler.empty() ? kListAllDeadLetters : kListDeadLetters);
  if (!handler.empty()) s.bind(1, handler);
  std::vector<DeadLetter> out;
  int rc;
  while ((rc = s.step()) == SQLITE_ROW) out.push_back(read_dead_letter_row(s));
  if (rc != SQLITE_DONE) return c.error(rc, "listing dead letters");
  return out;
}

Status SqliteEventStore::update_dead_letter(const DeadLetter& d) {
  return writer_->submit_op([&](Connection& c) -> Status {
    HERALD_PREPARE(s, c, kUpdateDeadLetter);
    s.bind(1, d.id);
    s.bind(2, std::int64_t{d.attempts});
    s.bind(3, std::int64_t{d.parked ? 1 : 0});
    s.bind(4, d.last_error);
    s.bind(5, to_micros(d.last_failed_at));
    HERALD_RETURN_IF_ERROR(run(c, s, "updating a dead letter"));
    if (sqlite3_changes(c.db()) == 0) return Status::not_found("no dead letter " + std::to_string(d.id));
    return {};
  });
}

Status SqliteEventStore::remove_dead_letter(std::int64_t id) {
  return writer_->submit_op([&](Connection& c) -> Status {
    HERALD_PREPARE(s, c, kRemoveDeadLetter);
    s.bind(1, id);
    HERALD_RETURN_IF_ERROR(run(c, s, "removing a dead letter"));
    if (sqlite3_changes(c.db()) == 0) return Status::not_found("no dead letter " + std::to_string(id));
    return {};
  });
}

// By the store's clock: SQLite's owners share one process, hence one clock.
Result<LeaseGrant> SqliteEventStore::try_acquire_lease(std::string_view name, std::string_view owner,
                                                     std::chrono::milliseconds ttl) {
  HERALD_RETURN_IF_ERROR(validate_lease(name, owner, ttl));
  LeaseGrant grant;
  HERALD_RETURN_IF_ERROR(writer_->submit_op([&](Connection& c) -> Status {
    const std::int64_t now = to_micros(clock_->now());
    std::int64_t token = 1;
    {
      HERALD_PREPARE(s, c, kGetLease);
      s.bind(1, name);
      int rc = s.step();
      if (rc == SQLITE_ROW) {
        const bool live = s.int64(1) > now;
        const bool ours = s.text(0) == owner;
        if (live && !ours) return {};  // held by another
        token = live ? s.int64(2) : s.int64(2) + 1;  // a renewal keeps the holding's token
      } else if (rc != SQLITE_DONE) {
        return c.error(rc, "reading a lease");
      }
    }
    HERALD_PREPARE(s, c, kPutLease);
    s.bind(1, name);
    s.bind(2, owner);
    s.bind(3, now + std::chrono::duration_cast<std::chrono::microseconds>(ttl).count());
    s.bind(4, token);
    HERALD_RETURN_IF_ERROR(run(c, s, "writing a lease"));
    grant = LeaseGrant{LeaseOutcome::acquired, token};
    return {};
  }));
  return grant;
}

Status SqliteEventStore::release_lease(std::string_view name, std::string_view owner) {
  HERALD_RETURN_IF_ERROR(validate_lease_names(name, owner));
  return writer_->submit_op([&](Connection& c) -> Status {
    HERALD_PREPARE(s, c, kReleaseLease);
    s.bind(1, name);
    s.bind(2, owner);
    return run(c, s, "releasing a lease");
  });
}

}  // namespace herald::detail::sqlite
