#include "store/sqlite/sqlite_wal.h"

#include <algorithm>
#include <chrono>

#include <spdlog/spdlog.h>

namespace herald::detail::sqlite {
namespace {

// The WAL size (in pages) after a commit that wakes the checkpointer (SQLite's default too).
constexpr int kCheckpointPages = 1000;

// How long an escalated (TRUNCATE) checkpoint waits for the writer and for readers still on an
// older snapshot before giving up until the next wake-up; the writer waits for it at most this
// long plus the copy of the frames written since the passive pass that precedes it.
constexpr int kEscalatedCheckpointWaitMs = 100;
// The busy timeout of every connection otherwise (sqlite_connection.cpp).
constexpr int kDefaultBusyTimeoutMs = 5000;

}  // namespace

Status WalCheckpointer::start(Connection& writer, bool durable, const std::string& vfs) {
  {
    HERALD_PREPARE(s, writer, "PRAGMA page_size");
    int rc = s.step();
    if (rc != SQLITE_ROW) return writer.error(rc, "reading PRAGMA page_size");
    page_size_ = s.int64(0);
  }
  auto cp = Connection::open(path_, /*create=*/false, vfs);
  if (!cp) return cp.status();
  conn_ = std::move(*cp);
  HERALD_RETURN_IF_ERROR(conn_.exec(durable ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL"));
  sqlite3_wal_hook(writer.db(), &WalCheckpointer::on_wal_commit, this);
  thread_ = std::thread([this] { loop(); });
  return {};
}

void WalCheckpointer::truncate_if_wanted(Connection& writer) {
  if (!truncate_wanted_) return;
  truncate_wanted_ = false;
  truncate(writer);
}

void WalCheckpointer::stop() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

WalCounters WalCheckpointer::counters() const {
  WalCounters c;
  c.wal_bytes = wal_bytes_.load();
  c.wal_max_bytes = wal_max_bytes_.load();
  c.escalated_checkpoints = escalated_checkpoints_.load();
  c.escalated_busy = escalated_busy_.load();
  return c;
}

// The escalated checkpoint, run by the writer itself between two groups (the one before is
// already acknowledged), so nothing competes with it for the WAL's write lock: SQLite's locks are
// not fair, and a checkpointer thread lost that race to a writer committing back to back nearly
// every time (measured: the WAL reached 150 MiB in 20 s against an 8 MiB limit); a thread woken
// for it also lagged minutes' worth of megabytes behind on two busy cores. The only wait left is
// for readers still on an older snapshot (and a passive pass already under way), bounded by
// kEscalatedCheckpointWaitMs in all; then TRUNCATE copies the frames and empties the WAL file,
// so the next commit starts it afresh. Passive checkpoints stop while the WAL is over its limit.
void WalCheckpointer::truncate(Connection& writer_conn) {
  // Our own readers hold back for the checkpoint's few milliseconds: four tails reading back to
  // back always held some read mark, and SQLite's busy handler, retrying at intervals, lost to
  // them 95% of the time (measured). Readers of other processes are bounded by the busy timeout.
  const auto started = std::chrono::steady_clock::now();
  const auto deadline = started + std::chrono::milliseconds(kEscalatedCheckpointWaitMs);
  // SQLite answers BUSY at once, without its busy handler, while another checkpoint runs: wait
  // for the checkpointer's passive pass to end instead (measured: 95% of the attempts failed so
  // while a pass started just below the limit was still copying).
  std::unique_lock passive(run_mu_, std::defer_lock);
  int rc = SQLITE_BUSY;
  int log_pages = 0;
  int copied = 0;
  if (passive.try_lock_until(deadline)) {
    readers_.pause(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()));
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    sqlite3_busy_timeout(writer_conn.db(), static_cast<int>(std::max<std::int64_t>(1, left.count())));
    rc = sqlite3_wal_checkpoint_v2(writer_conn.db(), nullptr, SQLITE_CHECKPOINT_TRUNCATE, &log_pages, &copied);
    sqlite3_busy_timeout(writer_conn.db(), kDefaultBusyTimeoutMs);
    readers_.resume();
  }
  escalated_checkpoints_.fetch_add(1, std::memory_order_relaxed);
  if (rc == SQLITE_BUSY) {
    escalated_busy_.fetch_add(1, std::memory_order_relaxed);  // readers outlasted the wait: next time
  } else if (rc != SQLITE_OK) {
    spdlog::warn("sqlite store {}: truncating checkpoint failed: {}", path_,
                 writer_conn.error(rc, "checkpoint").to_string());
  } else {
    wal_bytes_.store(0, std::memory_order_relaxed);
  }
}

// SQLite calls this on the writer thread after each commit with the WAL's size in pages.
// A checkpoint is asked for once per kCheckpointPages written, not after every commit past the
// threshold: while commits keep coming, a passive checkpoint rarely catches up with the last
// frame, the WAL is not reset, and asking on every commit made the checkpointer sync the WAL
// and the database about once per four single-event appends (measured: 2.2 fsyncs per append).
//
// Past the WAL limit the wake-up also asks for escalation: a passive checkpoint never resets the
// WAL while readers overlap (SQLite calls it checkpoint starvation), so under sustained load
// with tailing readers the WAL would grow for as long as the load lasts.
int WalCheckpointer::on_wal_commit(void* self, sqlite3* /*db*/, const char* /*name*/, int pages) {
  auto* wal = static_cast<WalCheckpointer*>(self);
  const std::int64_t wal_bytes = 32 + static_cast<std::int64_t>(pages) * (wal->page_size_ + 24);
  wal->wal_bytes_.store(wal_bytes, std::memory_order_relaxed);
  if (wal_bytes > wal->wal_max_bytes_.load(std::memory_order_relaxed)) {
    wal->wal_max_bytes_.store(wal_bytes, std::memory_order_relaxed);
  }
  if (wal_bytes > static_cast<std::int64_t>(wal->limit_bytes_)) {
    wal->truncate_wanted_ = true;
    return SQLITE_OK;
  }
  if (pages < wal->requested_at_pages_) wal->requested_at_pages_ = 0;  // reset
  if (pages - wal->requested_at_pages_ >= kCheckpointPages) {
    wal->requested_at_pages_ = pages;
    {
      std::lock_guard lk(wal->mu_);
      wal->wanted_ = true;
    }
    wal->cv_.notify_one();
  }
  return SQLITE_OK;
}

void WalCheckpointer::loop() {
  for (;;) {
    {
      std::unique_lock lk(mu_);
      cv_.wait(lk, [&] { return wanted_ || stop_; });
      if (stop_) break;
      wanted_ = false;
    }
    // PASSIVE never blocks the writer or readers; it copies what no reader still needs.
    int log_pages = 0;
    int copied = 0;
    int rc = SQLITE_OK;
    {
      std::lock_guard running(run_mu_);
      rc = sqlite3_wal_checkpoint_v2(conn_.db(), nullptr, SQLITE_CHECKPOINT_PASSIVE, &log_pages, &copied);
    }
    if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
      // Not fatal: the WAL keeps every commit; the next checkpoint (or close) retries.
      spdlog::warn("sqlite store {}: checkpoint failed: {}", path_,
                   conn_.error(rc, "checkpoint").to_string());
    }
  }
  conn_ = Connection();
}

}  // namespace herald::detail::sqlite
