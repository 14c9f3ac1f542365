// transact() on PostgreSQL: a StoreTransaction over one pooled connection inside
// BEGIN ISOLATION LEVEL REPEATABLE READ … COMMIT, and the loop that runs the work again when the
// database asks for a retry.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "herald/event_store.h"
#include "store/postgres/pg_support.h"

namespace herald::detail::pg {

// The statements of one transact() call, all on `conn` inside an open transaction. Not
// thread-safe: used by the one thread running the work. Does not own `conn`.
class PgTransaction final : public StoreTransaction {
 public:
  explicit PgTransaction(PGconn* conn) : conn_(conn) {}

  // SQLSTATE of the last failed statement ("" when none failed), to decide on a retry.
  const std::string& last_sqlstate() const { return last_state_; }
  // The error of the first failed statement (ok when none failed).
  const Status& first_error() const { return first_error_; }

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
  // Runs one statement, remembering its failure (see last_sqlstate and first_error).
  Result<Rows> run(const char* sql, const Params& p, std::string_view what);

  PGconn* conn_;
  std::string last_state_;
  Status first_error_;
};

// Runs `work` in a REPEATABLE READ transaction on a connection of `pool` and commits it when
// `work` returns ok; rolls back otherwise and returns `work`'s status. A serialization failure or
// deadlock (40001, 40P01) runs `work` again on fresh data, up to 5 times (then its last error);
// a stale pooled connection found at BEGIN is replaced once. An exception from `work` becomes
// internal. Thread-safe (each call has its own connection).
Status run_transaction(Pool& pool, const std::function<Status(StoreTransaction&)>& work);

}  // namespace herald::detail::pg
