// herald/sqlite_store.h — the embedded SQLite store opened by path (herald::sqlite alone, without
// open_store's other backends and their libraries), and its online backup.
//
//   auto store = herald::open_sqlite_store("/var/lib/shop/events.db");
//   …
//   auto b = herald::backup_sqlite_store(**store, "/backups/events-2026-12-04.db");
//   if (!b) { log(b.status().to_string()); }
//   else    { log("backup holds positions 0..", b->head_position); }
//
// Restoring is opening the backup file as the store of a new data directory (it is an ordinary
// SQLite database in WAL mode): docs/operations.md, "Backups".
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "herald/event_store.h"
#include "herald/status.h"

namespace herald {

// Opens, creating it and its directory when absent, the SQLite store in the file `path`: the same
// store as open_store("sqlite://" + path, options). Failure as open_store (unavailable when the
// file cannot be opened, corruption when its schema is newer than this build).
Result<std::unique_ptr<EventStore>> open_sqlite_store(std::string_view path, const StoreOptions& options = {});

// How far a backup is, after one step.
struct BackupProgress {
  std::int64_t pages_total = 0;      // pages in the snapshot being copied
  std::int64_t pages_remaining = 0;  // of those, not copied yet
  int steps = 0;                     // steps taken so far
};

// Knobs of backup_sqlite_store. Default: values shown.
struct BackupOptions {
  // Database pages copied per step (4 KiB each by default). Smaller steps bound the time the
  // destination's lock is held and how often `stop` is looked at; they do not slow writers down,
  // which never wait for a backup in WAL mode.
  int pages_per_step = 1024;
  // Run SQLite's quick_check on the copy before it gets its final name.
  bool verify = true;
  // Called on the backup's thread after every step (progress reports, tests). The snapshot stays
  // open while it runs, so a slow callback lets the WAL grow. Null: none.
  std::function<void(const BackupProgress&)> on_step;
};

// What a finished backup holds.
struct BackupResult {
  std::string path;                // the backup file (the `destination` given)
  std::int64_t head_position = -1; // the backup holds exactly the events at positions 0..head_position
  std::int64_t bytes = 0;          // size of the backup file
  std::int64_t pages = 0;          // database pages copied
  int steps = 0;                   // backup steps taken
};

// Writes a consistent copy of the SQLite store `store` to the new file `destination` while the
// store keeps serving: appends, checkpoints, dead letters, leases and transactions continue (WAL
// readers never block the writer), and the copy is the database as of one moment — every event up
// to some position and nothing after it, with every checkpoint, dead letter, inbox record and
// document as they were committed at that moment, since they commit in the same transactions as the
// events. The copy is written under "<destination>.partial", synced, checked (options.verify) and
// then renamed, so `destination` either does not exist or is a complete backup.
// Success: what the backup holds. Failure (no file left behind):
//   invalid_argument when `store` is not a SQLite store opened from a file (memory:, postgres://,
//     ":memory:"), or `destination` is empty;
//   already_exists when `destination` exists (the store's own file included), or its .partial does
//     (another backup to it is running, or one was interrupted: remove it);
//   unavailable when a file cannot be created, written or synced (disk full, permissions);
//   corruption when the copy fails quick_check.
// Thread-safe; runs on the calling thread and takes about as long as reading the database once.
Result<BackupResult> backup_sqlite_store(EventStore& store, std::string_view destination,
                                         const BackupOptions& options = {});

}  // namespace herald
