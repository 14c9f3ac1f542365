// herald/process_state.h — the process-state capability of a store: what subscribers keep about
// their own progress (checkpoints, dead letters, leases, the inbox) and read models (documents),
// written in transactions.
//
// ProcessState is half of the storage contract; EventLog (herald/event_log.h) is the other half.
// A backend provides both (EventStore), so that a handler's effects, its inbox record and its
// checkpoint commit in one transaction of the database that holds the events.
//
// Names (subscriptions, handlers, collections, keys, leases, owners) are non-empty byte strings;
// every backend refuses an empty one with the same invalid_argument (src/store/validation.cpp).
//
// Thread-safety: every method of ProcessState may be called from any thread concurrently.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "herald/event.h"
#include "herald/status.h"

namespace herald {

// A handler's event that failed for good, or that waits behind one ("parked").
struct DeadLetter {
  std::int64_t id = 0;  // assigned by the store on add
  std::string handler;
  std::int64_t position = 0;
  std::string event_id;
  std::string event_type;
  std::string stream_id;
  bool parked = false;  // waiting behind an earlier dead letter of the same stream; never failed
  std::int32_t attempts = 0;
  std::string last_error;
  Timestamp first_failed_at{};
  Timestamp last_failed_at{};
};

// A JSON document in a named collection: the read-model storage of projections.
struct Document {
  std::string key;
  std::string json;
};

// Whether an inbox record was new.
enum class InboxOutcome : std::uint8_t { recorded, already_recorded };

// The work of one transaction on the store's database. Valid only inside the callback passed to
// ProcessState::transact; not thread-safe (one thread runs the callback).
class StoreTransaction {
 public:
  virtual ~StoreTransaction() = default;

  // Records that `handler` processed `event_id`: recorded when newly recorded, already_recorded
  // when it was recorded before (the effect happened: skip it). The record commits or rolls back
  // with everything else in the transaction. invalid_argument for an empty handler or event id.
  virtual Result<InboxOutcome> inbox_record(std::string_view handler, std::string_view event_id) = 0;

  // Documents: JSON text keyed by (collection, key). get returns not_found when absent;
  // invalid_argument for an empty collection or key (every document method).
  virtual Result<std::string> get_document(std::string_view collection, std::string_view key) = 0;
  // Inserts or replaces. invalid_argument when `json` does not parse or a name is empty.
  virtual Status put_document(std::string_view collection, std::string_view key,
                              std::string_view json) = 0;
  // Removing an absent document is ok.
  virtual Status delete_document(std::string_view collection, std::string_view key) = 0;
  // Documents of a collection in key order, keys > after_key, at most `limit`.
  virtual Result<std::vector<Document>> list_documents(std::string_view collection,
                                                       std::string_view after_key,
                                                       std::size_t limit) = 0;

  // Moves a subscription's checkpoint forward to `position` with the rest of the transaction; a
  // position at or below the stored one leaves it as it is (ok): a checkpoint never moves
  // backwards by a save, so a late writer cannot undo a newer one. invalid_argument for an empty
  // name or a negative position.
  virtual Status save_checkpoint(std::string_view subscription, std::int64_t position) = 0;
  // Sets the checkpoint to `position`, backwards too: for the deliberate rewinds (a replay, a
  // change of a handler's lane layout). Same errors as save_checkpoint.
  virtual Status reset_checkpoint(std::string_view subscription, std::int64_t position) = 0;

  // Adds a dead letter with the rest of the transaction: the same answers as
  // ProcessState::add_dead_letter (the id; already_exists; invalid_argument).
  virtual Result<std::int64_t> add_dead_letter(const DeadLetter& entry) = 0;

  // The fence of a lease holder's writes: ok when `token` is still the current fencing token of
  // lease `lease` (no one acquired it since the grant that returned `token`, even if it expired
  // meanwhile), lease_lost otherwise (also when the lease was never granted). The answer holds
  // until the transaction ends: an acquisition by another owner waits for this transaction
  // (PostgreSQL locks the lease row; SQLite and memory run one writer at a time), so everything
  // this transaction writes after an ok check is ordered before the next owner's grant.
  // invalid_argument for an empty name.
  virtual Status check_lease(std::string_view lease, std::int64_t token) = 0;
};

// Whether try_acquire_lease gave the lease to the caller.
enum class LeaseOutcome : std::uint8_t { acquired, held_by_another };

// What try_acquire_lease answers.
struct LeaseGrant {
  LeaseOutcome outcome = LeaseOutcome::held_by_another;
  // When acquired: the fencing token of this holding, which the holder passes to
  // StoreTransaction::check_lease with each write it makes under the lease. A renewal by the
  // holder of a live lease keeps the token; every other acquisition (a new owner, or the same
  // owner after the lease expired or was released) gets a token greater than every earlier one
  // of that lease. 0 when held_by_another.
  std::int64_t token = 0;
};

// Process state. Implementations: every backend's store (memory, SQLite, PostgreSQL).
// Thread-safety: all methods are safe to call concurrently from any thread.
class ProcessState {
 public:
  virtual ~ProcessState() = default;
  ProcessState() = default;
  ProcessState(const ProcessState&) = delete;
  ProcessState& operator=(const ProcessState&) = delete;

