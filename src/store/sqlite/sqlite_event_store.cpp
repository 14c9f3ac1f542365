// The embedded backend: one SQLite database in WAL mode. This file: the store's life cycle and
// the event log's methods; the parts are described in sqlite_store_impl.h.
//
// transact() runs its callback on the writer thread too, inside the group's transaction. We chose
// that over a second write connection with BEGIN IMMEDIATE because two write connections contend
// for SQLite's single write lock (SQLITE_BUSY, retries, and a commit + fsync of its own per
// transaction), whereas on the writer a transaction shares the group's fsync and can never conflict
// with an append. The price: a slow callback delays the appends queued behind it, and the callback
// must not call back into the store (such a call fails with failed_precondition instead of
// deadlocking).
//
// Reads use a small pool of their own connections (options.reader_connections), each with cached
// prepared statements. The writer publishes the head (last readable position) only after COMMIT
// returned, so head_position() and wait_for never promise more than readers can see; and a single
// writer committing whole groups atomically means no reader ever sees position N+1 without N.
#include "store/sqlite/sqlite_store_impl.h"

#include <algorithm>
#include <filesystem>
#include <utility>

#include "store/sqlite/sqlite_reads.h"
#include "store/sqlite/sqlite_schema.h"
#include "store/sqlite/sqlite_sql.h"
#include "store/validation.h"

