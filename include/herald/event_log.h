// herald/event_log.h — the event log capability of a store: streams of events with versions,
// one global order of positions, filtered reads and waiting for new events.
//
// An EventLog is half of the storage contract; ProcessState (herald/process_state.h) is the
// other half. EventStore (herald/event_store.h) is one object providing both, which is what
// open_store() returns and what the bus runs on.
//
//   auto r = log.append("order-42", herald::ExpectedVersion::no_stream(), {event});
//   if (!r && r.status().code() == herald::StatusCode::wrong_expected_version) { /* re-read */ }
//
// Thread-safety: every method of EventLog may be called from any thread concurrently.
#pragma once

#include <chrono>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

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

// The event log. Implementations: every backend's store (memory, SQLite, PostgreSQL).
// Thread-safety: all methods are safe to call concurrently from any thread.
class EventLog {
 public:
  virtual ~EventLog() = default;
  EventLog() = default;
  EventLog(const EventLog&) = delete;
  EventLog& operator=(const EventLog&) = delete;

  // The URL this log was opened with, with any password removed.
  virtual std::string url() const = 0;

  // Appends `events` to `stream_id` atomically: all are written with consecutive versions and
  // positions, or none is. Events with an empty id get a fresh UUIDv7. `events` is consumed.
  // Success: the positions written and the stream's new version; durable when this returns.
  // Failure (nothing written):
  //   wrong_expected_version (actual_version set) when `expected` does not match the stream;
  //   invalid_argument for an empty or >256-byte stream id, no events, an empty type, a payload
  //     that is not JSON, nested deeper than kMaxJsonDepth or over max_payload_bytes, more than
  //     max_events_per_append events, a malformed event id, or the same id twice in one call;
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
  // order. Never returns position N+1 unless N is committed and readable too. invalid_argument for
  // a negative from_position or a bad filter stream id.
  virtual Result<AllSlice> read_all(std::int64_t from_position, std::size_t max_count,
                                    const ReadFilter& filter = {}) = 0;

  // As read_all, returning a SharedSlice. It may stop earlier than read_all would (even with no
  // event) when !end_of_log; next_position is then where to continue. The default wraps one
  // read_all result; a store that keeps its events in memory hands them out without copying.
  virtual Result<SharedSlice> read_all_shared(std::int64_t from_position, std::size_t max_count,
                                              const ReadFilter& filter = {});

  // The stream's version (its last event's), or kNoStreamVersion when it does not exist.
  // invalid_argument for a bad stream id.
  virtual Result<std::int64_t> stream_version(std::string_view stream_id) = 0;

  // The last readable global position, -1 when the store is empty. Cheap; never fails.
  virtual std::int64_t head_position() const = 0;

  // Counts and sizes; unavailable from the database.
  virtual Result<StoreStats> stats() = 0;

  // Blocks until an event with position > `after_position` is readable (ok), the timeout passes
  // (timeout) or the log is closed (cancelled). No busy polling. after_position = -1 waits for
  // the first event.
  virtual Status wait_for(std::int64_t after_position, std::chrono::milliseconds timeout) = 0;

  // Stops the log: wakes every wait_for with cancelled; later calls fail with
  // failed_precondition. Idempotent. A backend's destructor calls it.
  virtual void close() = 0;
};

}  // namespace herald
