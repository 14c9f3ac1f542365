// herald/event_store.h — the storage contract every backend implements.
//
// Two capabilities live behind one object so that they share one database and one transaction:
//   * the event log: append / read_stream / read_all / stream_version / stats / wait_for;
//   * process state for subscribers: checkpoints, dead letters, leases, and transactions that
//     record "processed" (the inbox) together with a handler's own documents and its checkpoint.
//
// Backends are opened by URL: "memory:", "sqlite:///path/events.db", "postgres://…".
//
//   auto store = herald::open_store("sqlite:///tmp/shop/events.db");
//   if (!store) { log(store.status().to_string()); return 1; }
//   auto r = (*store)->append("order-42", herald::ExpectedVersion::no_stream(), {event});
//   if (!r && r.status().code() == herald::StatusCode::wrong_expected_version) { /* re-read */ }
//
// Thread-safety: every method of EventStore may be called from any thread concurrently.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "herald/clock.h"
#include "herald/event.h"
#include "herald/status.h"

namespace herald {

// What an append wrote.
struct AppendResult {
  std::int64_t first_position = 0;  // global position of the first event written
  std::int64_t last_position = 0;   // global position of the last event written
  std::int64_t stream_version = 0;  // the stream's version after the append (its last event's)
  bool operator==(const AppendResult&) const = default;
};

enum class ReadDirection : std::uint8_t { forwards, backwards };

// Reading backwards from the end of a stream.
inline constexpr std::int64_t kStreamEnd = std::numeric_limits<std::int64_t>::max();

// Which events read_all returns. Empty fields match everything; set fields must all match.
struct ReadFilter {
  std::vector<std::string> event_types;   // the event's type is one of these
  std::string category;                   // stream_category(stream_id) equals this
  std::string stream_id;                  // exactly this stream
  std::optional<Timestamp> since;         // recorded_at >= since
  std::optional<Timestamp> until;         // recorded_at <  until
  std::string correlation_id;             // metadata.correlation_id equals this

  bool empty() const {
    return event_types.empty() && category.empty() && stream_id.empty() && !since && !until &&
           correlation_id.empty();
  }
  bool matches(const RecordedEvent& e) const;
};

// One page of the global log.
struct AllSlice {
  std::vector<RecordedEvent> events;  // in position order
  // Where the next page starts. Past every event examined, matching or not, so a sparse filter
  // still makes progress; equal to head + 1 when the end of the log was reached.
  std::int64_t next_position = 0;
  bool end_of_log = false;  // no event at or after next_position existed when this was read
};

// A page of the global log shared rather than copied: the events are owned by `owner` (the
// memory store's own immutable storage, or one read_all result), so any number of readers can
// hold the same page for the price of one read. A value type; copies share the events, which
// stay valid and unchanged while any copy lives.
struct SharedSlice {
  std::shared_ptr<const void> owner;          // keeps every pointee of `events` alive
  std::vector<const RecordedEvent*> events;   // in position order, never null
  std::int64_t next_position = 0;             // as AllSlice::next_position
  bool end_of_log = false;                    // as AllSlice::end_of_log
};

struct StoreStats {
  std::int64_t total_events = 0;
  std::int64_t stream_count = 0;
  std::map<std::string, std::int64_t> events_by_type;
  std::int64_t first_position = -1;  // -1 when empty
  std::int64_t last_position = -1;   // -1 when empty
  std::optional<Timestamp> first_recorded_at;
  std::optional<Timestamp> last_recorded_at;
  std::int64_t bytes_on_disk = 0;  // 0 for memory; sqlite: the database, its WAL and -shm files
  std::int64_t wal_bytes = 0;      // sqlite: the WAL file's size now; 0 for other backends
};

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

// The work of one transaction on the store's database. Valid only inside the callback passed to
// EventStore::transact; not thread-safe (one thread runs the callback).
class StoreTransaction {
 public:
  virtual ~StoreTransaction() = default;

  // Records that `handler` processed `event_id`. Returns true when newly recorded, false when it
  // was already recorded (the effect happened before: skip it). The record commits or rolls back
  // with everything else in the transaction.
  virtual Result<bool> inbox_record(std::string_view handler, std::string_view event_id) = 0;

  // Documents: JSON text keyed by (collection, key). get returns not_found when absent.
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

  // Stores a subscription's checkpoint with the rest of the transaction.
  virtual Status save_checkpoint(std::string_view subscription, std::int64_t position) = 0;
};

// Limits and knobs of a store. Default: values shown.
struct StoreOptions {
  std::size_t max_payload_bytes = 1 << 20;      // per event payload; larger is invalid_argument
  std::size_t max_events_per_append = 10'000;   // per append call; more is invalid_argument
  std::shared_ptr<Clock> clock;                 // null: system_clock()
  // sqlite: synchronous=FULL (an acknowledged append survives power loss). false: NORMAL
  // (survives a process crash, may lose the last commits on power loss).
  bool durable = true;
  int reader_connections = 4;  // sqlite/postgres: connections for reads
  // sqlite: when the WAL passes this size, the writer escalates from passive checkpoints (which
  // never reset the WAL while readers overlap) to a TRUNCATE checkpoint between two commit groups,
  // so the WAL stays near this bound under any sustained load. The writer, and the store's own
  // readers, wait for it at most about 100 ms plus the copy of the frames not yet checkpointed.
  std::size_t sqlite_wal_limit_bytes = std::size_t{64} << 20;
};

// The storage contract. Obtain one from open_store(); destroying it closes the database.
// Thread-safety: all methods are safe to call concurrently from any thread.
class EventStore {
 public:
  virtual ~EventStore() = default;
  EventStore() = default;
  EventStore(const EventStore&) = delete;
  EventStore& operator=(const EventStore&) = delete;

