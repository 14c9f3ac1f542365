// StoreTransaction over one SQLite connection: the writer's, inside the commit group's
// transaction (transact), or a reader's (read_document / read_documents, which only read).
#pragma once

#include "herald/process_state.h"
#include "store/sqlite/sqlite_connection.h"

namespace herald::detail::sqlite {

// Not thread-safe: used by the connection's owning thread, for one callback. The input checks are
// src/store/validation.h's, shared with every backend.
class SqliteTransaction final : public StoreTransaction {
 public:
  explicit SqliteTransaction(Connection& c) : c_(c) {}

  Result<InboxOutcome> inbox_record(std::string_view handler, std::string_view event_id) override;
  Result<std::string> get_document(std::string_view collection, std::string_view key) override;
  Status put_document(std::string_view collection, std::string_view key, std::string_view json) override;
  Status delete_document(std::string_view collection, std::string_view key) override;
  Result<std::vector<Document>> list_documents(std::string_view collection, std::string_view after_key,
                                               std::size_t limit) override;
  Status save_checkpoint(std::string_view subscription, std::int64_t position) override;
  Status reset_checkpoint(std::string_view subscription, std::int64_t position) override;
  Result<std::int64_t> add_dead_letter(const DeadLetter& entry) override;
  Status check_lease(std::string_view lease, std::int64_t token) override;

 private:
  Connection& c_;
};

}  // namespace herald::detail::sqlite
