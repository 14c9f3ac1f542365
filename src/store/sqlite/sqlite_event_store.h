#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "herald/event_store.h"

namespace herald::detail {

// The embedded backend ("sqlite:///path/events.db"). `path` is the file system path from the URL
// (for "sqlite:///tmp/x.db" it is "/tmp/x.db"); the directory must exist or be creatable.
Result<std::unique_ptr<EventStore>> open_sqlite_store(std::string url, std::string path,
                                                      const StoreOptions& options);

// Knobs below the public contract, for tests and diagnostics. Default: values shown.
struct SqliteTuning {
  // SQLite VFS used by every connection (e.g. a fault-injecting one in tests); empty: the default.
  std::string vfs;
  // Bounds of the in-memory cache of recently committed events that read_all serves from.
  std::size_t cache_max_bytes = std::size_t{256} << 20;
  std::size_t cache_max_events = std::size_t{1} << 20;
};

// As above, with `tuning`. The VFS named by tuning.vfs must stay registered while the store lives.
Result<std::unique_ptr<EventStore>> open_sqlite_store(std::string url, std::string path,
                                                      const StoreOptions& options,
                                                      const SqliteTuning& tuning);

// What the writer has done so far (a snapshot; values move while writes run).
struct SqliteCounters {
  std::int64_t commits = 0;        // successful group COMMITs
  std::int64_t queued_writes = 0;  // write requests waiting for the writer right now
  std::int64_t cached_events = 0;  // events in the tail cache
  int synchronous = -1;            // the writer connection's PRAGMA synchronous (2 FULL, 1 NORMAL)
  std::int64_t wal_bytes = 0;      // the WAL's size after the last commit
  std::int64_t wal_max_bytes = 0;  // the largest WAL size seen after a commit since open
  std::int64_t escalated_checkpoints = 0;  // TRUNCATE checkpoints run because the WAL passed its limit
  std::int64_t escalated_busy = 0;         // of those, how many gave up waiting for readers
};

// Counters of a store opened by open_sqlite_store; invalid_argument for any other store.
// Thread-safe.
Result<SqliteCounters> sqlite_counters(EventStore& store);

}  // namespace herald::detail