  // Runs `work` in one database transaction. If `work` returns ok the transaction commits (and
  // is durable when transact returns); otherwise it rolls back and its status is returned.
  // `work` may be run again if the database asks for a retry, so it must not have side effects
  // outside the transaction. Exceptions thrown by `work` are caught and returned as internal.
  // `work` may read through this store but must not write through it (append, save_checkpoint,
  // dead letters, leases, a nested transact): SQLite runs `work` on its single writer thread, where
  // such a call fails with failed_precondition instead of deadlocking. Write through `tx` instead.
  virtual Status transact(const std::function<Status(StoreTransaction&)>& work) = 0;

  // Read models outside a transaction, for queries (an HTTP GET of a cart): one document, or a
  // page of a collection in key order (keys > after_key, at most `limit`), as of a recent commit.
  // Same answers and errors as StoreTransaction's get_document and list_documents (not_found,
  // invalid_argument for an empty name). They never wait for a writer: SQLite answers from its
  // reader connections, not from the writer thread every transact queues on. The defaults run a
  // transaction (right for any store; override for speed).
  virtual Result<std::string> read_document(std::string_view collection, std::string_view key);
  virtual Result<std::vector<Document>> read_documents(std::string_view collection, std::string_view after_key,
                                                       std::size_t limit);

  // A subscription's checkpoint, or not_found when none was saved. invalid_argument for an empty
  // name.
  virtual Result<std::int64_t> load_checkpoint(std::string_view subscription) = 0;
  // Moves it forward, durable on return; never backwards (see StoreTransaction::save_checkpoint;
  // StoreTransaction::reset_checkpoint rewinds). invalid_argument for an empty name or a negative
  // position.
  virtual Status save_checkpoint(std::string_view subscription, std::int64_t position) = 0;

  // Dead letters. add assigns and returns the id; already_exists when (handler, event_id) is
  // already dead-lettered; invalid_argument without a handler or an event id.
  virtual Result<std::int64_t> add_dead_letter(const DeadLetter& entry) = 0;
  // not_found when absent.
  virtual Result<DeadLetter> get_dead_letter(std::int64_t id) = 0;
  // All entries (handler empty) or one handler's, in (handler, position) order.
  virtual Result<std::vector<DeadLetter>> list_dead_letters(std::string_view handler = {}) = 0;
  // Rewrites attempts, parked, last_error and last_failed_at of entry.id; not_found when absent.
  virtual Status update_dead_letter(const DeadLetter& entry) = 0;
  // not_found when absent.
  virtual Status remove_dead_letter(std::int64_t id) = 0;

  // Leases give one owner at a time a named piece of work (a handler, or a lane of one). Acquires
  // the lease, or renews it when `owner` holds it (acquired, with the holding's fencing token:
  // see LeaseGrant); held_by_another when another owner holds an unexpired lease. A lease expires
  // `ttl` after its last renewal, by one clock for every owner: the database server's on
  // PostgreSQL (clock_timestamp()), so client clocks may disagree by any amount; the store's
  // clock (StoreOptions::clock) on SQLite and memory, whose owners share one process. A caller
  // that wants to know whether it still holds the lease counts from just before its request on
  // its monotonic clock: the lease lasts at least `ttl` from then. invalid_argument for an empty
  // name or owner, or a ttl that is not positive.
  virtual Result<LeaseGrant> try_acquire_lease(std::string_view name, std::string_view owner,
                                               std::chrono::milliseconds ttl) = 0;
  // Gives the lease up if `owner` holds it (it is free at once; its next grant gets a new token);
  // ok otherwise too. invalid_argument for empty names.
  virtual Status release_lease(std::string_view name, std::string_view owner) = 0;

  // Stops the process state: later calls fail with failed_precondition. Idempotent.
  virtual void close() = 0;
};

}  // namespace herald
