// herald/event_store.h — the storage contract: one object with both capabilities of a store,
// the event log (herald/event_log.h) and process state (herald/process_state.h).
//
// The two live behind one object so that they share one database and one transaction: a
// handler's effects, its inbox record and its checkpoint commit together, in the database that
// holds the events. A backend implements EventStore; combine_stores() pairs a log of one backend
// with the process state of another, for a log that keeps no process state of its own.
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

#include <memory>
#include <string_view>

#include "herald/clock.h"
#include "herald/event_log.h"
#include "herald/process_state.h"

namespace herald {

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
// Every method's contract is its base's (EventLog, ProcessState).
// Thread-safety: all methods are safe to call concurrently from any thread.
class EventStore : public EventLog, public ProcessState {
 public:
  // Closes both capabilities; see EventLog::close and ProcessState::close.
  void close() override = 0;
};

// Opens a store by URL. Creates the database and applies schema migrations when needed.
// invalid_argument for an unknown scheme or malformed URL; unavailable when the database cannot be
// reached; corruption when its schema is newer than this build understands.
Result<std::unique_ptr<EventStore>> open_store(std::string_view url, const StoreOptions& options = {});

// One store made of two: the event log `log` and the process state `state` (REQUIRES: both
// non-null; they may be the same object). Every call forwards to the half that owns it, so a
// handler's transaction commits in `state`'s database, not with the events: exactly-once effects
// still hold (inbox and effects commit together), but an effect and the event it answers are no
// longer in one database. close() closes both. url() is the log's. Shares ownership of both.
std::unique_ptr<EventStore> combine_stores(std::shared_ptr<EventLog> log, std::shared_ptr<ProcessState> state);

}  // namespace herald
