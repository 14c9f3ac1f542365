#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "herald/event_store.h"

namespace herald::detail {

// Knobs of the PostgreSQL backend beyond StoreOptions (tests use them to inject faults).
struct PostgresOptions {
  // Send NOTIFY herald_events when an append commits. false simulates lost notifications: other
  // stores then learn of new events only by polling.
  bool notify = true;
  // How often a store polls the head position while some wait_for is blocked, as a fallback for
  // a lost notification (a dropped LISTEN connection, a writer that did not notify).
  std::chrono::milliseconds poll_interval{250};
  // A filtered read_all examines at most this many positions per call, so that a sparse filter
  // costs a bounded scan and still advances next_position (end_of_log stays false until the
  // window reaches the head).
  std::int64_t filtered_scan_window = 100'000;
};

// The PostgreSQL backend ("postgres://user:pass@host:port/db" or "postgresql://…"), on libpq.
// Applies schema migrations on open. unavailable when the server cannot be reached; corruption
// when the database's schema is newer than this build; invalid_argument for a malformed URL.
Result<std::unique_ptr<EventStore>> open_postgres_store(std::string url, const StoreOptions& options);
Result<std::unique_ptr<EventStore>> open_postgres_store(std::string url, const StoreOptions& options,
                                                        const PostgresOptions& pg_options);

}  // namespace herald::detail
