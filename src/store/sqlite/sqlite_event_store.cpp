// The embedded backend: one SQLite database in WAL mode.
//
// Writes. ONE writer thread owns the only write connection. Every write (append, checkpoint, dead
// letter, lease, transact) is a request queued to it. The writer takes all pending requests, runs
// them in one transaction — each inside its own SAVEPOINT so that each succeeds or fails on its own
// — and COMMITs once: with synchronous=FULL that is one fsync for the whole group (group commit).
// Positions are assigned by the writer, which reads the head under the write lock at the start of
// each group (so even another process writing the same file cannot make positions collide); an
// append that fails rolls back to its savepoint and gives its positions back, so positions stay
// gap-free. Checkpoints (WAL -> database) run on a thread and connection of their own, woken by the
// WAL hook, so commits never pay for them.
//
// transact() runs its callback on the writer thread too, inside the group's transaction. We chose
// that over a second write connection with BEGIN IMMEDIATE because two write connections contend
// for SQLite's single write lock (SQLITE_BUSY, retries, and a commit + fsync of its own per
// transaction), whereas on the writer a transaction shares the group's fsync and can never conflict
// with an append. The price: a slow callback delays the appends queued behind it, and the callback
// must not call back into the store (such a call fails with failed_precondition instead of
// deadlocking).
//
// A failed COMMIT fails every request of its group and poisons the store: later writes return
// failed_precondition carrying the original error (as leveldb does after a failed sync), because
// after a failed fsync we cannot know what reached the disk. (After reopening, such an append may
// or may not be there; retrying it with the same ids and expected version is safe either way.)
//
// Reads. Readers use a small pool of their own connections (options.reader_connections), each with
// cached prepared statements. The writer publishes the head (last readable position) only after
// COMMIT returned, so head_position() and wait_for never promise more than readers can see; and a
// single writer committing whole groups atomically means no reader ever sees position N+1 without N.
//
// Recently committed events are also kept in a bounded in-memory cache, filled by the writer after a
// successful COMMIT (so it holds only committed events, gap-free, ending at the published head),
// from which read_all serves the hot tail of the log without decoding SQLite rows.
#include "store/sqlite/sqlite_event_store.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <future>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <utility>

#include <spdlog/spdlog.h>

#include "core/json_codec.h"
#include "store/sqlite/sqlite_connection.h"
#include "store/sqlite/sqlite_schema.h"
#include "store/validation.h"

