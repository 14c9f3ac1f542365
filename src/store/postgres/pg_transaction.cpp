#include "store/postgres/pg_transaction.h"

#include <exception>

#include "store/postgres/pg_rows.h"
#include "store/postgres/pg_sql.h"
#include "store/validation.h"

namespace herald::detail::pg {

Result<InboxOutcome> PgTransaction::inbox_record(std::string_view handler, std::string_view event_id) {
  HERALD_RETURN_IF_ERROR(validate_inbox_record(handler, event_id));
  Params p;
  p.add(handler).add(event_id);
  auto r = run(sql::kInboxRecord, p, "inbox_record");
  if (!r) return r.status();
  return r->affected() == 1 ? InboxOutcome::recorded : InboxOutcome::already_recorded;
}

Result<std::string> PgTransaction::get_document(std::string_view collection, std::string_view key) {
  HERALD_RETURN_IF_ERROR(validate_document_key(collection, key));
  Params p;
  p.add(collection).add(key);
  auto r = run(sql::kGetDocument, p, "get_document");
  if (!r) return r.status();
  if (r->size() == 0) {
    return Status::not_found("no document '" + std::string(key) + "' in collection '" +
                             std::string(collection) + "'");
  }
  return r->str(0, 0);
}

Status PgTransaction::put_document(std::string_view collection, std::string_view key,
                                   std::string_view json) {
  HERALD_RETURN_IF_ERROR(validate_document(collection, key, json));
  Params p;
  p.add(collection).add(key).add(json);
  return status_of(run(sql::kPutDocument, p, "put_document"));
}

Status PgTransaction::delete_document(std::string_view collection, std::string_view key) {
  HERALD_RETURN_IF_ERROR(validate_document_key(collection, key));
  Params p;
  p.add(collection).add(key);
  return status_of(run(sql::kDeleteDocument, p, "delete_document"));
}

Result<std::vector<Document>> PgTransaction::list_documents(std::string_view collection,
                                                            std::string_view after_key, std::size_t limit) {
  HERALD_RETURN_IF_ERROR(validate_collection(collection));
  Params p;
  p.add(collection).add(after_key).add(clamp_count(limit));
  auto r = run(sql::kListDocuments, p, "list_documents");
  if (!r) return r.status();
  std::vector<Document> out;
  out.reserve(static_cast<std::size_t>(r->size()));
  for (int i = 0; i < r->size(); ++i) out.push_back(Document{r->str(i, 0), r->str(i, 1)});
  return out;
}

Status PgTransaction::save_checkpoint(std::string_view subscription, std::int64_t position) {
  HERALD_RETURN_IF_ERROR(validate_checkpoint(subscription, position));
  Params p;
  p.add(subscription).add(position);
  return status_of(run(sql::kSaveCheckpoint, p, "save_checkpoint"));
}

Status PgTransaction::reset_checkpoint(std::string_view subscription, std::int64_t position) {
  HERALD_RETURN_IF_ERROR(validate_checkpoint(subscription, position));
  Params p;
  p.add(subscription).add(position);
  return status_of(run(sql::kResetCheckpoint, p, "reset_checkpoint"));
}

Result<std::int64_t> PgTransaction::add_dead_letter(const DeadLetter& entry) {
  HERALD_RETURN_IF_ERROR(validate_dead_letter(entry));
  auto r = run(sql::kAddDeadLetter, dead_letter_params(entry), "add_dead_letter");
  if (!r) return r.status();
  if (r->size() == 0) return dead_letter_exists(entry);
  return r->i64(0, 0);
}

Status PgTransaction::check_lease(std::string_view lease, std::int64_t token) {
  HERALD_RETURN_IF_ERROR(validate_lease_name(lease));
  Params p;
  p.add(lease);
  auto r = run(sql::kLeaseToken, p, "check_lease");
  if (!r) return r.status();
  if (r->size() == 0) return lease_lost_error(lease, token, 0);
  const std::int64_t current = r->i64(0, 0);
  if (current != token) return lease_lost_error(lease, token, current);
  return {};
}

Result<Rows> PgTransaction::run(const char* sql, const Params& p, std::string_view what) {
  std::vector<const char*> values = p.pointers();
  PGresult* r = PQexecParams(conn_, sql, p.size(), nullptr, values.data(), nullptr, nullptr, 0);
  const ExecStatusType st = r == nullptr ? PGRES_FATAL_ERROR : PQresultStatus(r);
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return Rows(r);
  last_state_ = sqlstate(r);
  Status s = error_status(conn_, r, what);
  PQclear(r);
  if (first_error_.is_ok()) first_error_ = s;
  return s;
}

namespace {

bool asks_for_retry(const std::string& state) { return state == "40001" || state == "40P01"; }

}  // namespace

Status run_transaction(Pool& pool, const std::function<Status(StoreTransaction&)>& work) {
  constexpr int kAttempts = 5;
  Status last;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    auto lease = pool.acquire();
    if (!lease) return lease.status();
    PGconn* c = lease->get();
    // REPEATABLE READ, not the default READ COMMITTED: a read-modify-write of a document (a
    // projection's counters) racing another transaction on the same row must fail with 40001
    // and run again below, instead of silently losing the other's update. Two lanes of one
    // handler, or several instances, update the same documents concurrently.
    Status begun = exec_simple(c, sql::kTransactionBegin, "transact");
    if (!begun.is_ok()) {
      // A stale pooled connection: nothing ran yet, so another connection may try.
      if (broken(c)) {
        pool.discard_idle();
        if (attempt == 0) continue;
      }
      return begun;
    }
    PgTransaction txn(c);
    Status status;
    try {
      status = work(txn);
    } catch (const std::exception& e) {
      status = Status::internal(std::string("transaction work threw: ") + e.what());
    } catch (...) {
      status = Status::internal("transaction work threw a non-standard exception");
    }
    if (status.is_ok() && PQtransactionStatus(c) == PQTRANS_INERROR) {
      // `work` went on after one of its statements failed: COMMIT would silently roll back.
      status = txn.first_error().is_ok() ? Status::internal("transaction aborted by the database")
                                         : txn.first_error();
    }
    if (status.is_ok()) {
      PGresult* r = PQexec(c, "COMMIT");
      const bool committed = r != nullptr && PQresultStatus(r) == PGRES_COMMAND_OK;
      const std::string state = sqlstate(r);
      if (committed) {
        PQclear(r);
        return {};
      }
      status = error_status(c, r, "transact commit");
      PQclear(r);
      if (asks_for_retry(state)) {
        last = status;
        continue;
      }
      return status;
    }
    (void)exec_simple(c, "ROLLBACK", "transact rollback");
    if (asks_for_retry(txn.last_sqlstate())) {  // the database asks for a retry
      last = status;
      continue;
    }
    return status;
  }
  return last;
}

}  // namespace herald::detail::pg
