#include "store/sqlite/sqlite_transaction.h"

#include <string>

#include "store/sqlite/sqlite_sql.h"
#include "store/validation.h"

namespace herald::detail::sqlite {


Result<InboxOutcome> SqliteTransaction::inbox_record(std::string_view handler, std::string_view event_id) {
  HERALD_RETURN_IF_ERROR(validate_inbox_record(handler, event_id));
  HERALD_PREPARE(s, c_, kInboxRecord);
  s.bind(1, handler);
  s.bind(2, event_id);
  HERALD_RETURN_IF_ERROR(run(c_, s, "recording in the inbox"));
  return sqlite3_changes(c_.db()) == 1 ? InboxOutcome::recorded : InboxOutcome::already_recorded;
}

Result<std::string> SqliteTransaction::get_document(std::string_view collection, std::string_view key) {
  HERALD_RETURN_IF_ERROR(validate_document_key(collection, key));
  HERALD_PREPARE(s, c_, kGetDocument);
  s.bind(1, collection);
  s.bind(2, key);
  int rc = s.step();
  if (rc == SQLITE_DONE) {
    return Status::not_found("no document '" + std::string(key) + "' in '" +
                             std::string(collection) + "'");
  }
  if (rc != SQLITE_ROW) return c_.error(rc, "reading a document");
  return std::string(s.text(0));
}

Status SqliteTransaction::put_document(std::string_view collection, std::string_view key,
                    std::string_view json) {
  HERALD_RETURN_IF_ERROR(validate_document(collection, key, json));
  HERALD_PREPARE(s, c_, kPutDocument);
  s.bind(1, collection);
  s.bind(2, key);
  s.bind(3, json);
  return run(c_, s, "writing a document");
}

Status SqliteTransaction::delete_document(std::string_view collection, std::string_view key) {
  HERALD_RETURN_IF_ERROR(validate_document_key(collection, key));
  HERALD_PREPARE(s, c_, kDeleteDocument);
  s.bind(1, collection);
  s.bind(2, key);
  return run(c_, s, "deleting a document");
}

Result<std::vector<Document>> SqliteTransaction::list_documents(std::string_view collection,
                                             std::string_view after_key,
                                             std::size_t limit) {
  HERALD_RETURN_IF_ERROR(validate_collection(collection));
  std::vector<Document> out;
  if (limit == 0) return out;
  HERALD_PREPARE(s, c_, kListDocuments);
  s.bind(1, collection);
  s.bind(2, after_key);
  s.bind(3, clamp_limit(limit));
  int rc;
  while ((rc = s.step()) == SQLITE_ROW) out.push_back({std::string(s.text(0)), std::string(s.text(1))});
  if (rc != SQLITE_DONE) return c_.error(rc, "listing documents");
  return out;
}

Status SqliteTransaction::save_checkpoint(std::string_view subscription, std::int64_t position) {
  HERALD_RETURN_IF_ERROR(validate_checkpoint(subscription, position));
  HERALD_PREPARE(s, c_, kSaveCheckpoint);
  s.bind(1, subscription);
  s.bind(2, position);
  return run(c_, s, "saving a checkpoint");
}

Status SqliteTransaction::reset_checkpoint(std::string_view subscription, std::int64_t position) {
  HERALD_RETURN_IF_ERROR(validate_checkpoint(subscription, position));
  HERALD_PREPARE(s, c_, kResetCheckpoint);
  s.bind(1, subscription);
  s.bind(2, position);
  return run(c_, s, "resetting a checkpoint");
}

Result<std::int64_t> SqliteTransaction::add_dead_letter(const DeadLetter& d) {
  HERALD_RETURN_IF_ERROR(validate_dead_letter(d));
  HERALD_PREPARE(s, c_, kAddDeadLetter);
  s.bind(1, d.handler);
  s.bind(2, d.position);
  s.bind(3, d.event_id);
  s.bind(4, d.event_type);
  s.bind(5, d.stream_id);
  s.bind(6, std::int64_t{d.parked ? 1 : 0});
  s.bind(7, std::int64_t{d.attempts});
  s.bind(8, d.last_error);
  s.bind(9, to_micros(d.first_failed_at));
  s.bind(10, to_micros(d.last_failed_at));
  int rc = s.step();
  if ((rc & 0xff) == SQLITE_CONSTRAINT) {
    return Status::already_exists("event " + d.event_id + " is already dead-lettered for " + d.handler);
  }
  if (rc != SQLITE_DONE) return c_.error(rc, "adding a dead letter");
  return static_cast<std::int64_t>(sqlite3_last_insert_rowid(c_.db()));
}

// One writer at a time (the writer thread's connection), so nothing can grant the lease between
// this read and the transaction's commit.
Status SqliteTransaction::check_lease(std::string_view lease, std::int64_t token) {
  HERALD_RETURN_IF_ERROR(validate_lease_name(lease));
  HERALD_PREPARE(s, c_, kLeaseToken);
  s.bind(1, lease);
  int rc = s.step();
  if (rc == SQLITE_DONE) return lease_lost_error(lease, token, 0);
  if (rc != SQLITE_ROW) return c_.error(rc, "reading a lease's token");
  const std::int64_t current = s.int64(0);
  if (current != token) return lease_lost_error(lease, token, current);
  return {};
}

}  // namespace herald::detail::sqlite
