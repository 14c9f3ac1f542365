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

}  // namespace herald::detail::sqlite