namespace herald::detail {
namespace sqlite {
namespace {

Status check_wal(Connection& c) {
  auto stmt = c.prepare("PRAGMA journal_mode=WAL");
  if (!stmt) return stmt.status();
  Stmt s(*stmt);
  int rc = s.step();
  if (rc != SQLITE_ROW) return c.error(rc, "enabling WAL");
  if (s.text(0) != "wal") {
    return Status::unavailable("the database refused WAL mode (journal_mode is " +
                               std::string(s.text(0)) + ")");
  }
  return {};
}

}  // namespace

SqliteEventStore::SqliteEventStore(std::string url, std::string path, const StoreOptions& options,
                                   const SqliteTuning& tuning)
    : url_(std::move(url)),
      path_(std::move(path)),
      options_(options),
      tuning_(tuning),
      clock_(options.clock ? options.clock : system_clock()),
      tail_(tuning.cache_max_bytes, tuning.cache_max_events, head_),
      wal_(path_, options.sqlite_wal_limit_bytes, readers_) {}

Status SqliteEventStore::open() {
  std::error_code ec;
  std::filesystem::path p(path_);
  if (p.has_parent_path()) {
    std::filesystem::create_directories(p.parent_path(), ec);
    if (ec) {
      return Status::unavailable("cannot create directory " + p.parent_path().string() + ": " +
                                 ec.message());
    }
  }
  auto w = Connection::open(path_, /*create=*/true, tuning_.vfs);
  if (!w) return w.status();
  Connection writer_conn = std::move(*w);
  // journal_mode=WAL lets readers run while the writer commits. synchronous=FULL fsyncs the WAL
  // on every commit, so an acknowledged append survives power loss; NORMAL only survives a
  // process crash.
  HERALD_RETURN_IF_ERROR(check_wal(writer_conn));
  HERALD_RETURN_IF_ERROR(writer_conn.exec(options_.durable ? "PRAGMA synchronous=FULL"
                                                            : "PRAGMA synchronous=NORMAL"));
  // After a checkpoint resets the WAL, truncate it back to this size (64 MiB) if it grew.
  HERALD_RETURN_IF_ERROR(writer_conn.exec("PRAGMA journal_size_limit=67108864"));
  {
    HERALD_PREPARE(s, writer_conn, "PRAGMA synchronous");
    int rc = s.step();
    if (rc != SQLITE_ROW) return writer_conn.error(rc, "reading PRAGMA synchronous");
    synchronous_ = static_cast<int>(s.int64(0));
  }
  HERALD_RETURN_IF_ERROR(migrate(writer_conn));

  int readers = std::max(1, options_.reader_connections);
  for (int i = 0; i < readers; ++i) {
    auto r = Connection::open(path_, /*create=*/false, tuning_.vfs);
    if (!r) return r.status();
    HERALD_RETURN_IF_ERROR(r->exec("PRAGMA query_only=1"));
    readers_.add(std::make_unique<Connection>(std::move(*r)));
  }

  {
    HERALD_PREPARE(s, writer_conn, kHead);
    int rc = s.step();
    if (rc != SQLITE_ROW) return writer_conn.error(rc, "reading the head");
    tail_.restart_at(s.is_null(0) ? -1 : s.int64(0));
  }
  // Checkpoints (copying the WAL back into the database) run on their own thread and connection,
  // so the writer's commits never pay for them.
  HERALD_RETURN_IF_ERROR(wal_.start(writer_conn, options_.durable, tuning_.vfs));
  writer_ = std::make_unique<GroupWriter>(path_, std::move(writer_conn), tail_, head_, wal_, clock_);
  writer_->start();
  return {};
}

SqliteCounters SqliteEventStore::counters() {
  SqliteCounters c;
  c.commits = writer_->commits();
  c.synchronous = synchronous_;
  c.queued_writes = writer_->queued();
  const WalCounters wal = wal_.counters();
  c.wal_bytes = wal.wal_bytes;
  c.wal_max_bytes = wal.wal_max_bytes;
  c.escalated_checkpoints = wal.escalated_checkpoints;
  c.escalated_busy = wal.escalated_busy;
  c.cached_events = tail_.size();
  return c;
}

void SqliteEventStore::close() {
  if (!writer_) {  // open() failed before the writer existed
    head_.close();
    wal_.stop();
    readers_.close();
    return;
  }
  // Called from transact's callback: the writer cannot join itself; it stops after this group
  // and a later close() (at the latest the destructor's) joins it.
  if (!writer_->stop()) return;
  std::lock_guard close_lk(close_mu_);
  head_.close();
  wal_.stop();
  readers_.close();
  // Closed last: the last connection to close checkpoints the WAL into the database and removes
  // it. The writer thread has exited, so this thread may take its connection.
  (void)writer_->release_connection();
}

Result<AppendResult> SqliteEventStore::append(std::string_view stream_id, ExpectedVersion expected,
                                              std::vector<EventData> events) {
  HERALD_RETURN_IF_ERROR(prepare_append(stream_id, expected, events, options_));
  WriteRequest req;
  req.append.stream_id = stream_id;
  req.append.expected = expected;
  req.append.events = &events;
  HERALD_RETURN_IF_ERROR(writer_->submit(req));
  if (!req.status.is_ok()) return req.status;
  return req.append.result;
}

Result<std::vector<RecordedEvent>> SqliteEventStore::read_stream(std::string_view stream_id, std::int64_t from_version,
                                                                 std::size_t max_count, ReadDirection direction) {
  HERALD_RETURN_IF_ERROR(validate_read_stream(stream_id, from_version));
  if (head_.closed()) return closed_status();
  auto conn = readers_.acquire();
  if (!conn) return conn.status();
  return read_stream_rows(**conn, stream_id, from_version, max_count, direction);
}

Result<AllSlice> SqliteEventStore::read_all(std::int64_t from_position, std::size_t max_count,
                                            const ReadFilter& filter) {
  HERALD_RETURN_IF_ERROR(validate_read_all(from_position));
  if (!filter.stream_id.empty()) HERALD_RETURN_IF_ERROR(validate_stream_id(filter.stream_id));
  if (head_.closed()) return closed_status();
  AllSlice slice;
  if (tail_.serve(from_position, max_count, filter, slice)) return slice;
  auto conn = readers_.acquire();
  if (!conn) return conn.status();
  return read_log_rows(**conn, from_position, max_count, filter, head_.head());
}

Result<std::int64_t> SqliteEventStore::stream_version(std::string_view stream_id) {
  HERALD_RETURN_IF_ERROR(validate_stream_id(stream_id));
  if (head_.closed()) return closed_status();
  auto conn = readers_.acquire();
  if (!conn) return conn.status();
  return read_stream_version(**conn, stream_id);
}

Result<StoreStats> SqliteEventStore::stats() {
  if (head_.closed()) return closed_status();
  StoreStats st;
  {
    auto conn = readers_.acquire();
    if (!conn) return conn.status();
    HERALD_RETURN_IF_ERROR(read_log_stats(**conn, st));
  }
  std::error_code ec;
  for (const std::string& f : {path_, path_ + "-wal", path_ + "-shm"}) {
    auto size = std::filesystem::file_size(f, ec);
    if (ec) continue;
    st.bytes_on_disk += static_cast<std::int64_t>(size);
    if (f.ends_with("-wal")) st.wal_bytes = static_cast<std::int64_t>(size);
  }
  return st;
}

}  // namespace sqlite

Result<std::unique_ptr<EventStore>> open_sqlite_store(std::string url, std::string path,
                                                      const StoreOptions& options) {
  return open_sqlite_store(std::move(url), std::move(path), options, SqliteTuning{});
}

Result<std::unique_ptr<EventStore>> open_sqlite_store(std::string url, std::string path,
                                                      const StoreOptions& options,
                                                      const SqliteTuning& tuning) {
  if (path.empty()) return Status::invalid_argument("sqlite URL has no path: " + url);
  auto store = std::make_unique<sqlite::SqliteEventStore>(std::move(url), std::move(path), options, tuning);
  HERALD_RETURN_IF_ERROR(store->open());
  return std::unique_ptr<EventStore>(std::move(store));
}

Result<SqliteCounters> sqlite_counters(EventStore& store) {
  auto* s = dynamic_cast<sqlite::SqliteEventStore*>(&store);
  if (s == nullptr) return Status::invalid_argument("not a SQLite store");
  return s->counters();
}

}  // namespace herald::detail
