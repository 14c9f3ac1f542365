// stats() of the PostgreSQL backend: the head and sizes from one snapshot, and per-type counts
// kept incrementally so that a scrape of /metrics costs what was appended since the previous one,
// not a scan of the whole log.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "herald/event_store.h"
#include "store/postgres/pg_support.h"

namespace herald::detail::pg {

// Thread-safe: calls are serialised on an internal mutex.
class PgStats {
 public:
  // The store's statistics from one REPEATABLE READ snapshot taken on `conn` (which must not be
  // inside a transaction); a failed statement's error as pg::error_status maps it.
  Result<StoreStats> collect(PGconn* conn);

 private:
  Result<StoreStats> collect_in_snapshot(PGconn* conn);

  // Per-type event and stream counts of positions [0, upto).
  struct CountedLog {
    std::int64_t upto = 0;
    std::int64_t streams = 0;
    std::map<std::string, std::int64_t> by_type;
  };
  // mu_ guards counted_ and is held across a whole collect(), so that snapshots are taken in the
  // order they update counted_ and counted_ never runs ahead of a call's snapshot.
  std::mutex mu_;
  CountedLog counted_;
};

}  // namespace herald::detail::pg