  // The URL this store was opened with, with any password removed.
  virtual std::string url() const = 0;

  // ---- the event log ----

  // Appends `events` to `stream_id` atomically: all are written with consecutive versions and
  // positions, or none is. Events with an empty id get a fresh UUIDv7.
  // Success: the positions written and the stream's new version; durable when this returns.
  // Failure (nothing written):
  //   wrong_expected_version (actual_version set) when `expected` does not match the stream;
  //   invalid_argument for an empty or >256-byte stream id, no events, an empty type, a payload
  //     that is not JSON or is over max_payload_bytes, more than max_events_per_append events, a
  //     malformed event id, or the same id twice in one call;
  //   already_exists when an event id is already stored elsewhere;
  //   unavailable / corruption from the database; failed_precondition after a failed commit
  //     poisoned the store or after close().
  // Idempotent retry: appending the same ids, in the same order, as one whole earlier successful
  // append, with an `expected` that the stream satisfied just before that append (exact(n) for an
  // append written at n+1, no_stream for the one that created it, any always), returns that
  // append's result and writes nothing. Reusing stored ids any other way fails:
  // wrong_expected_version when `expected` does not match the stream now, else already_exists.
  virtual Result<AppendResult> append(std::string_view stream_id, ExpectedVersion expected,
                                      std::vector<EventData> events) = 0;

  // Up to `max_count` events of one stream: forwards from `from_version` (inclusive, ascending),
  // or backwards from `from_version` (inclusive, descending; kStreamEnd for the last event).
  // not_found when the stream does not exist; invalid_argument for a bad stream id or a negative
  // from_version. Cost is proportional to the events returned, not to the store.
  virtual Result<std::vector<RecordedEvent>> read_stream(std::string_view stream_id,
                                                         std::int64_t from_version,
                                                         std::size_t max_count,
                                                         ReadDirection direction) = 0;

  // Up to `max_count` events with position >= from_position that match `filter`, in position
  // order. Never returns position N+1 unless N is committed and readable too.
  virtual Result<AllSlice> read_all(std::int64_t from_position, std::size_t max_count,
                                    const ReadFilter& filter = {}) = 0;

  // As read_all, returning a SharedSlice. It may stop earlier than read_all would (even with no
  // event) when !end_of_log; next_position is then where to continue. The default wraps one
  // read_all result; a store that keeps its events in memory hands them out without copying.
  virtual Result<SharedSlice> read_all_shared(std::int64_t from_position, std::size_t max_count,
                                              const ReadFilter& filter = {});

  // The stream's version (its last event's), or kNoStreamVersion when it does not exist.
  virtual Result<std::int64_t> stream_version(std::string_view stream_id) = 0;

  // The last readable global position, -1 when the store is empty. Cheap.
  virtual std::int64_t head_position() const = 0;

  virtual Result<StoreStats> stats() = 0;

  // Blocks until an event with position > `after_position` is readable (ok), the timeout passes
  // (timeout) or the store is closed (cancelled). No busy polling. after_position = -1 waits for
  // the first event.
  virtual Status wait_for(std::int64_t after_position, std::chrono::milliseconds timeout) = 0;

  // ---- process state for subscribers ----

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
  // transaction (right for any store; override for speed). Thread-safe.
  virtual Result<std::string> read_document(std::string_view collection, std::string_view key);
  virtual Result<std::vector<Document>> read_documents(std::string_view collection, std::string_view after_key,
                                                       std::size_t limit);

  // A subscription's checkpoint, or not_found when none was saved.
  virtual Result<std::int64_t> load_checkpoint(std::string_view subscription) = 0;
  virtual Status save_checkpoint(std::string_view subscription, std::int64_t position) = 0;

  // Dead letters. add assigns and returns the id; already_exists when (handler, event_id) is
  // already dead-lettered. update rewrites attempts, parked, last_error and last_failed_at.
  virtual Result<std::int64_t> add_dead_letter(const DeadLetter& entry) = 0;
  virtual Result<DeadLetter> get_dead_letter(std::int64_t id) = 0;
  // All entries (handler empty) or one handler's, in (handler, position) order.
  virtual Result<std::vector<DeadLetter>> list_dead_letters(std::string_view handler = {}) = 0;
  virtual Status update_dead_letter(const DeadLetter& entry) = 0;
  // not_found when absent.
  virtual Status remove_dead_letter(std::int64_t id) = 0;

  // Leases give one owner at a time a named piece of work (a handler, or a lane of one). Acquires
  // the lease, or renews it when `owner` holds it. Returns false when another owner holds an
  // unexpired lease. A lease expires `ttl` after its last renewal.
  virtual Result<bool> try_acquire_lease(std::string_view name, std::string_view owner,
                                         std::chrono::milliseconds ttl) = 0;
  // Gives the lease up if `owner` holds it; ok otherwise too.
  virtual Status release_lease(std::string_view name, std::string_view owner) = 0;

  // Stops the store: wakes every wait_for with cancelled; later calls fail with
  // failed_precondition. Idempotent. The destructor calls it.
  virtual void close() = 0;
};

// Opens a store by URL. Creates the database and applies schema migrations when needed.
// invalid_argument for an unknown scheme or malformed URL; unavailable when the database cannot be
// reached; corruption when its schema is newer than this build understands.
Result<std::unique_ptr<EventStore>> open_store(std::string_view url, const StoreOptions& options = {});

}  // namespace herald