namespace herald::detail {

namespace {

using sqlite::Connection;
using sqlite::Stmt;

// ---- SQL (each a distinct literal: the statement cache is keyed by address) ----

#define HERALD_EVENT_COLUMNS                                                                   \
  "position, stream_id, version, event_id, type, payload, correlation_id, causation_id, actor, " \
  "extra_metadata, recorded_at"

constexpr const char* kBegin = "BEGIN IMMEDIATE";
constexpr const char* kBeginRead = "BEGIN";
constexpr const char* kCommit = "COMMIT";
constexpr const char* kRollback = "ROLLBACK";
constexpr const char* kSavepoint = "SAVEPOINT request";
constexpr const char* kRelease = "RELEASE request";
constexpr const char* kRollbackTo = "ROLLBACK TO request";

constexpr const char* kStreamVersion = "SELECT version FROM streams WHERE stream_id = ?1";
constexpr const char* kUpsertStream =
    "INSERT INTO streams(stream_id, version) VALUES (?1, ?2) "
    "ON CONFLICT(stream_id) DO UPDATE SET version = excluded.version";
constexpr const char* kInsertEvent =
    "INSERT INTO events(" HERALD_EVENT_COLUMNS ", batch_last) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)";
constexpr const char* kCountType =
    "INSERT INTO event_type_counts(type, count) VALUES (?1, ?2) "
    "ON CONFLICT(type) DO UPDATE SET count = count + excluded.count";
constexpr int kInsertColumns = 12;  // parameters of one row of kInsertEvent
constexpr std::size_t kInsertChunk = 32;

// kInsertEvent with kInsertChunk rows of parameters; built once, stable address for the cache.
const char* insert_chunk_sql() {
  static const std::string sql = [] {
    std::string q = "INSERT INTO events(" HERALD_EVENT_COLUMNS ", batch_last) VALUES ";
    for (std::size_t k = 0; k < kInsertChunk; ++k) {
      q += k == 0 ? "(" : ",(";
      for (int col = 0; col < kInsertColumns; ++col) q += col == 0 ? "?" : ",?";
      q += ")";
    }
    return q;
  }();
  return sql.c_str();
}
constexpr const char* kEventById =
    "SELECT stream_id, version, position, batch_last FROM events WHERE event_id = ?1";
constexpr const char* kIdsFromVersion =
    "SELECT event_id, position FROM events WHERE stream_id = ?1 AND version >= ?2 ORDER BY version "
    "LIMIT ?3";
constexpr const char* kHead = "SELECT max(position) FROM events";

constexpr const char* kReadForwards = "SELECT " HERALD_EVENT_COLUMNS
                                      " FROM events WHERE stream_id = ?1 AND version >= ?2 "
                                      "ORDER BY version LIMIT ?3";
constexpr const char* kReadBackwards = "SELECT " HERALD_EVENT_COLUMNS
                                       " FROM events WHERE stream_id = ?1 AND version <= ?2 "
                                       "ORDER BY version DESC LIMIT ?3";
constexpr const char* kReadAll = "SELECT " HERALD_EVENT_COLUMNS
                                 " FROM events WHERE position >= ?1 AND position <= ?2 "
                                 "ORDER BY position LIMIT ?3";
// Within a stream, version order is position order; the (stream_id, version) index serves it,
// starting at the first version at or after the page's position (see first_version_from).
constexpr const char* kReadAllOfStream =
    "SELECT " HERALD_EVENT_COLUMNS
    " FROM events WHERE stream_id = ?1 AND version >= ?2 AND position >= ?3 AND position <= ?4 "
    "ORDER BY version LIMIT ?5";
constexpr const char* kPositionOfVersion =
    "SELECT position FROM events WHERE stream_id = ?1 AND version = ?2";

constexpr const char* kStreamCount = "SELECT count(*) FROM streams";
constexpr const char* kTypeCounts = "SELECT type, count FROM event_type_counts WHERE count > 0";
// Two subqueries: SQLite answers a lone min() or max() from the B-tree's edge, both in one
// SELECT by scanning the table.
constexpr const char* kFirstLast =
    "SELECT (SELECT min(position) FROM events), (SELECT max(position) FROM events)";
constexpr const char* kRecordedAt = "SELECT recorded_at FROM events WHERE position = ?1";

constexpr const char* kLoadCheckpoint = "SELECT position FROM checkpoints WHERE subscription = ?1";
constexpr const char* kSaveCheckpoint =
    "INSERT INTO checkpoints(subscription, position) VALUES (?1, ?2) "
    "ON CONFLICT(subscription) DO UPDATE SET position = excluded.position";

constexpr const char* kInboxRecord = "INSERT OR IGNORE INTO inbox(handler, event_id) VALUES (?1, ?2)";
constexpr const char* kGetDocument = "SELECT json FROM documents WHERE collection = ?1 AND key = ?2";
constexpr const char* kPutDocument =
    "INSERT INTO documents(collection, key, json) VALUES (?1, ?2, ?3) "
    "ON CONFLICT(collection, key) DO UPDATE SET json = excluded.json";
constexpr const char* kDeleteDocument = "DELETE FROM documents WHERE collection = ?1 AND key = ?2";
constexpr const char* kListDocuments =
    "SELECT key, json FROM documents WHERE collection = ?1 AND key > ?2 ORDER BY key LIMIT ?3";

#define HERALD_DEAD_LETTER_COLUMNS                                                               \
  "id, handler, position, event_id, event_type, stream_id, parked, attempts, last_error, "       \
  "first_failed_at, last_failed_at"
constexpr const char* kAddDeadLetter =
    "INSERT INTO dead_letters(handler, position, event_id, event_type, stream_id, parked, "
    "attempts, last_error, first_failed_at, last_failed_at) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";
constexpr const char* kGetDeadLetter =
    "SELECT " HERALD_DEAD_LETTER_COLUMNS " FROM dead_letters WHERE id = ?1";
constexpr const char* kListAllDeadLetters =
    "SELECT " HERALD_DEAD_LETTER_COLUMNS " FROM dead_letters ORDER BY handler, position, id";
constexpr const char* kListDeadLetters = "SELECT " HERALD_DEAD_LETTER_COLUMNS
                                         " FROM dead_letters WHERE handler = ?1 "
                                         "ORDER BY handler, position, id";
constexpr const char* kUpdateDeadLetter =
    "UPDATE dead_letters SET attempts = ?2, parked = ?3, last_error = ?4, last_failed_at = ?5 "
    "WHERE id = ?1";
constexpr const char* kRemoveDeadLetter = "DELETE FROM dead_letters WHERE id = ?1";

constexpr const char* kGetLease = "SELECT owner, expires_at FROM leases WHERE name = ?1";
constexpr const char* kPutLease =
    "INSERT INTO leases(name, owner, expires_at) VALUES (?1, ?2, ?3) "
    "ON CONFLICT(name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at";
constexpr const char* kReleaseLease = "DELETE FROM leases WHERE name = ?1 AND owner = ?2";

// The WAL size (in pages) after a commit that wakes the checkpointer (SQLite's default too).
constexpr int kCheckpointPages = 1000;

// How long an escalated (TRUNCATE) checkpoint waits for the writer and for readers still on an
// older snapshot before giving up until the next wake-up; the writer waits for it at most this
// long plus the copy of the frames written since the passive pass that precedes it.
constexpr int kEscalatedCheckpointWaitMs = 100;
// The busy timeout of every connection otherwise (sqlite_connection.cpp).
constexpr int kDefaultBusyTimeoutMs = 5000;

// How many events a filtered read_all examines at most before returning a (possibly empty) page
// that still makes progress.
constexpr std::size_t kFilteredScanLimit = 65'536;

std::int64_t clamp_limit(std::size_t n) {
  return n > static_cast<std::size_t>(INT64_MAX) ? INT64_MAX : static_cast<std::int64_t>(n);
}

std::size_t approx_bytes(const RecordedEvent& e) {
  std::size_t n = sizeof(RecordedEvent) + e.stream_id.capacity() + e.id.capacity() +
                  e.type.capacity() + e.payload.capacity() + e.metadata.correlation_id.capacity() +
                  e.metadata.causation_id.capacity() + e.metadata.actor.capacity();
  for (const auto& [k, v] : e.metadata.extra) n += 64 + k.size() + v.size();
  return n;
}

// Decodes a row selected with HERALD_EVENT_COLUMNS.
Status read_event_row(const Stmt& s, RecordedEvent& e) {
  e.position = s.int64(0);
  s.text_into(1, e.stream_id);
  e.version = s.int64(2);
  s.text_into(3, e.id);
  s.text_into(4, e.type);
  s.text_into(5, e.payload);
  s.text_into(6, e.metadata.correlation_id);
  s.text_into(7, e.metadata.causation_id);
  s.text_into(8, e.metadata.actor);
  if (s.is_null(9)) {
    e.metadata.extra.clear();
  } else if (!decode_extra(s.text(9), e.metadata)) {
    return Status::corruption("event at position " + std::to_string(e.position) +
                              " has malformed extra metadata");
  }
  e.recorded_at = timestamp_from_micros(s.int64(10));
  return {};
}

DeadLetter read_dead_letter_row(const Stmt& s) {
  DeadLetter d;
  d.id = s.int64(0);
  s.text_into(1, d.handler);
  d.position = s.int64(2);
  s.text_into(3, d.event_id);
  s.text_into(4, d.event_type);
  s.text_into(5, d.stream_id);
  d.parked = s.int64(6) != 0;
  d.attempts = static_cast<std::int32_t>(s.int64(7));
  s.text_into(8, d.last_error);
  d.first_failed_at = timestamp_from_micros(s.int64(9));
  d.last_failed_at = timestamp_from_micros(s.int64(10));
  return d;
}

Status closed_status() { return Status::failed_precondition("the store is closed"); }

// Runs a statement that returns no rows.
Status run(Connection& c, Stmt& s, const char* what) {
  int rc = s.step();
  if (rc != SQLITE_DONE && rc != SQLITE_ROW) return c.error(rc, what);
  return {};
}

#define HERALD_PREPARE(var, conn, sql)     \
  auto var##_prepared = (conn).prepare(sql); \
  if (!var##_prepared) return var##_prepared.status(); \
  Stmt var(*var##_prepared)

// ---- StoreTransaction over the writer connection, inside the group's transaction ----

class SqliteTransaction final : public StoreTransaction {
 public:
  explicit SqliteTransaction(Connection& c) : c_(c) {}

  Result<bool> inbox_record(std::string_view handler, std::string_view event_id) override {
    if (handler.empty() || event_id.empty()) {
      return Status::invalid_argument("inbox_record needs a handler and an event id");
    }
    HERALD_PREPARE(s, c_, kInboxRecord);
    s.bind(1, handler);
    s.bind(2, event_id);
    HERALD_RETURN_IF_ERROR(run(c_, s, "recording in the inbox"));
    return sqlite3_changes(c_.db()) == 1;
  }

  Result<std::string> get_document(std::string_view collection, std::string_view key) override {
    HERALD_RETURN_IF_ERROR(check_names(collection, key));
    HERALD_PREPARE(s, c_, kGetDocument);
    s.bind(1, collection);
    s.bind(2, key);
    int rc = s.step();
    if (rc == SQLITE_DONE) {
      return Status::not_found("no document '" + std::string(key) + "' in '" +
                               std::string(collection) + "'");
    }
    if (rc != SQLITE_ROW) return c_.error(rc, "reading a document");
    return std::string(s.text(0));
  }

  Status put_document(std::string_view collection, std::string_view key,
                      std::string_view json) override {
    HERALD_RETURN_IF_ERROR(check_names(collection, key));
    if (!is_valid_json(json)) {
      return Status::invalid_argument("document '" + std::string(key) + "' is not valid JSON");
    }
    HERALD_PREPARE(s, c_, kPutDocument);
    s.bind(1, collection);
    s.bind(2, key);
    s.bind(3, json);
    return run(c_, s, "writing a document");
  }

  Status delete_document(std::string_view collection, std::string_view key) override {
    HERALD_RETURN_IF_ERROR(check_names(collection, key));
    HERALD_PREPARE(s, c_, kDeleteDocument);
    s.bind(1, collection);
    s.bind(2, key);
    return run(c_, s, "deleting a document");
  }

  Result<std::vector<Document>> list_documents(std::string_view collection,
                                               std::string_view after_key,
                                               std::size_t limit) override {
    if (collection.empty()) return Status::invalid_argument("collection is empty");
    std::vector<Document> out;
    if (limit == 0) return out;
    HERALD_PREPARE(s, c_, kListDocuments);
    s.bind(1, collection);
    s.bind(2, after_key);
    s.bind(3, clamp_limit(limit));
    int rc;
    while ((rc = s.step()) == SQLITE_ROW) out.push_back({std::string(s.text(0)), std::string(s.text(1))});
    if (rc != SQLITE_DONE) return c_.error(rc, "listing documents");
    return out;
  }

  Status save_checkpoint(std::string_view subscription, std::int64_t position) override {
    if (subscription.empty()) return Status::invalid_argument("subscription name is empty");
    HERALD_PREPARE(s, c_, kSaveCheckpoint);
    s.bind(1, subscription);
    s.bind(2, position);
    return run(c_, s, "saving a checkpoint");
  }

 private:
  static Status check_names(std::string_view collection, std::string_view key) {
    if (collection.empty()) return Status::invalid_argument("collection is empty");
    if (key.empty()) return Status::invalid_argument("document key is empty");
    return {};
  }

  Connection& c_;
};

// ---- the reader pool ----

// Connections for reads. acquire() blocks while all are in use; close() waits for every borrowed
// connection to come back, then closes them.
class ReaderPool {
 public:
  // Returns its connection to the pool on destruction.
  class Handle {
   public:
    Handle(ReaderPool* pool, std::unique_ptr<Connection> c) : pool_(pool), c_(std::move(c)) {}
    Handle(Handle&& o) noexcept : pool_(std::exchange(o.pool_, nullptr)), c_(std::move(o.c_)) {}
    Handle& operator=(Handle&&) = delete;
    ~Handle() {
      if (pool_ != nullptr) pool_->give_back(std::move(c_));
    }
    Connection& operator*() const { return *c_; }
    Connection* operator->() const { return c_.get(); }

   private:
    ReaderPool* pool_;
    std::unique_ptr<Connection> c_;
  };

  void add(std::unique_ptr<Connection> c) {
    std::lock_guard lk(mu_);
    free_.push_back(std::move(c));
  }

  // failed_precondition once closed.
  Result<Handle> acquire() {
    std::unique_lock lk(mu_);
    cv_.wait(lk, [&] { return closed_ || (!free_.empty() && !paused_); });
    if (closed_) return closed_status();
    auto c = std::move(free_.back());
    free_.pop_back();
    ++borrowed_;
    return Handle(this, std::move(c));
  }

  // Lends no connection until resume(), and waits up to `wait` for the borrowed ones to come back:
  // true when none is out. For a checkpoint that must see every reader off the WAL; readers
  // arriving meanwhile wait, at most as long as that checkpoint.
  bool pause(std::chrono::milliseconds wait) {
    std::unique_lock lk(mu_);
    paused_ = true;
    return cv_.wait_for(lk, wait, [&] { return borrowed_ == 0; });
  }
  void resume() {
    {
      std::lock_guard lk(mu_);
      paused_ = false;
    }
    cv_.notify_all();
  }

  void close() {
    std::unique_lock lk(mu_);
    closed_ = true;
    cv_.notify_all();
    cv_.wait(lk, [&] { return borrowed_ == 0; });
    free_.clear();
  }

 private:
  void give_back(std::unique_ptr<Connection> c) {
    std::lock_guard lk(mu_);
    --borrowed_;
    free_.push_back(std::move(c));
    cv_.notify_all();
  }

  std::mutex mu_;  // guards free_, borrowed_, closed_, paused_
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Connection>> free_;
  int borrowed_ = 0;
  bool closed_ = false;
  bool paused_ = false;
};

// A read transaction on a reader connection, so that several statements see one snapshot.
// Ends (COMMIT, which for a read-only transaction only releases the snapshot) on destruction.
class ReadTxn {
 public:
  explicit ReadTxn(Connection& c) : c_(c) {}
  Status begin() {
    HERALD_PREPARE(s, c_, kBeginRead);
    HERALD_RETURN_IF_ERROR(run(c_, s, "beginning a read"));
    open_ = true;
    return {};
  }
  ~ReadTxn() {
    if (!open_) return;
    auto s = c_.prepare(kCommit);
    if (s) {
      Stmt st(*s);
      if (st.step() == SQLITE_DONE) return;
    }
    (void)c_.exec("ROLLBACK");
  }
  ReadTxn(const ReadTxn&) = delete;
  ReadTxn& operator=(const ReadTxn&) = delete;

 private:
  Connection& c_;
  bool open_ = false;
};

// ---- the store ----

class SqliteEventStore final : public EventStore {
 public:
  SqliteEventStore(std::string url, std::string path, const StoreOptions& options,
                   const SqliteTuning& tuning)
      : url_(std::move(url)),
        path_(std::move(path)),
        options_(options),
        tuning_(tuning),
        clock_(options.clock ? options.clock : system_clock()) {}

  ~SqliteEventStore() override { close(); }

  Status open() {
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
    writer_conn_ = std::move(*w);
    // journal_mode=WAL lets readers run while the writer commits. synchronous=FULL fsyncs the WAL
    // on every commit, so an acknowledged append survives power loss; NORMAL only survives a
    // process crash.
    HERALD_RETURN_IF_ERROR(check_wal(writer_conn_));
    HERALD_RETURN_IF_ERROR(writer_conn_.exec(options_.durable ? "PRAGMA synchronous=FULL"
                                                              : "PRAGMA synchronous=NORMAL"));
    // After a checkpoint resets the WAL, truncate it back to this size (64 MiB) if it grew.
    HERALD_RETURN_IF_ERROR(writer_conn_.exec("PRAGMA journal_size_limit=67108864"));
    {
      HERALD_PREPARE(s, writer_conn_, "PRAGMA synchronous");
      int rc = s.step();
      if (rc != SQLITE_ROW) return writer_conn_.error(rc, "reading PRAGMA synchronous");
      synchronous_ = static_cast<int>(s.int64(0));
    }
    {
      HERALD_PREPARE(s, writer_conn_, "PRAGMA page_size");
      int rc = s.step();
      if (rc != SQLITE_ROW) return writer_conn_.error(rc, "reading PRAGMA page_size");
      page_size_ = s.int64(0);
    }
    HERALD_RETURN_IF_ERROR(sqlite::migrate(writer_conn_));

    int readers = std::max(1, options_.reader_connections);
    for (int i = 0; i < readers; ++i) {
      auto r = Connection::open(path_, /*create=*/false, tuning_.vfs);
      if (!r) return r.status();
      HERALD_RETURN_IF_ERROR(r->exec("PRAGMA query_only=1"));
      readers_.add(std::make_unique<Connection>(std::move(*r)));
    }

    {
      HERALD_PREPARE(s, writer_conn_, kHead);
      int rc = s.step();
      if (rc != SQLITE_ROW) return writer_conn_.error(rc, "reading the head");
      std::int64_t head = s.is_null(0) ? -1 : s.int64(0);
      head_.store(head);
      cache_first_ = head + 1;
    }
    // Checkpoints (copying the WAL back into the database) run on their own thread and connection,
    // so the writer's commits never pay for them. Installing the WAL hook turns off SQLite's
    // automatic checkpoint on the writer connection.
    auto cp = Connection::open(path_, /*create=*/false, tuning_.vfs);
    if (!cp) return cp.status();
    checkpoint_conn_ = std::move(*cp);
    // A checkpoint must sync the database before the WAL may be reused: same level as the writer.
    HERALD_RETURN_IF_ERROR(checkpoint_conn_.exec(options_.durable ? "PRAGMA synchronous=FULL"
                                                                  : "PRAGMA synchronous=NORMAL"));
    sqlite3_wal_hook(writer_conn_.db(), &SqliteEventStore::on_wal_commit, this);
    checkpointer_ = std::thread([this] { checkpoint_loop(); });

    writer_ = std::thread([this] { writer_loop(); });
    writer_id_ = writer_.get_id();
    return {};
  }

  std::string url() const override { return url_; }

  SqliteCounters counters() {
    SqliteCounters c;
    c.commits = commits_.load();
    c.synchronous = synchronous_;
    {
      std::lock_guard lk(queue_mu_);
      c.queued_writes = static_cast<std::int64_t>(queue_.size());
    }
    c.wal_bytes = wal_bytes_.load();
    c.wal_max_bytes = wal_max_bytes_.load();
    c.escalated_checkpoints = escalated_checkpoints_.load();
    c.escalated_busy = escalated_busy_.load();
    std::shared_lock lk(cache_mu_);
    c.cached_events = static_cast<std::int64_t>(cache_.size());
    return c;
  }

  // ---- the event log ----

  Result<AppendResult> append(std::string_view stream_id, ExpectedVersion expected,
                              std::vector<EventData> events) override {
    HERALD_RETURN_IF_ERROR(prepare_append(stream_id, expected, events, options_));
    WriteRequest req;
    req.stream_id = stream_id;
    req.expected = expected;
    req.events = &events;
    HERALD_RETURN_IF_ERROR(submit(req));
    if (!req.status.is_ok()) return req.status;
    return req.result;
  }

  Result<std::vector<RecordedEvent>> read_stream(std::string_view stream_id,
                                                 std::int64_t from_version, std::size_t max_count,
                                                 ReadDirection direction) override {
    HERALD_RETURN_IF_ERROR(validate_read_stream(stream_id, from_version));
    if (closed_.load()) return closed_status();
    auto conn = readers_.acquire();
    if (!conn) return conn.status();
    Connection& c = **conn;
    std::vector<RecordedEvent> out;
    if (max_count > 0) {
      HERALD_PREPARE(s, c, direction == ReadDirection::forwards ? kReadForwards : kReadBackwards);
      s.bind(1, stream_id);
      s.bind(2, from_version);
      s.bind(3, clamp_limit(max_count));
      out.reserve(std::min<std::size_t>(max_count, 1024));
      int rc;
      while ((rc = s.step()) == SQLITE_ROW) {
        HERALD_RETURN_IF_ERROR(read_event_row(s, out.emplace_back()));
      }
      if (rc != SQLITE_DONE) return c.error(rc, "reading a stream");
      if (!out.empty()) return out;
    }
    // Nothing returned: tell an empty range of an existing stream from an absent stream.
    HERALD_PREPARE(v, c, kStreamVersion);
    v.bind(1, stream_id);
    int rc = v.step();
    if (rc == SQLITE_DONE) return Status::not_found("stream '" + std::string(stream_id) + "' does not exist");
    if (rc != SQLITE_ROW) return c.error(rc, "reading a stream's version");
    return out;
  }

  Result<AllSlice> read_all(std::int64_t from_position, std::size_t max_count,
                            const ReadFilter& filter) override {
    HERALD_RETURN_IF_ERROR(validate_read_all(from_position));
    if (!filter.stream_id.empty()) HERALD_RETURN_IF_ERROR(validate_stream_id(filter.stream_id));
    if (closed_.load()) return closed_status();
    AllSlice slice;
    if (serve_from_cache(from_position, max_count, filter, slice)) return slice;
    auto conn = readers_.acquire();
    if (!conn) return conn.status();
    Connection& c = **conn;

    // Reads are bounded by the published head, not by whatever the snapshot holds, so that a
    // page's end_of_log / next_position agree with head_position(): every position up to the
    // published head is committed, hence in this snapshot.
    const std::int64_t head = head_.load();
    if (!filter.stream_id.empty()) return read_all_of_stream(c, from_position, max_count, filter, head);

    // Unfiltered, a page examines max_count events; filtered, up to kFilteredScanLimit (so a
    // sparse filter returns a short page that still makes progress).
    const bool filtered = !filter.empty();
    const std::size_t scan = filtered ? std::max(max_count, kFilteredScanLimit) : max_count;
    HERALD_PREPARE(s, c, kReadAll);
    s.bind(1, from_position);
    s.bind(2, head);
    s.bind(3, clamp_limit(scan));
    slice.next_position = from_position;
    if (!filtered) slice.events.reserve(std::min<std::size_t>(max_count, 65536));
    std::size_t examined = 0;
    RecordedEvent scratch;
    int rc = SQLITE_DONE;
    while (slice.events.size() < max_count && (rc = s.step()) == SQLITE_ROW) {
      ++examined;
      if (!filtered) {
        HERALD_RETURN_IF_ERROR(read_event_row(s, slice.events.emplace_back()));
        slice.next_position = slice.events.back().position + 1;
      } else {
        HERALD_RETURN_IF_ERROR(read_event_row(s, scratch));
        slice.next_position = scratch.position + 1;
        if (filter.matches(scratch)) slice.events.push_back(std::move(scratch));
      }
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return c.error(rc, "reading the log");
    // Every event up to the head was examined: the next page starts after it.
    if (slice.events.size() < max_count && examined < scan) {
      slice.next_position = std::max(slice.next_position, head + 1);
    }
    slice.end_of_log = slice.next_position > head;
    return slice;
  }

  Result<std::int64_t> stream_version(std::string_view stream_id) override {
    HERALD_RETURN_IF_ERROR(validate_stream_id(stream_id));
    if (closed_.load()) return closed_status();
    auto conn = readers_.acquire();
    if (!conn) return conn.status();
    Connection& c = **conn;
    HERALD_PREPARE(s, c, kStreamVersion);
    s.bind(1, stream_id);
    int rc = s.step();
    if (rc == SQLITE_DONE) return kNoStreamVersion;
    if (rc != SQLITE_ROW) return c.error(rc, "reading a stream's version");
    return s.int64(0);
  }

  std::int64_t head_position() const override { return head_.load(); }

  Result<StoreStats> stats() override {
    if (closed_.load()) return closed_status();
    auto conn = readers_.acquire();
    if (!conn) return conn.status();
    Connection& c = **conn;
    StoreStats st;
    {
      ReadTxn txn(c);
      HERALD_RETURN_IF_ERROR(txn.begin());
      {
        HERALD_PREPARE(s, c, kStreamCount);
        int rc = s.step();
        if (rc != SQLITE_ROW) return c.error(rc, "counting streams");
        st.stream_count = s.int64(0);
      }
      {
        HERALD_PREPARE(s, c, kTypeCounts);
        int rc;
        while ((rc = s.step()) == SQLITE_ROW) st.events_by_type.emplace(std::string(s.text(0)), s.int64(1));
        if (rc != SQLITE_DONE) return c.error(rc, "counting event types");
      }
      {
        HERALD_PREPARE(s, c, kFirstLast);
        int rc = s.step();
        if (rc != SQLITE_ROW) return c.error(rc, "reading the log's bounds");
        if (!s.is_null(0)) {
          st.first_position = s.int64(0);
          st.last_position = s.int64(1);
          st.total_events = st.last_position - st.first_position + 1;
        }
      }
      if (st.first_position >= 0) {
        for (auto [pos, out] : {std::pair{st.first_position, &st.first_recorded_at},
                                std::pair{st.last_position, &st.last_recorded_at}}) {
          HERALD_PREPARE(s, c, kRecordedAt);
          s.bind(1, pos);
          int rc = s.step();
          if (rc != SQLITE_ROW) return c.error(rc, "reading a recorded time");
          *out = timestamp_from_micros(s.int64(0));
        }
      }
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

  Status wait_for(std::int64_t after_position, std::chrono::milliseconds timeout) override {
    // A year stands in for "forever": steady_clock::now() + milliseconds::max() would overflow.
    timeout = std::min(timeout, std::chrono::milliseconds(std::chrono::hours(24 * 366)));
    std::unique_lock lk(head_mu_);
    bool woke = head_cv_.wait_for(lk, timeout, [&] {
      return closed_.load() || head_.load() > after_position;
    });
    if (closed_.load()) return Status::cancelled("the store was closed");
    if (!woke) {
      return Status::timeout("no event after position " + std::to_string(after_position) +
                             " within " + std::to_string(timeout.count()) + " ms");
    }
    return {};
  }

  // ---- process state ----

  Status transact(const std::function<Status(StoreTransaction&)>& work) override {
    return submit_op([&work](Connection& c) -> Status {
      SqliteTransaction txn(c);
      try {
        return work(txn);
      } catch (const std::exception& e) {
        return Status::internal(std::string("transaction work threw: ") + e.what());
      } catch (...) {
        return Status::internal("transaction work threw a non-standard exception");
      }
    });
  }

  // From a reader connection, so that a query never queues behind the writer's commits.
  Result<std::string> read_document(std::string_view collection, std::string_view key) override {
    auto conn = readers_.acquire();
    if (!conn) return conn.status();
    return SqliteTransaction(**conn).get_document(collection, key);
  }
  Result<std::vector<Document>> read_documents(std::string_view collection, std::string_view after_key,
                                               std::size_t limit) override {
    auto conn = readers_.acquire();
    if (!conn) return conn.status();
    return SqliteTransaction(**conn).list_documents(collection, after_key, limit);
  }

  Result<std::int64_t> load_checkpoint(std::string_view subscription) override {
    if (subscription.empty()) return Status::invalid_argument("subscription name is empty");
    if (closed_.load()) return closed_status();
    auto conn = readers_.acquire();
    if (!conn) return conn.status();
    Connection& c = **conn;
    HERALD_PREPARE(s, c, kLoadCheckpoint);
    s.bind(1, subscription);
    int rc = s.step();
    if (rc == SQLITE_DONE) {
      return Status::not_found("no checkpoint for '" + std::string(subscription) + "'");
    }
    if (rc != SQLITE_ROW) return c.error(rc, "loading a checkpoint");
    return s.int64(0);
  }

  Status save_checkpoint(std::string_view subscription, std::int64_t position) override {
    if (subscription.empty()) return Status::invalid_argument("subscription name is empty");
    return submit_op([&](Connection& c) { return SqliteTransaction(c).save_checkpoint(subscription, position); });
  }

  Result<std::int64_t> add_dead_letter(const DeadLetter& d) override {
    if (d.handler.empty() || d.event_id.empty()) {
      return Status::invalid_argument("a dead letter needs a handler and an event id");
    }
    std::int64_t id = 0;
    HERALD_RETURN_IF_ERROR(submit_op([&](Connection& c) -> Status {
      HERALD_PREPARE(s, c, kAddDeadLetter);
      s.bind(1, d.handler);
      s.bind(2, d.position);
      s.bind(3, d.event_id);
      s.bind(4, d.event_type);
      s.bind(5, d.stream_id);
      s.bind(6, std::int64_t{d.parked ? 1 : 0});
      s.bind(7, std::int64_t{d.attempts});
      s.bind(8, d.last_error);
      s.bind(9, to_micros(d.first_failed_at));
      s.bind(10, to_micros(d.last_failed_at));
      int rc = s.step();
      if ((rc & 0xff) == SQLITE_CONSTRAINT) {
        return Status::already_exists("event " + d.event_id + " is already dead-lettered for " +
                                      d.handler);
      }
      if (rc != SQLITE_DONE) return c.error(rc, "adding a dead letter");
      id = sqlite3_last_insert_rowid(c.db());
      return {};
    }));
    return id;
  }

  Result<DeadLetter> get_dead_letter(std::int64_t id) override {
    if (closed_.load()) return closed_status();
    auto conn = readers_.acquire();
    if (!conn) return conn.status();
    Connection& c = **conn;
    HERALD_PREPARE(s, c, kGetDeadLetter);
    s.bind(1, id);
    int rc = s.step();
    if (rc == SQLITE_DONE) return Status::not_found("no dead letter " + std::to_string(id));
    if (rc != SQLITE_ROW) return c.error(rc, "reading a dead letter");
    return read_dead_letter_row(s);
  }

  Result<std::vector<DeadLetter>> list_dead_letters(std::string_view handler) override {
    if (closed_.load()) return closed_status();
    auto conn = readers_.acquire();
    if (!conn) return conn.status();
    Connection& c = **conn;
    HERALD_PREPARE(s, c, handler.empty() ? kListAllDeadLetters : kListDeadLetters);
    if (!handler.empty()) s.bind(1, handler);
    std::vector<DeadLetter> out;
    int rc;
    while ((rc = s.step()) == SQLITE_ROW) out.push_back(read_dead_letter_row(s));
    if (rc != SQLITE_DONE) return c.error(rc, "listing dead letters");
    return out;
  }

  Status update_dead_letter(const DeadLetter& d) override {
    return submit_op([&](Connection& c) -> Status {
      HERALD_PREPARE(s, c, kUpdateDeadLetter);
      s.bind(1, d.id);
      s.bind(2, std::int64_t{d.attempts});
      s.bind(3, std::int64_t{d.parked ? 1 : 0});
      s.bind(4, d.last_error);
      s.bind(5, to_micros(d.last_failed_at));
      HERALD_RETURN_IF_ERROR(run(c, s, "updating a dead letter"));
      if (sqlite3_changes(c.db()) == 0) return Status::not_found("no dead letter " + std::to_string(d.id));
      return {};
    });
  }

  Status remove_dead_letter(std::int64_t id) override {
    return submit_op([&](Connection& c) -> Status {
      HERALD_PREPARE(s, c, kRemoveDeadLetter);
      s.bind(1, id);
      HERALD_RETURN_IF_ERROR(run(c, s, "removing a dead letter"));
      if (sqlite3_changes(c.db()) == 0) return Status::not_found("no dead letter " + std::to_string(id));
      return {};
    });
  }

  Result<bool> try_acquire_lease(std::string_view name, std::string_view owner,
                                 std::chrono::milliseconds ttl) override {
    if (name.empty() || owner.empty()) {
      return Status::invalid_argument("a lease needs a name and an owner");
    }
    if (ttl.count() <= 0) return Status::invalid_argument("a lease's ttl must be positive");
    bool acquired = false;
    HERALD_RETURN_IF_ERROR(submit_op([&](Connection& c) -> Status {
      const std::int64_t now = to_micros(clock_->now());
      {
        HERALD_PREPARE(s, c, kGetLease);
        s.bind(1, name);
        int rc = s.step();
        if (rc == SQLITE_ROW && s.text(0) != owner && s.int64(1) > now) return {};  // held
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) return c.error(rc, "reading a lease");
      }
      HERALD_PREPARE(s, c, kPutLease);
      s.bind(1, name);
      s.bind(2, owner);
      s.bind(3, now + std::chrono::duration_cast<std::chrono::microseconds>(ttl).count());
      HERALD_RETURN_IF_ERROR(run(c, s, "writing a lease"));
      acquired = true;
      return {};
    }));
    return acquired;
  }

  Status release_lease(std::string_view name, std::string_view owner) override {
    return submit_op([&](Connection& c) -> Status {
      HERALD_PREPARE(s, c, kReleaseLease);
      s.bind(1, name);
      s.bind(2, owner);
      return run(c, s, "releasing a lease");
    });
  }

  void close() override {
    {
      std::lock_guard lk(queue_mu_);
      stopping_ = true;
      queue_cv_.notify_one();
    }
    // Called from transact's callback: the writer cannot join itself; it stops after this group
    // and a later close() (at the latest the destructor's) joins it.
    if (std::this_thread::get_id() == writer_id_) return;
    std::lock_guard close_lk(close_mu_);
    if (writer_.joinable()) writer_.join();
    {
      std::lock_guard lk(head_mu_);
      closed_.store(true);
    }
    head_cv_.notify_all();
    {
      std::lock_guard lk(checkpoint_mu_);
      checkpoint_stop_ = true;
    }
    checkpoint_cv_.notify_one();
    if (checkpointer_.joinable()) checkpointer_.join();
    readers_.close();
    // Closed last: the last connection to close checkpoints the WAL into the database and removes
    // it. The writer thread has exited, so this thread may touch writer_conn_.
    writer_conn_ = Connection();
  }

 private:
  // One queued write. Lives on the caller's stack until `done` is fulfilled; after that the writer
  // never touches it again.
  struct WriteRequest {
    // An append, when `op` is empty.
    std::string_view stream_id;
    ExpectedVersion expected = ExpectedVersion::any();
    std::vector<EventData>* events = nullptr;
    // Any other write, run on the writer connection inside the request's savepoint.
    std::function<Status(Connection&)> op;
    // Outcome, set by the writer before `done`.
    Status status;
    AppendResult result;
    std::promise<void> done;
  };

  static Status check_wal(Connection& c) {
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

  Status submit_op(std::function<Status(Connection&)> op) {
    WriteRequest req;
    req.op = std::move(op);
    HERALD_RETURN_IF_ERROR(submit(req));
    return req.status;
  }

  // Queues `req` for the writer and waits for it. The returned Status says whether it could be
  // queued at all; the request's own outcome is in req.status.
  Status submit(WriteRequest& req) {
    if (std::this_thread::get_id() == writer_id_) {
      return Status::failed_precondition(
          "a transact callback called back into the store; use its StoreTransaction instead");
    }
    auto done = req.done.get_future();
    {
      std::lock_guard lk(queue_mu_);
      if (stopping_) return closed_status();
      if (!poisoned_.is_ok()) {
        return Status::failed_precondition("the store is poisoned by an earlier failed commit: " +
                                           poisoned_.to_string());
      }
      queue_.push_back(&req);
      if (queue_.size() == 1) queue_cv_.notify_one();
    }
    done.wait();
    return {};
  }

  static void complete(WriteRequest* r, Status s) {
    r->status = std::move(s);
    r->done.set_value();
  }

  void writer_loop() {
    std::vector<WriteRequest*> group;
    for (;;) {
      {
        std::unique_lock lk(queue_mu_);
        queue_cv_.wait(lk, [&] { return !queue_.empty() || stopping_; });
        if (queue_.empty()) break;  // stopping, and everything queued before close() is done
        group.swap(queue_);
      }
      run_group(group);
      group.clear();
      if (truncate_wanted_) {
        truncate_wanted_ = false;
        truncate_wal();
      }
    }
  }

  // The escalated checkpoint, run by the writer itself between two groups (the one before is
  // already acknowledged), so nothing competes with it for the WAL's write lock: SQLite's locks are
  // not fair, and a checkpointer thread lost that race to a writer committing back to back nearly
  // every time (measured: the WAL reached 150 MiB in 20 s against an 8 MiB limit); a thread woken
  // for it also lagged minutes' worth of megabytes behind on two busy cores. The only wait left is
  // for readers still on an older snapshot (and a passive pass already under way), bounded by
  // kEscalatedCheckpointWaitMs in all; then TRUNCATE copies the frames and empties the WAL file,
  // so the next commit starts it afresh. Passive checkpoints stop while the WAL is over its limit.
  void truncate_wal() {
    // Our own readers hold back for the checkpoint's few milliseconds: four tails reading back to
    // back always held some read mark, and SQLite's busy handler, retrying at intervals, lost to
    // them 95% of the time (measured). Readers of other processes are bounded by the busy timeout.
    const auto started = std::chrono::steady_clock::now();
    const auto deadline = started + std::chrono::milliseconds(kEscalatedCheckpointWaitMs);
    // SQLite answers BUSY at once, without its busy handler, while another checkpoint runs: wait
    // for the checkpointer's passive pass to end instead (measured: 95% of the attempts failed so
    // while a pass started just below the limit was still copying).
    std::unique_lock passive(checkpoint_run_mu_, std::defer_lock);
    int rc = SQLITE_BUSY;
    int log_pages = 0;
    int copied = 0;
    if (passive.try_lock_until(deadline)) {
      readers_.pause(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()));
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      sqlite3_busy_timeout(writer_conn_.db(), static_cast<int>(std::max<std::int64_t>(1, left.count())));
      rc = sqlite3_wal_checkpoint_v2(writer_conn_.db(), nullptr, SQLITE_CHECKPOINT_TRUNCATE, &log_pages, &copied);
      sqlite3_busy_timeout(writer_conn_.db(), kDefaultBusyTimeoutMs);
      readers_.resume();
    }
    escalated_checkpoints_.fetch_add(1, std::memory_order_relaxed);
    if (rc == SQLITE_BUSY) {
      escalated_busy_.fetch_add(1, std::memory_order_relaxed);  // readers outlasted the wait: next time
    } else if (rc != SQLITE_OK) {
      spdlog::warn("sqlite store {}: truncating checkpoint failed: {}", path_,
                   writer_conn_.error(rc, "checkpoint").to_string());
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
  static int on_wal_commit(void* self, sqlite3* /*db*/, const char* /*name*/, int pages) {
    auto* store = static_cast<SqliteEventStore*>(self);
    const std::int64_t wal_bytes = 32 + static_cast<std::int64_t>(pages) * (store->page_size_ + 24);
    store->wal_bytes_.store(wal_bytes, std::memory_order_relaxed);
    if (wal_bytes > store->wal_max_bytes_.load(std::memory_order_relaxed)) {
      store->wal_max_bytes_.store(wal_bytes, std::memory_order_relaxed);
    }
    if (wal_bytes > static_cast<std::int64_t>(store->options_.sqlite_wal_limit_bytes)) {
      store->truncate_wanted_ = true;
      return SQLITE_OK;
    }
    if (pages < store->checkpoint_requested_at_pages_) store->checkpoint_requested_at_pages_ = 0;  // reset
    if (pages - store->checkpoint_requested_at_pages_ >= kCheckpointPages) {
      store->checkpoint_requested_at_pages_ = pages;
      {
        std::lock_guard lk(store->checkpoint_mu_);
        store->checkpoint_wanted_ = true;
      }
      store->checkpoint_cv_.notify_one();
    }
    return SQLITE_OK;
  }

  void checkpoint_loop() {
    for (;;) {
      {
        std::unique_lock lk(checkpoint_mu_);
        checkpoint_cv_.wait(lk, [&] { return checkpoint_wanted_ || checkpoint_stop_; });
        if (checkpoint_stop_) break;
        checkpoint_wanted_ = false;
      }
      // PASSIVE never blocks the writer or readers; it copies what no reader still needs.
      int log_pages = 0;
      int copied = 0;
      int rc = SQLITE_OK;
      {
        std::lock_guard running(checkpoint_run_mu_);
        rc = sqlite3_wal_checkpoint_v2(checkpoint_conn_.db(), nullptr, SQLITE_CHECKPOINT_PASSIVE, &log_pages, &copied);
      }
      if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
        // Not fatal: the WAL keeps every commit; the next checkpoint (or close) retries.
        spdlog::warn("sqlite store {}: checkpoint failed: {}", path_,
                     checkpoint_conn_.error(rc, "checkpoint").to_string());
      }
    }
    checkpoint_conn_ = Connection();
  }

  Status step_cached(const char* sql) {
    HERALD_PREPARE(s, writer_conn_, sql);
    return run(writer_conn_, s, sql);
  }

  // Runs one group of requests in one transaction and completes every one of them.
  void run_group(const std::vector<WriteRequest*>& group) {
    Status poisoned;
    {
      std::lock_guard lk(queue_mu_);
      poisoned = poisoned_;
    }
    if (!poisoned.is_ok()) {
      for (WriteRequest* r : group) {
        complete(r, Status::failed_precondition("the store is poisoned by an earlier failed commit: " +
                                                poisoned.to_string()));
      }
      return;
    }

    std::int64_t committed_head = head_.load();
    std::int64_t next_position = committed_head + 1;
    std::vector<WriteRequest*> applied;     // released savepoints, waiting for COMMIT
    std::vector<RecordedEvent> written;     // their new events, in position order
    applied.reserve(group.size());
    bool in_txn = false;

    for (std::size_t i = 0; i < group.size(); ++i) {
      WriteRequest* r = group[i];
      if (!in_txn) {
        Status s = step_cached(kBegin);
        if (!s.is_ok()) {
          // Nothing of this group is pending (applied is empty here): fail the rest at once
          // rather than waiting busy_timeout once per request.
          for (std::size_t j = i; j < group.size(); ++j) complete(group[j], s);
          return;
        }
        in_txn = true;
        // The write lock is held now: take the head from the database, not from memory, so
        // that positions stay right even if another process wrote to this file.
        auto db_head = read_db_head();
        if (!db_head) {
          (void)step_cached(kRollback);
          for (std::size_t j = i; j < group.size(); ++j) complete(group[j], db_head.status());
          return;
        }
        if (*db_head != committed_head) {
          adopt_foreign_head(*db_head);
          committed_head = *db_head;
          next_position = committed_head + 1;
        }
      }
      Status s = step_cached(kSavepoint);
      if (s.is_ok()) {
        const std::size_t written_before = written.size();
        s = run_request(*r, next_position, written);
        if (sqlite3_get_autocommit(writer_conn_.db()) != 0) {
          // SQLite rolled the whole transaction back (I/O error, disk full, out of memory): the
          // requests applied before this one are lost too. Nothing was committed, so the store is
          // still consistent: fail them, and start a new transaction for the rest of the group.
          Status lost = Status::unavailable("the group's transaction was rolled back: " +
                                            (s.is_ok() ? std::string("unknown error") : s.to_string()));
          for (WriteRequest* a : applied) complete(a, lost);
          applied.clear();
          written.clear();
          next_position = committed_head + 1;
          in_txn = false;
          complete(r, s.is_ok() ? lost : std::move(s));
          continue;
        }
        if (s.is_ok()) {
          s = step_cached(kRelease);
        } else {
          written.resize(written_before);
          Status undo = step_cached(kRollbackTo);
          if (undo.is_ok()) undo = step_cached(kRelease);
          if (!undo.is_ok()) {
            // Cannot undo this request's partial work: give up the whole group's transaction.
            (void)step_cached(kRollback);
            Status lost = Status::unavailable("cannot roll back a failed request: " + undo.to_string());
            for (WriteRequest* a : applied) complete(a, lost);
            applied.clear();
            written.clear();
            next_position = committed_head + 1;
            in_txn = false;
          }
          complete(r, std::move(s));
          continue;
        }
        if (s.is_ok()) {
          applied.push_back(r);
          continue;
        }
      }
      // SAVEPOINT or RELEASE failed: the transaction's state is unknown; drop the whole group.
      (void)step_cached(kRollback);
      for (WriteRequest* a : applied) complete(a, s);
      applied.clear();
      written.clear();
      next_position = committed_head + 1;
      in_txn = false;
      complete(r, std::move(s));
    }
    if (!in_txn) return;

    Status commit = step_cached(kCommit);
    if (!commit.is_ok()) {
      // After a failed COMMIT (e.g. a failed fsync) we cannot know what is on the disk: refuse all
      // later writes rather than risk reusing positions or acknowledging lost data.
      (void)writer_conn_.exec(kRollback);
      {
        std::lock_guard lk(queue_mu_);
        poisoned_ = commit;
      }
      for (WriteRequest* a : applied) complete(a, commit);
      return;
    }
    commits_.fetch_add(1);
    if (!written.empty()) publish(std::move(written), next_position - 1);
    for (WriteRequest* a : applied) complete(a, {});
  }

  Result<std::int64_t> read_db_head() {
    HERALD_PREPARE(s, writer_conn_, kHead);
    int rc = s.step();
    if (rc != SQLITE_ROW) return writer_conn_.error(rc, "reading the head");
    return s.is_null(0) ? std::int64_t{-1} : s.int64(0);
  }

  // Another process appended to this file (supported, though its appends wake no wait_for here
  // until this store writes): the cache no longer ends at the head, so start it afresh, and
  // publish the database's head.
  void adopt_foreign_head(std::int64_t head) {
    spdlog::warn("sqlite store {}: the log was appended to by another process (head {} -> {})",
                 path_, head_.load(), head);
    {
      std::unique_lock lk(cache_mu_);
      cache_.clear();
      cache_bytes_ = 0;
      cache_first_ = head + 1;
      std::lock_guard head_lk(head_mu_);
      head_.store(head);
    }
    head_cv_.notify_all();
  }

  // Runs one request inside its savepoint. Nothing thrown escapes the writer thread: an exception
  // (out of memory) fails the request, whose savepoint is then rolled back.
  Status run_request(WriteRequest& r, std::int64_t& next_position,
                     std::vector<RecordedEvent>& written) {
    try {
      return r.op ? r.op(writer_conn_) : apply_append(r, next_position, written);
    } catch (const std::exception& e) {
      return Status::internal(std::string("write request threw: ") + e.what());
    } catch (...) {
      return Status::internal("write request threw a non-standard exception");
    }
  }

  // Appends the request's events inside the current savepoint. On success advances
  // next_position and moves the new events (as recorded) to the end of `written`.
  Status apply_append(WriteRequest& r, std::int64_t& next_position,
                      std::vector<RecordedEvent>& written) {
    Connection& c = writer_conn_;
    std::vector<EventData>& events = *r.events;
    std::int64_t current = kNoStreamVersion;
    {
      HERALD_PREPARE(s, c, kStreamVersion);
      s.bind(1, r.stream_id);
      int rc = s.step();
      if (rc == SQLITE_ROW) {
        current = s.int64(0);
      } else if (rc != SQLITE_DONE) {
        return c.error(rc, "reading a stream's version");
      }
    }
    if (!r.expected.matches(current)) {
      auto again = find_earlier_append(r);
      if (!again) return again.status();
      if (*again) {
        r.result = **again;
        return {};
      }
      return Status::wrong_expected_version(
          current, "stream '" + std::string(r.stream_id) + "' is at version " +
                       std::to_string(current) + ", expected " + r.expected.to_string());
    }

    const std::int64_t recorded_at = to_micros(clock_->now());
    std::vector<std::string> extras(events.size());
    for (std::size_t i = 0; i < events.size(); ++i) {
      if (!events[i].metadata.extra.empty()) extras[i] = encode_extra(events[i].metadata);
    }
    // Large appends insert kInsertChunk rows per statement: a quarter less CPU per event than one
    // statement per row (fewer steps, resets and VDBE entries); the tail goes row by row.
    for (std::size_t i = 0; i < events.size();) {
      const std::size_t rows = events.size() - i >= kInsertChunk ? kInsertChunk : 1;
      HERALD_PREPARE(s, c, rows == 1 ? kInsertEvent : insert_chunk_sql());
      for (std::size_t k = 0; k < rows; ++k, ++i) {
        const EventData& e = events[i];
        const int o = static_cast<int>(k) * kInsertColumns;
        s.bind(o + 1, next_position + static_cast<std::int64_t>(i));
        s.bind(o + 2, r.stream_id);
        s.bind(o + 3, current + 1 + static_cast<std::int64_t>(i));
        s.bind(o + 4, e.id);
        s.bind(o + 5, e.type);
        s.bind(o + 6, e.payload);
        s.bind_or_null(o + 7, e.metadata.correlation_id);
        s.bind_or_null(o + 8, e.metadata.causation_id);
        s.bind_or_null(o + 9, e.metadata.actor);
        s.bind_or_null(o + 10, extras[i]);
        s.bind(o + 11, recorded_at);
        if (i == 0) {
          s.bind(o + 12, next_position + static_cast<std::int64_t>(events.size()) - 1);
        } else {
          s.bind_null(o + 12);
        }
      }
      int rc = s.step();
      if (rc == SQLITE_DONE) continue;
      if (rc == SQLITE_CONSTRAINT_UNIQUE &&
          std::string_view(sqlite3_errmsg(c.db())).find("events.event_id") != std::string_view::npos) {
        return already_stored(r);
      }
      if ((rc & 0xff) == SQLITE_CONSTRAINT) {
        return Status::corruption("inserting events at positions from " +
                                  std::to_string(next_position) +
                                  " broke a constraint: " + sqlite3_errmsg(c.db()));
      }
      return c.error(rc, "inserting events");
    }
    const auto n = static_cast<std::int64_t>(events.size());
    {
      HERALD_PREPARE(s, c, kUpsertStream);
      s.bind(1, r.stream_id);
      s.bind(2, current + n);
      HERALD_RETURN_IF_ERROR(run(c, s, "updating a stream's version"));
    }
    {
      // Usually one type per append; count each distinct type once.
      std::vector<std::pair<std::string_view, std::int64_t>> types;
      for (const EventData& e : events) {
        auto it = std::find_if(types.begin(), types.end(), [&](auto& t) { return t.first == e.type; });
        if (it == types.end()) {
          types.emplace_back(e.type, 1);
        } else {
          ++it->second;
        }
      }
      HERALD_PREPARE(s, c, kCountType);
      for (const auto& [type, count] : types) {
        s.bind(1, type);
        s.bind(2, count);
        int rc = s.step();
        sqlite3_reset(s.get());
        if (rc != SQLITE_DONE) return c.error(rc, "counting an event type");
      }
    }

    r.result = AppendResult{next_position, next_position + n - 1, current + n};
    written.reserve(written.size() + events.size());
    for (std::size_t i = 0; i < events.size(); ++i) {
      EventData& e = events[i];
      RecordedEvent& rec = written.emplace_back();
      rec.stream_id = r.stream_id;
      rec.version = current + 1 + static_cast<std::int64_t>(i);
      rec.position = next_position + static_cast<std::int64_t>(i);
      rec.recorded_at = timestamp_from_micros(recorded_at);
      rec.id = std::move(e.id);
      rec.type = std::move(e.type);
      rec.payload = std::move(e.payload);
      rec.metadata = std::move(e.metadata);
    }
    next_position += n;
    return {};
  }

  // An event id of the request is already stored: either this is a retry of an earlier append
  // (return its result) or the id is taken (already_exists). A retry is recognised when (1) its
  // first id starts a stored append batch (batch_last is set) of the same stream, (2) that batch
  // holds exactly these ids in this order, and (3) `expected` would have matched the stream just
  // before that batch (version first_version - 1) — the same rule as the memory backend.
  Status already_stored(WriteRequest& r) {
    // Undo this request's inserts so far: the retry check must see the store as it was.
    HERALD_RETURN_IF_ERROR(step_cached(kRollbackTo));
    auto again = find_earlier_append(r);
    if (!again) return again.status();
    if (*again) {
      r.result = **again;
      return {};
    }
    // Name the first taken id (the failing statement may have held several).
    HERALD_PREPARE(s, writer_conn_, kEventById);
    for (const EventData& e : *r.events) {
      s.bind(1, e.id);
      int rc = s.step();
      if (rc == SQLITE_ROW) {
        return Status::already_exists("event id " + e.id + " is already stored in stream '" +
                                      std::string(s.text(0)) + "' at version " +
                                      std::to_string(s.int64(1)));
      }
      sqlite3_reset(s.get());
      if (rc != SQLITE_DONE) return writer_conn_.error(rc, "looking up an event id");
    }
    return Status::already_exists("an event id of this append is already stored");
  }

  // If the request's events (same ids, same order) were appended earlier to the same stream at a
  // version its expected version allows, that append's result; nullopt otherwise.
  Result<std::optional<AppendResult>> find_earlier_append(const WriteRequest& r) {
    Connection& c = writer_conn_;
    const std::vector<EventData>& events = *r.events;
    std::int64_t first_version = 0;
    {
      HERALD_PREPARE(s, c, kEventById);
      s.bind(1, events.front().id);
      int rc = s.step();
      if (rc == SQLITE_DONE) return std::optional<AppendResult>{};
      if (rc != SQLITE_ROW) return c.error(rc, "looking up an event id");
      if (s.text(0) != r.stream_id) return std::optional<AppendResult>{};
      // Only a whole earlier append is retried: the id must start a batch of the same size.
      if (s.is_null(3) ||
          s.int64(3) - s.int64(2) + 1 != static_cast<std::int64_t>(events.size())) {
        return std::optional<AppendResult>{};
      }
      first_version = s.int64(1);
    }
    if (!r.expected.matches(first_version - 1)) return std::optional<AppendResult>{};
    HERALD_PREPARE(s, c, kIdsFromVersion);
    s.bind(1, r.stream_id);
    s.bind(2, first_version);
    s.bind(3, static_cast<std::int64_t>(events.size()));
    AppendResult result;
    std::size_t i = 0;
    int rc;
    while ((rc = s.step()) == SQLITE_ROW) {
      if (s.text(0) != events[i].id) return std::optional<AppendResult>{};
      if (i == 0) result.first_position = s.int64(1);
      result.last_position = s.int64(1);
      ++i;
    }
    if (rc != SQLITE_DONE) return c.error(rc, "reading earlier events");
    if (i != events.size()) return std::optional<AppendResult>{};
    result.stream_version = first_version + static_cast<std::int64_t>(events.size()) - 1;
    return std::optional<AppendResult>{result};
  }

  // After a successful COMMIT: adds `events` (positions head_+1 .. last) to the cache and
  // publishes the new head, then wakes waiters.
  void publish(std::vector<RecordedEvent> events, std::int64_t last) {
    {
      std::unique_lock lk(cache_mu_);
      try {
        for (RecordedEvent& e : events) {
          cache_bytes_ += approx_bytes(e);
          cache_.push_back(std::move(e));
        }
      } catch (...) {
        // Out of memory: drop the cache rather than leave it short of the head; SQLite serves.
        cache_.clear();
        cache_bytes_ = 0;
        cache_first_ = last + 1;
      }
      while (!cache_.empty() && (cache_bytes_ > tuning_.cache_max_bytes ||
                                 cache_.size() > tuning_.cache_max_events)) {
        cache_bytes_ -= approx_bytes(cache_.front());
        cache_.pop_front();
        ++cache_first_;
      }
      // Still under cache_mu_: the cache's end and the head move together.
      std::lock_guard head_lk(head_mu_);
      head_.store(last);
    }
    head_cv_.notify_all();
  }

  // Serves read_all from the tail cache when it covers from_position; false when SQLite must.
  bool serve_from_cache(std::int64_t from, std::size_t max_count, const ReadFilter& filter,
                        AllSlice& slice) const {
    std::shared_lock lk(cache_mu_);
    if (from < cache_first_) return false;
    const std::int64_t end = cache_first_ + static_cast<std::int64_t>(cache_.size());  // head + 1
    slice.next_position = from;
    if (from < end) {
      auto it = cache_.begin() + (from - cache_first_);
      if (filter.empty()) {
        const auto n = static_cast<std::ptrdiff_t>(
            std::min<std::size_t>(max_count, static_cast<std::size_t>(end - from)));
        slice.events.assign(it, it + n);
        slice.next_position = from + n;
      } else {
        const std::size_t scan = std::max(max_count, kFilteredScanLimit);
        for (std::size_t examined = 0;
             it != cache_.end() && examined < scan && slice.events.size() < max_count;
             ++it, ++examined) {
          slice.next_position = it->position + 1;
          if (filter.matches(*it)) slice.events.push_back(*it);
        }
      }
    }
    slice.end_of_log = slice.next_position >= end;
    return true;
  }

  // The stream's first version whose position is >= `from` (its version + 1 when none is), by
  // binary search over versions: O(log^2 n) index probes instead of walking the stream from
  // version 0 on every page.
  static Result<std::int64_t> first_version_from(Connection& c, std::string_view stream_id,
                                                  std::int64_t from) {
    std::int64_t hi = 0;  // one past the last version
    {
      HERALD_PREPARE(s, c, kStreamVersion);
      s.bind(1, stream_id);
      int rc = s.step();
      if (rc == SQLITE_DONE) return std::int64_t{0};
      if (rc != SQLITE_ROW) return c.error(rc, "reading a stream's version");
      hi = s.int64(0) + 1;
    }
    std::int64_t lo = 0;
    HERALD_PREPARE(s, c, kPositionOfVersion);
    while (lo < hi) {
      const std::int64_t mid = lo + (hi - lo) / 2;
      s.bind(1, stream_id);
      s.bind(2, mid);
      int rc = s.step();
      // A version the streams table promises but this snapshot lacks counts as "after".
      const bool at_or_after = rc != SQLITE_ROW || s.int64(0) >= from;
      sqlite3_reset(s.get());
      if (rc != SQLITE_ROW && rc != SQLITE_DONE) return c.error(rc, "locating a stream position");
      if (at_or_after) {
        hi = mid;
      } else {
        lo = mid + 1;
      }
    }
    return lo;
  }

  Result<AllSlice> read_all_of_stream(Connection& c, std::int64_t from, std::size_t max_count,
                                      const ReadFilter& filter, std::int64_t head) {
    AllSlice slice;
    slice.next_position = from;
    const std::size_t scan = std::max(max_count, kFilteredScanLimit);
    auto first_version = first_version_from(c, filter.stream_id, from);
    if (!first_version) return first_version.status();
    HERALD_PREPARE(s, c, kReadAllOfStream);
    s.bind(1, filter.stream_id);
    s.bind(2, *first_version);
    s.bind(3, from);
    s.bind(4, head);
    s.bind(5, clamp_limit(scan));
    std::size_t examined = 0;
    RecordedEvent e;
    int rc = SQLITE_DONE;
    while (slice.events.size() < max_count && (rc = s.step()) == SQLITE_ROW) {
      ++examined;
      HERALD_RETURN_IF_ERROR(read_event_row(s, e));
      slice.next_position = e.position + 1;
      if (filter.matches(e)) slice.events.push_back(std::move(e));
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return c.error(rc, "reading a stream's events");
    // Every event of the stream up to the head was examined: skip the other streams' events too.
    if (slice.events.size() < max_count && examined < scan) {
      slice.next_position = std::max(slice.next_position, head + 1);
    }
    slice.end_of_log = slice.next_position > head;
    return slice;
  }

  // Constant after open().
  const std::string url_;
  const std::string path_;
  const StoreOptions options_;
  const SqliteTuning tuning_;
  const std::shared_ptr<Clock> clock_;
  int synchronous_ = -1;  // PRAGMA synchronous of the writer connection
  std::thread::id writer_id_;  // the writer thread's id (no thread before open() starts it)

  std::mutex close_mu_;  // guards writer_ (joined by one close() at a time)
  std::thread writer_;

  // Owned by the writer thread (and by open() before the thread starts).
  Connection writer_conn_;

  ReaderPool readers_;  // internally synchronized

  // The checkpointer thread owns checkpoint_conn_ (after open() hands it over).
  Connection checkpoint_conn_;
  std::thread checkpointer_;  // joined by close() under close_mu_
  // Held by whichever of the checkpointer and the writer is checkpointing (SQLite lets one run).
  std::timed_mutex checkpoint_run_mu_;
  std::mutex checkpoint_mu_;  // guards checkpoint_wanted_, checkpoint_stop_
  std::condition_variable checkpoint_cv_;
  bool checkpoint_wanted_ = false;
  // The WAL passed options_.sqlite_wal_limit_bytes: the writer truncates it after this group.
  // Writer thread only (the WAL hook runs there), so no mutex.
  bool truncate_wanted_ = false;
  std::int64_t page_size_ = 4096;  // set by open() before the WAL hook is installed
  // Written by the WAL hook (writer thread) and the checkpointer, read by counters().
  std::atomic<std::int64_t> wal_bytes_{0};
  std::atomic<std::int64_t> wal_max_bytes_{0};
  std::atomic<std::int64_t> escalated_checkpoints_{0};
  std::atomic<std::int64_t> escalated_busy_{0};
  // WAL size (pages) when the writer last asked for a checkpoint. Writer thread only (the WAL
  // hook runs there), so no mutex.
  int checkpoint_requested_at_pages_ = 0;
  bool checkpoint_stop_ = false;

  std::mutex queue_mu_;  // guards queue_, stopping_, poisoned_
  std::condition_variable queue_cv_;
  std::vector<WriteRequest*> queue_;
  bool stopping_ = false;
  Status poisoned_;  // the failed COMMIT's error; ok while healthy

  // head_ is written only by the writer (after COMMIT) and only under head_mu_, so that wait_for
  // cannot miss a wake-up; it is atomic so that head_position() and readers need no lock.
  mutable std::mutex head_mu_;  // guards the wait_for protocol over head_ and closed_
  std::condition_variable head_cv_;
  std::atomic<std::int64_t> head_{-1};
  std::atomic<bool> closed_{false};
  std::atomic<std::int64_t> commits_{0};  // successful group COMMITs (diagnostics)

  // Lock order: cache_mu_ before head_mu_ (publish() takes both so the cache ends at the head).
  mutable std::shared_mutex cache_mu_;  // guards cache_, cache_first_, cache_bytes_
  std::deque<RecordedEvent> cache_;     // committed events cache_first_ .. head_, in order
  std::int64_t cache_first_ = 0;
  std::size_t cache_bytes_ = 0;
};

}  // namespace

Result<std::unique_ptr<EventStore>> open_sqlite_store(std::string url, std::string path,
                                                      const StoreOptions& options) {
  return open_sqlite_store(std::move(url), std::move(path), options, SqliteTuning{});
}

Result<std::unique_ptr<EventStore>> open_sqlite_store(std::string url, std::string path,
                                                      const StoreOptions& options,
                                                      const SqliteTuning& tuning) {
  if (path.empty()) return Status::invalid_argument("sqlite URL has no path: " + url);
  auto store = std::make_unique<SqliteEventStore>(std::move(url), std::move(path), options, tuning);
  HERALD_RETURN_IF_ERROR(store->open());
  return std::unique_ptr<EventStore>(std::move(store));
}

Result<SqliteCounters> sqlite_counters(EventStore& store) {
  auto* s = dynamic_cast<SqliteEventStore*>(&store);
  if (s == nullptr) return Status::invalid_argument("not a SQLite store");
  return s->counters();
}

}  // namespace herald::detail
