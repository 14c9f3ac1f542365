// The SQLite backend's WAL checkpoints: a thread of its own runs PASSIVE checkpoints as the WAL
// grows, so that commits never pay for them; past the WAL limit the writer itself runs a TRUNCATE
// checkpoint between two commit groups (see truncate_if_wanted), because passive checkpoints never
// reset a WAL that tailing readers keep in use (SQLite calls it checkpoint starvation).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

#include "store/sqlite/sqlite_connection.h"
#include "store/sqlite/sqlite_reader_pool.h"

namespace herald::detail::sqlite {

struct WalCounters {
  std::int64_t wal_bytes = 0;              // the WAL's size after the last commit
  std::int64_t wal_max_bytes = 0;          // the largest seen since open
  std::int64_t escalated_checkpoints = 0;  // TRUNCATE checkpoints run past the limit
  std::int64_t escalated_busy = 0;         // of those, how many gave up waiting for readers
};

// Thread-safety: start/stop from the store's owner thread; truncate_if_wanted and the WAL hook on
// the writer thread; counters from anywhere.
class WalCheckpointer {
 public:
  // `readers` are paused for an escalated checkpoint; both must outlive this object's stop().
  WalCheckpointer(std::string path, std::size_t limit_bytes, ReaderPool& readers)
      : path_(std::move(path)), limit_bytes_(limit_bytes), readers_(readers) {}
  ~WalCheckpointer() { stop(); }

  // Opens the checkpointer's connection (synchronous FULL when `durable`, as a checkpoint must
  // sync the database before the WAL may be reused), installs the WAL hook on `writer` (which
  // turns off SQLite's automatic checkpoints there) and starts the thread.
  Status start(Connection& writer, bool durable, const std::string& vfs);

  // On the writer thread, between two groups: the escalated TRUNCATE checkpoint when the WAL
  // passed its limit since the last call. The writer waits for it at most kEscalatedCheckpointWaitMs
  // plus the copy of the frames not yet checkpointed.
  void truncate_if_wanted(Connection& writer);

  // Stops and joins the thread and closes its connection. Idempotent.
  void stop();

  WalCounters counters() const;

 private:
  static int on_wal_commit(void* self, sqlite3* db, const char* name, int pages);
  void loop();
  void truncate(Connection& writer_conn);

  const std::string path_;
  const std::size_t limit_bytes_;
  ReaderPool& readers_;
  std::int64_t page_size_ = 4096;  // set by start() before the WAL hook is installed

  // The checkpointer thread owns conn_ (after start() hands it over).
  Connection conn_;
  std::thread thread_;
  // Held by whichever of the checkpointer and the writer is checkpointing (SQLite lets one run).
  std::timed_mutex run_mu_;
  std::mutex mu_;  // guards wanted_, stop_
  std::condition_variable cv_;
  bool wanted_ = false;
  bool stop_ = false;
  // The WAL passed limit_bytes_: the writer truncates it after this group. Writer thread only
  // (the WAL hook runs there), so no mutex.
  bool truncate_wanted_ = false;
  // WAL size (pages) when the writer last asked for a checkpoint. Writer thread only.
  int requested_at_pages_ = 0;
  // Written by the WAL hook (writer thread) and truncate, read by counters().
  std::atomic<std::int64_t> wal_bytes_{0};
  std::atomic<std::int64_t> wal_max_bytes_{0};
  std::atomic<std::int64_t> escalated_checkpoints_{0};
  std::atomic<std::int64_t> escalated_busy_{0};
};

}  // namespace herald::detail::sqlite
