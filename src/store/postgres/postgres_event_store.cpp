// The PostgreSQL backend. See docs/postgres.md for the design; in short:
//
//  * Appends go through one writer thread per store (client-side group commit): it takes every
//    pending append and runs them in ONE call of the server function herald_append_batch, i.e. one
//    transaction and one WAL flush. Each append in the batch is checked and written on its own
//    (its failure writes nothing and does not fail the others) because all checks run under the
//    herald_log row lock, where nothing else can write events.
//  * Gap-free positions that readers never skip: positions come from the single herald_log row,
//    locked FOR UPDATE until commit. So appends of all processes are assigned positions AND commit
//    in position order; a snapshot that shows position N+1 shows every position <= N.
//  * wait_for sleeps on a condition variable; a listener thread wakes it on NOTIFY herald_events,
//    and polls the head while someone waits so a lost notification only delays, never stalls.
//  * Everything else (reads, process state, transact) runs on a small connection pool.
#include "store/postgres/postgres_event_store.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <system_error>
#include <thread>
#include <unordered_set>

#include "core/json_codec.h"
#include "store/postgres/pg_schema.h"
#include "store/postgres/pg_support.h"
#include "store/validation.h"

namespace herald::detail {
namespace {

using pg::Params;
using pg::Rows;

constexpr std::int64_t kInt64Max = std::numeric_limits<std::int64_t>::max();
// Limits of one group-commit batch (a single append may exceed them and then goes alone).
constexpr std::size_t kBatchMaxEvents = 20'000;
constexpr std::size_t kBatchMaxBytes = 32u << 20;
// Longest wait for the rest of a group before a commit (see writer_loop).
constexpr std::chrono::microseconds kMaxGather{1000};
// Name of the prepared append call on the writer's connection.
constexpr const char* kAppendStatement = "herald_append";

Status closed_error() { return Status::failed_precondition("the postgres store is closed"); }

Status check_name(std::string_view what, std::string_view name) {
  if (name.empty()) return Status::invalid_argument(std::string(what) + " is empty");
  return {};
}

std::int64_t clamp_count(std::size_t n) {
  return n > static_cast<std::size_t>(kInt64Max) ? kInt64Max : static_cast<std::int64_t>(n);
}

int expected_kind(ExpectedVersion e) {
  switch (e.kind()) {
    case ExpectedVersion::Kind::any: return 0;
    case ExpectedVersion::Kind::no_stream: return 1;
    case ExpectedVersion::Kind::stream_exists: return 2;
    case ExpectedVersion::Kind::exact: return 3;
  }
  return 0;
}

// A boolean parameter in text format. std::string(1, c) rather than a literal: g++ 12 -O3
// reports a false -Wrestrict when such literals initialise a vector of strings.
std::string bool_text(bool v) { return std::string(1, v ? 't' : 'f'); }

const Status& status_of(const Status& s) { return s; }
template <class T>
Status status_of(const Result<T>& r) {
  return r.status();
}

// Columns of an event row, in this order, for every event query.
constexpr const char* kEventColumns =
    "e.position, e.stream_id, e.version, e.recorded_at, e.id, e.type, e.payload, "
    "e.correlation_id, e.causation_id, e.actor, e.extra";

Result<RecordedEvent> decode_event(const Rows& rows, int row, int col) {
  RecordedEvent e;
  e.position = rows.i64(row, col + 0);
  e.stream_id = rows.str(row, col + 1);
  e.version = rows.i64(row, col + 2);
  e.recorded_at = timestamp_from_micros(rows.i64(row, col + 3));
  e.id = rows.str(row, col + 4);
  e.type = rows.str(row, col + 5);
  e.payload = rows.str(row, col + 6);
  e.metadata.correlation_id = rows.str(row, col + 7);
  e.metadata.causation_id = rows.str(row, col + 8);
  e.metadata.actor = rows.str(row, col + 9);
  std::string_view extra = rows.text(row, col + 10);
  if (!extra.empty() && !decode_extra(extra, e.metadata)) {
    return Status::corruption("event at position " + std::to_string(e.position) +
                              " has unreadable metadata");
  }
  return e;
}

DeadLetter decode_dead_letter(const Rows& r, int row) {
  DeadLetter d;
  d.id = r.i64(row, 0);
  d.handler = r.str(row, 1);
  d.position = r.i64(row, 2);
  d.event_id = r.str(row, 3);
  d.event_type = r.str(row, 4);
  d.stream_id = r.str(row, 5);
  d.parked = r.boolean(row, 6);
  d.attempts = static_cast<std::int32_t>(r.i64(row, 7));
  d.last_error = r.str(row, 8);
  d.first_failed_at = timestamp_from_micros(r.i64(row, 9));
  d.last_failed_at = timestamp_from_micros(r.i64(row, 10));
  return d;
}
constexpr const char* kDeadLetterColumns =
    "id, handler, position, event_id, event_type, stream_id, parked, attempts, last_error, "
    "first_failed_at, last_failed_at";

// The work of one transact() call on one pooled connection inside BEGIN … COMMIT.
class PgTransaction final : public StoreTransaction {
 public:
  explicit PgTransaction(PGconn* conn) : conn_(conn) {}

  // SQLSTATE of the last failed statement ("" when none failed), to decide on a retry.
  const std::string& last_sqlstate() const { return last_state_; }
  // The error of the first failed statement (ok when none failed).
  const Status& first_error() const { return first_error_; }

  Result<bool> inbox_record(std::string_view handler, std::string_view event_id) override {
    HERALD_RETURN_IF_ERROR(check_name("inbox handler", handler));
    HERALD_RETURN_IF_ERROR(check_name("inbox event id", event_id));
    Params p;
    p.add(handler).add(event_id);
    auto r = run("INSERT INTO herald_inbox (handler, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                 p, "inbox_record");
    if (!r) return r.status();
    return r->affected() == 1;
  }

  Result<std::string> get_document(std::string_view collection, std::string_view key) override {
    HERALD_RETURN_IF_ERROR(check_name("collection", collection));
    HERALD_RETURN_IF_ERROR(check_name("document key", key));
    Params p;
    p.add(collection).add(key);
    auto r = run("SELECT json FROM herald_documents WHERE collection = $1 AND key = $2", p,
                 "get_document");
    if (!r) return r.status();
    if (r->size() == 0) {
      return Status::not_found("no document '" + std::string(key) + "' in collection '" +
                               std::string(collection) + "'");
    }
    return r->str(0, 0);
  }

  Status put_document(std::string_view collection, std::string_view key,
                      std::string_view json) override {
    HERALD_RETURN_IF_ERROR(check_name("collection", collection));
    HERALD_RETURN_IF_ERROR(check_name("document key", key));
    if (!is_valid_json(json)) {
      return Status::invalid_argument("document '" + std::string(key) + "' is not valid JSON");
    }
    Params p;
    p.add(collection).add(key).add(json);
    return status_of(run("INSERT INTO herald_documents (collection, key, json) VALUES ($1, $2, $3) "
                         "ON CONFLICT (collection, key) DO UPDATE SET json = excluded.json",
                         p, "put_document"));
  }

  Status delete_document(std::string_view collection, std::string_view key) override {
    HERALD_RETURN_IF_ERROR(check_name("collection", collection));
    HERALD_RETURN_IF_ERROR(check_name("document key", key));
    Params p;
    p.add(collection).add(key);
    return status_of(run("DELETE FROM herald_documents WHERE collection = $1 AND key = $2", p,
                         "delete_document"));
  }

  Result<std::vector<Document>> list_documents(std::string_view collection, std::string_view after_key,
                                               std::size_t limit) override {
    HERALD_RETURN_IF_ERROR(check_name("collection", collection));
    Params p;
    p.add(collection).add(after_key).add(clamp_count(limit));
    auto r = run("SELECT key, json FROM herald_documents WHERE collection = $1 AND key > $2 "
                 "ORDER BY key LIMIT $3",
                 p, "list_documents");
    if (!r) return r.status();
    std::vector<Document> out;
    out.reserve(static_cast<std::size_t>(r->size()));
    for (int i = 0; i < r->size(); ++i) out.push_back(Document{r->str(i, 0), r->str(i, 1)});
    return out;
  }

  Status save_checkpoint(std::string_view subscription, std::int64_t position) override {
    HERALD_RETURN_IF_ERROR(check_name("subscription name", subscription));
    Params p;
    p.add(subscription).add(position);
    return status_of(run("INSERT INTO herald_checkpoints (subscription, position) VALUES ($1, $2) "
                         "ON CONFLICT (subscription) DO UPDATE SET position = excluded.position",
                         p, "save_checkpoint"));
  }

 private:
  Result<Rows> run(const char* sql, const Params& p, std::string_view what) {
    std::vector<const char*> values = p.pointers();
    PGresult* r = PQexecParams(conn_, sql, p.size(), nullptr, values.data(), nullptr, nullptr, 0);
    const ExecStatusType st = r == nullptr ? PGRES_FATAL_ERROR : PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return Rows(r);
    last_state_ = pg::sqlstate(r);
    Status s = pg::error_status(conn_, r, what);
    PQclear(r);
    if (first_error_.is_ok()) first_error_ = s;
    return s;
  }

  PGconn* conn_;
  std::string last_state_;
  Status first_error_;
};

// Statements run on every connection of a store.
std::vector<std::string> session_setup(const StoreOptions& options) {
  // JIT compiles a query when its estimated cost is high, as happens on a new store whose tables
  // have no statistics yet: 100+ ms of compiling for a query that runs in one. Our queries are
  // all short index lookups, which JIT never speeds up.
  std::vector<std::string> out{"SET jit = off"};
  if (!options.durable) out.emplace_back("SET synchronous_commit = off");
  return out;
}

class PostgresEventStore final : public EventStore {
 public:
  PostgresEventStore(std::string url, const StoreOptions& options, const PostgresOptions& pg_options)
      : url_(std::move(url)),
        redacted_url_(pg::redact_url(url_)),
        options_(options),
        pg_options_(pg_options),
        clock_(options.clock ? options.clock : system_clock()),
        session_setup_(session_setup(options)),
        pool_(url_, std::max(1, options.reader_connections) + 2, session_setup_) {}

  ~PostgresEventStore() override {
    close();
    if (writer_.joinable()) writer_.join();
    if (listener_.joinable()) listener_.join();
    if (wake_fd_ >= 0) ::close(wake_fd_);
  }

  // Migrates the schema, reads the head and starts the writer and listener threads.
  Status start() {
    {
      auto lease = pool_.acquire();
      if (!lease) return lease.status();
      HERALD_RETURN_IF_ERROR(pg::migrate(lease->get()));
      auto head = pg::exec(lease->get(), "SELECT next_position - 1 FROM herald_log", {}, "read head");
      if (!head) return head.status();
      head_.store(head->i64(0, 0));
    }
    wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake_fd_ < 0) return Status::internal("eventfd failed");
    try {
      writer_ = std::thread([this] { writer_loop(); });
      listener_ = std::thread([this] { listener_loop(); });
    } catch (const std::system_error& e) {
      return Status::internal(std::string("cannot start the store's threads: ") + e.what());
    }
    return {};
  }

  std::string url() const override { return redacted_url_; }

  // ---- the event log ----

  Result<AppendResult> append(std::string_view stream_id, ExpectedVersion expected,
                              std::vector<EventData> events) override {
    HERALD_RETURN_IF_ERROR(prepare_append(stream_id, expected, events, options_));
    PendingAppend pending;
    pending.stream_id = std::string(stream_id);
    pending.expected = expected;
    pending.events = std::move(events);
    pending.recorded_at = clock_->now();
    {
      std::unique_lock lock(queue_mu_);
      if (closed_) return closed_error();
      queue_.push_back(&pending);
      queue_cv_.notify_one();
      done_cv_.wait(lock, [&] { return pending.result.has_value(); });
    }
    return std::move(*pending.result);
  }

  Result<std::vector<RecordedEvent>> read_stream(std::string_view stream_id, std::int64_t from_version,
                                                 std::size_t max_count,
                                                 ReadDirection direction) override {
    HERALD_RETURN_IF_ERROR(validate_read_stream(stream_id, from_version));
    if (closed_flag_.load()) return closed_error();
    const std::string sql =
        std::string("SELECT ") + kEventColumns + " FROM herald_events e WHERE e.stream_id = $1 AND " +
        (direction == ReadDirection::forwards
             ? "e.version >= $2 ORDER BY e.version LIMIT $3"
             : "e.version <= $2 ORDER BY e.version DESC LIMIT $3");
    return with_conn(true, [&](PGconn* c) -> Result<std::vector<RecordedEvent>> {
      Params p;
      p.add(stream_id).add(from_version).add(clamp_count(max_count));
      auto r = pg::exec(c, sql.c_str(), p, "read_stream");
      if (!r) return r.status();
      if (r->size() == 0) {
        Params q;
        q.add(stream_id);
        auto s = pg::exec(c, "SELECT 1 FROM herald_streams WHERE stream_id = $1", q, "read_stream");
        if (!s) return s.status();
        if (s->size() == 0) {
          return Status::not_found("stream '" + std::string(stream_id) + "' does not exist");
        }
      }
      std::vector<RecordedEvent> out;
      out.reserve(static_cast<std::size_t>(r->size()));
      for (int i = 0; i < r->size(); ++i) {
        auto e = decode_event(*r, i, 0);
        if (!e) return e.status();
        out.push_back(std::move(*e));
      }
      return out;
    });
  }

  Result<AllSlice> read_all(std::int64_t from_position, std::size_t max_count,
                            const ReadFilter& filter) override {
    HERALD_RETURN_IF_ERROR(validate_read_all(from_position));
    if (closed_flag_.load()) return closed_error();
    const bool filtered = !filter.empty();
    // Positions are gap-free, so without a filter [from, from + max_count) holds exactly the
    // events wanted. Bounding the range that tightly also keeps the plan cheap when the planner
    // has no statistics yet (a new store): it then guesses a range matches few rows and may sort
    // the whole range instead of walking the index in order.
    const std::int64_t window =
        filtered ? std::max<std::int64_t>(1, pg_options_.filtered_scan_window) : clamp_count(max_count);
    const std::int64_t window_end =
        from_position > kInt64Max - window ? kInt64Max : from_position + window;
    // One statement, hence one snapshot: the head and the events agree.
    Params p;
    p.add(from_position).add(window_end).add(clamp_count(max_count));
    // No upper bound from herald_log is needed: in one snapshot every visible event lies below
    // next_position. Keeping the event query independent of herald_log lets the planner use a
    // plain ordered index range scan even before the tables have statistics.
    std::string where = "e.position >= $1 AND e.position < $2";
    int n = 3;
    auto arg = [&](auto value) {
      p.add(value);
      // Appended, not "$" + …: g++ 12 -O3 reports a false -Wrestrict on operator+ here.
      std::string placeholder(1, '$');
      placeholder += std::to_string(++n);
      return placeholder;
    };
    if (!filter.event_types.empty()) {
      pg::ArrayLiteral types;
      for (const std::string& t : filter.event_types) types.add_text(t);
      where += " AND e.type = ANY(" + arg(std::string_view(types.finish())) + "::text[])";
    }
    if (!filter.category.empty()) where += " AND e.category = " + arg(std::string_view(filter.category));
    if (!filter.stream_id.empty()) where += " AND e.stream_id = " + arg(std::string_view(filter.stream_id));
    if (filter.since) where += " AND e.recorded_at >= " + arg(to_micros(*filter.since));
    if (filter.until) where += " AND e.recorded_at < " + arg(to_micros(*filter.until));
    if (!filter.correlation_id.empty()) {
      where += " AND e.correlation_id = " + arg(std::string_view(filter.correlation_id));
    }
    const std::string sql = std::string("SELECT h.next_position, ") + kEventColumns +
                            " FROM herald_log h LEFT JOIN (SELECT * FROM herald_events e WHERE " + where +
                            " ORDER BY e.position LIMIT $3) e ON true ORDER BY e.position";
    return with_conn(true, [&](PGconn* c) -> Result<AllSlice> {
      auto r = pg::exec(c, sql.c_str(), p, "read_all");
      if (!r) return r.status();
      if (r->size() == 0) return Status::corruption("herald_log has no row");
      const std::int64_t end = r->i64(0, 0);  // head + 1
      observe_head(end - 1);
      AllSlice slice;
      for (int i = 0; i < r->size(); ++i) {
        if (r->is_null(i, 1)) continue;  // the LEFT JOIN's row when nothing matched
        auto e = decode_event(*r, i, 1);
        if (!e) return e.status();
        slice.events.push_back(std::move(*e));
      }
      if (slice.events.size() == max_count) {
        slice.next_position = slice.events.empty() ? from_position : slice.events.back().position + 1;
      } else {
        slice.next_position = std::max(from_position, std::min(end, window_end));
      }
      slice.end_of_log = slice.next_position >= end;
      return slice;
    });
  }

  Result<std::int64_t> stream_version(std::string_view stream_id) override {
    HERALD_RETURN_IF_ERROR(validate_stream_id(stream_id));
    if (closed_flag_.load()) return closed_error();
    return with_conn(true, [&](PGconn* c) -> Result<std::int64_t> {
      Params p;
      p.add(stream_id);
      auto r = pg::exec(c, "SELECT version FROM herald_streams WHERE stream_id = $1", p, "stream_version");
      if (!r) return r.status();
      return r->size() == 0 ? kNoStreamVersion : r->i64(0, 0);
    });
  }

  std::int64_t head_position() const override { return head_.load(std::memory_order_acquire); }

  Result<StoreStats> stats() override {
    if (closed_flag_.load()) return closed_error();
    // Held throughout, so counted_ never runs ahead of this call's snapshot.
    std::lock_guard stats_lock(stats_mu_);
    return with_conn(true, [&](PGconn* c) -> Result<StoreStats> {
      // One snapshot for all the numbers.
      HERALD_RETURN_IF_ERROR(pg::exec_simple(c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", "stats"));
      auto result = stats_in_snapshot(c);
      (void)pg::exec_simple(c, "COMMIT", "stats");
      return result;
    });
  }

  Status wait_for(std::int64_t after_position, std::chrono::milliseconds timeout) override {
    // Capped so that "wait practically forever" cannot overflow the deadline.
    const auto deadline =
        std::chrono::steady_clock::now() + std::min(timeout, std::chrono::milliseconds(std::chrono::hours(24 * 365)));
    std::unique_lock lock(head_mu_);
    if (waiters_++ == 0) wake_listener();
    const bool woken = head_cv_.wait_until(lock, deadline, [&] {
      return closed_flag_.load() || head_.load() > after_position;
    });
    --waiters_;
    // Closing wins over data: a waiter woken by shutdown must stop, not process more.
    if (closed_flag_.load()) return Status::cancelled("the postgres store was closed");
    if (!woken) {
      return Status::timeout("no event after position " + std::to_string(after_position) + " within " +
                             std::to_string(timeout.count()) + " ms");
    }
    return {};
  }

  // ---- process state ----

  Status transact(const std::function<Status(StoreTransaction&)>& work) override {
    if (closed_flag_.load()) return closed_error();
    constexpr int kAttempts = 5;
    Status last;
    for (int attempt = 0; attempt < kAttempts; ++attempt) {
      auto lease = pool_.acquire();
      if (!lease) return lease.status();
      PGconn* c = lease->get();
      // REPEATABLE READ, not the default READ COMMITTED: a read-modify-write of a document (a
      // projection's counters) racing another transaction on the same row must fail with 40001
      // and run again below, instead of silently losing the other's update. Two lanes of one
      // handler, or several instances, update the same documents concurrently.
      Status begun = pg::exec_simple(c, "BEGIN ISOLATION LEVEL REPEATABLE READ", "transact");
      if (!begun.is_ok()) {
        // A stale pooled connection: nothing ran yet, so another connection may try.
        if (pg::broken(c)) {
          pool_.discard_idle();
          if (attempt == 0) continue;
        }
        return begun;
      }
      PgTransaction txn(c);
      Status status;
      try {
        status = work(txn);
      } catch (const std::exception& e) {
        status = Status::internal(std::string("transaction work threw: ") + e.what());
      } catch (...) {
        status = Status::internal("transaction work threw a non-standard exception");
      }
      if (status.is_ok() && PQtransactionStatus(c) == PQTRANS_INERROR) {
        // `work` went on after one of its statements failed: COMMIT would silently roll back.
        status = txn.first_error().is_ok()
                     ? Status::internal("transaction aborted by the database")
                     : txn.first_error();
      }
      if (status.is_ok()) {
        PGresult* r = PQexec(c, "COMMIT");
        const bool committed = r != nullptr && PQresultStatus(r) == PGRES_COMMAND_OK;
        const std::string state = pg::sqlstate(r);
        if (committed) {
          PQclear(r);
          return {};
        }
        status = pg::error_status(c, r, "transact commit");
        PQclear(r);
        if (state == "40001" || state == "40P01") {
          last = status;
          continue;
        }
        return status;
      }
      (void)pg::exec_simple(c, "ROLLBACK", "transact rollback");
      const std::string& state = txn.last_sqlstate();
      if (state == "40001" || state == "40P01") {  // the database asks for a retry
        last = status;
        continue;
      }
      return status;
    }
    return last;
  }

  Result<std::int64_t> load_checkpoint(std::string_view subscription) override {
    HERALD_RETURN_IF_ERROR(check_name("subscription name", subscription));
    if (closed_flag_.load()) return closed_error();
    return with_conn(true, [&](PGconn* c) -> Result<std::int64_t> {
      Params p;
      p.add(subscription);
      auto r = pg::exec(c, "SELECT position FROM herald_checkpoints WHERE subscription = $1", p,
                        "load_checkpoint");
      if (!r) return r.status();
      if (r->size() == 0) {
        return Status::not_found("no checkpoint for subscription '" + std::string(subscription) + "'");
      }
      return r->i64(0, 0);
    });
  }

  Status save_checkpoint(std::string_view subscription, std::int64_t position) override {
    HERALD_RETURN_IF_ERROR(check_name("subscription name", subscription));
    if (closed_flag_.load()) return closed_error();
    return with_conn(true, [&](PGconn* c) -> Status {
      Params p;
      p.add(subscription).add(position);
      return status_of(pg::exec(c,
                                "INSERT INTO herald_checkpoints (subscription, position) VALUES ($1, $2) "
                                "ON CONFLICT (subscription) DO UPDATE SET position = excluded.position",
                                p, "save_checkpoint"));
    });
  }

  Result<std::int64_t> add_dead_letter(const DeadLetter& entry) override {
    HERALD_RETURN_IF_ERROR(check_name("dead letter handler", entry.handler));
    HERALD_RETURN_IF_ERROR(check_name("dead letter event id", entry.event_id));
    if (closed_flag_.load()) return closed_error();
    // Not retried on a fresh connection: had the insert committed, a retry would see its own row.
    return with_conn(false, [&](PGconn* c) -> Result<std::int64_t> {
      Params p;
      p.add(entry.handler).add(entry.position).add(entry.event_id).add(entry.event_type)
          .add(entry.stream_id).add(entry.parked).add(static_cast<std::int64_t>(entry.attempts))
          .add(entry.last_error).add(to_micros(entry.first_failed_at)).add(to_micros(entry.last_failed_at));
      auto r = pg::exec(c,
                        "INSERT INTO herald_dead_letters (handler, position, event_id, event_type, "
                        "stream_id, parked, attempts, last_error, first_failed_at, last_failed_at) "
                        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) "
                        "ON CONFLICT (handler, event_id) DO NOTHING RETURNING id",
                        p, "add_dead_letter");
      if (!r) return r.status();
      if (r->size() == 0) {
        return Status::already_exists("event " + entry.event_id + " is already dead-lettered for '" +
                                      entry.handler + "'");
      }
      return r->i64(0, 0);
    });
  }

  Result<DeadLetter> get_dead_letter(std::int64_t id) override {
    if (closed_flag_.load()) return closed_error();
    return with_conn(true, [&](PGconn* c) -> Result<DeadLetter> {
      Params p;
      p.add(id);
      const std::string sql = std::string("SELECT ") + kDeadLetterColumns +
                              " FROM herald_dead_letters WHERE id = $1";
      auto r = pg::exec(c, sql.c_str(), p, "get_dead_letter");
      if (!r) return r.status();
      if (r->size() == 0) return dead_letter_not_found(id);
      return decode_dead_letter(*r, 0);
    });
  }

  Result<std::vector<DeadLetter>> list_dead_letters(std::string_view handler) override {
    if (closed_flag_.load()) return closed_error();
    return with_conn(true, [&](PGconn* c) -> Result<std::vector<DeadLetter>> {
      Params p;
      std::string sql = std::string("SELECT ") + kDeadLetterColumns + " FROM herald_dead_letters";
      if (!handler.empty()) {
        sql += " WHERE handler = $1";
        p.add(handler);
      }
      sql += " ORDER BY handler, position, id";
      auto r = pg::exec(c, sql.c_str(), p, "list_dead_letters");
      if (!r) return r.status();
      std::vector<DeadLetter> out;
      out.reserve(static_cast<std::size_t>(r->size()));
      for (int i = 0; i < r->size(); ++i) out.push_back(decode_dead_letter(*r, i));
      return out;
    });
  }

  Status update_dead_letter(const DeadLetter& entry) override {
    if (closed_flag_.load()) return closed_error();
    return with_conn(true, [&](PGconn* c) -> Status {
      Params p;
      p.add(entry.id).add(static_cast<std::int64_t>(entry.attempts)).add(entry.parked)
          .add(entry.last_error).add(to_micros(entry.last_failed_at));
      auto r = pg::exec(c,
                        "UPDATE herald_dead_letters SET attempts = $2, parked = $3, last_error = $4, "
                        "last_failed_at = $5 WHERE id = $1",
                        p, "update_dead_letter");
      if (!r) return r.status();
      if (r->affected() == 0) return dead_letter_not_found(entry.id);
      return Status{};
    });
  }

  Status remove_dead_letter(std::int64_t id) override {
    if (closed_flag_.load()) return closed_error();
    return with_conn(false, [&](PGconn* c) -> Status {
      Params p;
      p.add(id);
      auto r = pg::exec(c, "DELETE FROM herald_dead_letters WHERE id = $1", p, "remove_dead_letter");
      if (!r) return r.status();
      if (r->affected() == 0) return dead_letter_not_found(id);
      return Status{};
    });
  }

  Result<bool> try_acquire_lease(std::string_view name, std::string_view owner,
                                 std::chrono::milliseconds ttl) override {
    HERALD_RETURN_IF_ERROR(check_name("lease name", name));
    HERALD_RETURN_IF_ERROR(check_name("lease owner", owner));
    if (ttl.count() <= 0) return Status::invalid_argument("lease ttl must be positive");
    if (closed_flag_.load()) return closed_error();
    const std::int64_t now = to_micros(clock_->now());
    const std::int64_t ttl_us = std::chrono::duration_cast<std::chrono::microseconds>(ttl).count();
    const std::int64_t expires = now > kInt64Max - ttl_us ? kInt64Max : now + ttl_us;
    return with_conn(true, [&](PGconn* c) -> Result<bool> {
      Params p;
      p.add(name).add(owner).add(expires).add(now);
      // The upsert takes the row lock, so two owners racing for an expired lease cannot both win.
      auto r = pg::exec(c,
                        "INSERT INTO herald_leases (name, owner, expires_at) VALUES ($1, $2, $3) "
                        "ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, "
                        "expires_at = excluded.expires_at "
                        "WHERE herald_leases.owner = excluded.owner OR herald_leases.expires_at <= $4 "
                        "RETURNING 1",
                        p, "try_acquire_lease");
      if (!r) return r.status();
      return r->size() == 1;
    });
  }

  Status release_lease(std::string_view name, std::string_view owner) override {
    if (closed_flag_.load()) return closed_error();
    return with_conn(true, [&](PGconn* c) -> Status {
      Params p;
      p.add(name).add(owner);
      return status_of(pg::exec(c, "DELETE FROM herald_leases WHERE name = $1 AND owner = $2", p,
                                "release_lease"));
    });
  }

  void close() override {
    {
      std::lock_guard lock(queue_mu_);
      if (closed_) return;
      closed_ = true;
      queue_cv_.notify_all();  // the writer finishes what is queued, then exits
    }
    {
      std::lock_guard lock(head_mu_);
      closed_flag_.store(true);
    }
    head_cv_.notify_all();
    wake_listener();
    if (writer_.joinable() && writer_.get_id() != std::this_thread::get_id()) writer_.join();
    if (listener_.joinable() && listener_.get_id() != std::this_thread::get_id()) listener_.join();
    pool_.close();
  }

 private:
  // One append waiting for the writer thread. Lives on the appending thread's stack until
  // `result` is set (under queue_mu_).
  struct PendingAppend {
    std::string stream_id;
    ExpectedVersion expected = ExpectedVersion::any();
    std::vector<EventData> events;
    Timestamp recorded_at{};
    std::optional<Result<AppendResult>> result;
  };

  static Status dead_letter_not_found(std::int64_t id) {
    return Status::not_found("no dead letter with id " + std::to_string(id));
  }

  // Runs `f` on a pooled connection. When `retry_safe` and the connection turns out broken (a
  // restarted server, a terminated backend), runs it once more on a fresh connection.
  template <class F>
  auto with_conn(bool retry_safe, F&& f) -> decltype(f(static_cast<PGconn*>(nullptr))) {
    for (int attempt = 0;; ++attempt) {
      auto lease = pool_.acquire();
      if (!lease) return lease.status();
      auto r = f(lease->get());
      if (!status_of(r).is_ok() && pg::broken(lease->get())) {
        pool_.discard_idle();
        if (retry_safe && attempt == 0) continue;
      }
      return r;
    }
  }

  Result<StoreStats> stats_in_snapshot(PGconn* c) {
    StoreStats s;
    auto head = pg::exec(c,
                         "SELECT h.next_position, "
                         "(SELECT recorded_at FROM herald_events WHERE position = 0), "
                         "(SELECT recorded_at FROM herald_events WHERE position = h.next_position - 1), "
                         "(SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                         " JOIN pg_namespace n ON n.oid = c.relnamespace"
                         " WHERE n.nspname = current_schema() AND c.relkind = 'r')"
                         " FROM herald_log h",
                         {}, "stats");
    if (!head) return head.status();
    const std::int64_t next = head->i64(0, 0);
    s.total_events = next;  // positions are gap-free from 0
    if (next > 0) {
      s.first_position = 0;
      s.last_position = next - 1;
      s.first_recorded_at = timestamp_from_micros(head->i64(0, 1));
      s.last_recorded_at = timestamp_from_micros(head->i64(0, 2));
    }
    s.bytes_on_disk = head->i64(0, 3);
    // Only the events appended since the last call are counted: [0, counted_.upto) is final
    // (gap-free positions, committed in order, never changed), so a scrape of /metrics costs
    // what was appended since the previous one, not a scan of the whole log. A stream is
    // counted by its first event (version 0): streams are created by appends and never removed.
    if (counted_.upto < next) {
      pg::Params range;
      range.add(counted_.upto).add(next);
      auto types = pg::exec(c,
                            "SELECT type, count(*), count(*) FILTER (WHERE version = 0) FROM herald_events"
                            " WHERE position >= $1 AND position < $2 GROUP BY type",
                            range, "stats");
      if (!types) return types.status();
      CountedLog updated = counted_;
      for (int i = 0; i < types->size(); ++i) {
        updated.by_type[types->str(i, 0)] += types->i64(i, 1);
        updated.streams += types->i64(i, 2);
      }
      updated.upto = next;
      counted_ = std::move(updated);
    }
    s.events_by_type.insert(counted_.by_type.begin(), counted_.by_type.end());
    s.stream_count = counted_.streams;
    return s;
  }

  // Raises the known head to `h` (never lowers it) and wakes waiters.
  void observe_head(std::int64_t h) {
    if (h <= head_.load(std::memory_order_acquire)) return;
    {
      std::lock_guard lock(head_mu_);
      std::int64_t cur = head_.load();
      while (h > cur && !head_.compare_exchange_weak(cur, h)) {
      }
    }
    head_cv_.notify_all();
  }

  void wake_listener() {
    if (wake_fd_ < 0) return;
    const std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof one);
  }

  // ---- writer thread: group commit ----

  void writer_loop() {
    std::vector<PendingAppend*> batch;
    // Appenders answered by the previous batch, and how long its call took: see the gather below.
    std::size_t last_group = 0;
    auto last_call = std::chrono::steady_clock::duration::zero();
    for (;;) {
      {
        std::unique_lock lock(queue_mu_);
        queue_cv_.wait(lock, [&] { return closed_ || !queue_.empty(); });
        if (queue_.empty()) return;  // closed and drained
        // Gather: the appenders the previous batch just answered are usually about to append
        // again (closed-loop writers), but they are still waking up when this thread comes back
        // for work. Sending at once would commit the first one or two alone and leave the rest
        // for the next commit, so groups alternate small and large (10 concurrent writers made
        // groups of ~7 on average). Waiting a moment for as many appends as last time, bounded by
        // a fraction of the last call so a writer that stopped costs little, keeps groups whole.
        if (queue_.size() < last_group && !closed_) {
          const auto cap = std::min<std::chrono::steady_clock::duration>(last_call / 4, kMaxGather);
          queue_cv_.wait_for(lock, cap, [&] { return closed_ || queue_.size() >= last_group; });
        }
        std::size_t events = 0;
        std::size_t bytes = 0;
        while (!queue_.empty()) {
          PendingAppend* p = queue_.front();
          std::size_t pb = 0;
          for (const EventData& e : p->events) pb += e.payload.size();
          if (!batch.empty() && (events + p->events.size() > kBatchMaxEvents || bytes + pb > kBatchMaxBytes)) {
            break;
          }
          events += p->events.size();
          bytes += pb;
          batch.push_back(p);
          queue_.pop_front();
        }
      }
      std::vector<Result<AppendResult>> results;
      const auto call_start = std::chrono::steady_clock::now();
      try {
        results = run_batch(batch);
      } catch (const std::exception& e) {
        // Nothing may escape this thread, and every waiting appender must get an answer.
        results.assign(batch.size(), Status::internal(std::string("append batch threw: ") + e.what()));
      }
      std::int64_t last = -1;
      for (const auto& r : results) {
        if (r) last = std::max(last, r->last_position);
      }
      if (last >= 0) observe_head(last);
      last_call = std::chrono::steady_clock::now() - call_start;
      last_group = batch.size();
      {
        std::lock_guard lock(queue_mu_);
        for (std::size_t i = 0; i < batch.size(); ++i) batch[i]->result.emplace(std::move(results[i]));
      }
      done_cv_.notify_all();
      batch.clear();
    }
  }

  // Runs a batch; on a failure of the whole call (not of single appends), retries once on a
  // fresh connection when the connection broke (safe: a committed batch replays as idempotent
  // retries), and runs the appends one by one when the batch had several, so that a bad append
  // fails alone.
  //
  // The first call does not probe for stored ids (see kMigration2): a stored id then fails the
  // whole call on the unique index (already_exists, nothing written), and the batch runs again
  // with the probe, which sorts out idempotent retries and conflicts append by append.
  std::vector<Result<AppendResult>> run_batch(const std::vector<PendingAppend*>& batch) {
    auto r = call_append_batch(batch, /*verify_ids=*/false);
    if (!r && r.status().code() == StatusCode::unavailable && pg::broken(writer_conn_.get())) {
      writer_conn_.reset();
      r = call_append_batch(batch, /*verify_ids=*/false);
    }
    if (!r && r.status().code() == StatusCode::already_exists) {
      r = call_append_batch(batch, /*verify_ids=*/true);
    }
    if (r) return std::move(*r);
    std::vector<Result<AppendResult>> out;
    out.reserve(batch.size());
    if (batch.size() == 1 || r.status().code() == StatusCode::unavailable) {
      for (std::size_t i = 0; i < batch.size(); ++i) out.emplace_back(r.status());
      return out;
    }
    for (PendingAppend* p : batch) {
      auto one = call_append_batch({p}, /*verify_ids=*/true);
      out.emplace_back(one ? std::move((*one)[0]) : Result<AppendResult>(one.status()));
    }
    return out;
  }

  Result<std::vector<Result<AppendResult>>> call_append_batch(const std::vector<PendingAppend*>& batch,
                                                              bool verify_ids) {
    if (!writer_conn_ || pg::broken(writer_conn_.get())) {
      writer_conn_.reset();
      auto c = pg::connect(url_);
      if (!c) return c.status();
      for (const std::string& stmt : session_setup_) {
        HERALD_RETURN_IF_ERROR(pg::exec_simple(c->get(), stmt.c_str(), "session setup"));
      }
      // Generic plans for the call and for the statements inside herald_append_batch: with
      // arrays of varying length the plan cache otherwise keeps re-planning them as custom plans
      // on every call (measured: +13% single appends, +10% batches of 100, +6% with 10 writers).
      HERALD_RETURN_IF_ERROR(
          pg::exec_simple(c->get(), "SET plan_cache_mode = force_generic_plan", "session setup"));
      // Prepared once per connection: the call is parsed and planned once, not per batch.
      using pg::BinaryArray;
      const Oid text_a = BinaryArray::kTextArray, int4_a = BinaryArray::kInt4Array,
                int8_a = BinaryArray::kInt8Array, boolean = 16;
      HERALD_RETURN_IF_ERROR(pg::prepare(
          c->get(), kAppendStatement,
          "SELECT r_code, r_first, r_last, r_version, r_msg FROM herald_append_batch("
          "$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)",
          {text_a, text_a, int4_a, int8_a, int4_a, int8_a, text_a, text_a, text_a, text_a, text_a,
           text_a, text_a, boolean, boolean, int4_a, int4_a, boolean, boolean},
          "prepare append"));
      writer_conn_ = std::move(*c);
    }
    using pg::BinaryArray;
    BinaryArray streams(BinaryArray::kText), categories(BinaryArray::kText), kinds(BinaryArray::kInt4),
        expected(BinaryArray::kInt8), counts(BinaryArray::kInt4), recorded(BinaryArray::kInt8);
    BinaryArray ids(BinaryArray::kText), types(BinaryArray::kText), payloads(BinaryArray::kText),
        corr(BinaryArray::kText), caus(BinaryArray::kText), actor(BinaryArray::kText),
        extra(BinaryArray::kText), event_app(BinaryArray::kInt4), event_k(BinaryArray::kInt4);
    std::size_t bytes = 0;
    std::size_t events = 0;
    for (const PendingAppend* p : batch) {
      events += p->events.size();
      for (const EventData& e : p->events) bytes += e.payload.size() + 4;
    }
    payloads.reserve(bytes);
    ids.reserve(events * 40);
    types.reserve(events * 24);
    // Whether some id repeats within the batch (two callers appending the same event, or a
    // retry racing its original): then the function must check ids append by append.
    bool may_repeat = false;
    std::unordered_set<std::string_view> seen;
    std::unordered_set<std::string_view> streams_seen;
    bool distinct = true;
    std::int32_t app = 0;
    for (const PendingAppend* p : batch) {
      ++app;
      if (!streams_seen.insert(p->stream_id).second) distinct = false;
      std::int32_t k = 0;
      streams.add_text(p->stream_id);
      categories.add_text(stream_category(p->stream_id));
      kinds.add_int4(expected_kind(p->expected));
      expected.add_int8(p->expected.kind() == ExpectedVersion::Kind::exact ? p->expected.version() : 0);
      counts.add_int4(static_cast<std::int32_t>(p->events.size()));
      recorded.add_int8(to_micros(p->recorded_at));
      for (const EventData& e : p->events) {
        if (batch.size() > 1 && !seen.insert(e.id).second) may_repeat = true;
        ids.add_text(e.id);
        types.add_text(e.type);
        payloads.add_text(e.payload);
        corr.add_text(e.metadata.correlation_id);
        caus.add_text(e.metadata.causation_id);
        actor.add_text(e.metadata.actor);
        extra.add_text(encode_extra(e.metadata));
        event_app.add_int4(app);
        event_k.add_int4(++k);
      }
    }
    const std::vector<std::string> values{
        streams.finish(), categories.finish(), kinds.finish(),    expected.finish(),
        counts.finish(),  recorded.finish(),   ids.finish(),      types.finish(),
        payloads.finish(), corr.finish(),      caus.finish(),     actor.finish(),
        extra.finish(),   bool_text(may_repeat), bool_text(pg_options_.notify), event_app.finish(),
        event_k.finish(), bool_text(distinct), bool_text(verify_ids)};
    static const std::vector<bool> kBinary{true, true, true, true, true,  true,  true, true, true, true,
                                           true, true, true, false, false, true, true, false, false};
    auto rows = pg::exec_prepared(writer_conn_.get(), kAppendStatement, values, kBinary, "append");
    if (!rows) return rows.status();
    if (rows->size() != static_cast<int>(batch.size())) {
      return Status::internal("herald_append_batch returned " + std::to_string(rows->size()) +
                              " rows for " + std::to_string(batch.size()) + " appends");
    }
    std::vector<Result<AppendResult>> out;
    out.reserve(batch.size());
    for (int i = 0; i < rows->size(); ++i) {
      const PendingAppend& p = *batch[static_cast<std::size_t>(i)];
      switch (rows->i64(i, 0)) {
        case 0:
          out.emplace_back(AppendResult{rows->i64(i, 1), rows->i64(i, 2), rows->i64(i, 3)});
          break;
        case 1: {
          const std::int64_t actual = rows->i64(i, 3);
          out.emplace_back(Status::wrong_expected_version(
              actual, "stream '" + p.stream_id + "' is at version " + std::to_string(actual) +
                          ", expected " + p.expected.to_string()));
          break;
        }
        default:
          out.emplace_back(Status::already_exists(rows->str(i, 4)));
          break;
      }
    }
    return out;
  }

  // ---- listener thread: LISTEN/NOTIFY plus polling fallback ----

  void listener_loop() {
    pg::Conn conn;
    std::string notify_prefix;  // "<our schema>:"; other schemas' notifications are not ours
    auto last_poll = std::chrono::steady_clock::now();
    while (!closed_flag_.load()) {
      if (!conn) {
        auto c = pg::connect(url_);
        auto schema = c ? pg::exec(c->get(), "SELECT current_schema()", {}, "listen")
                        : Result<Rows>(c.status());
        if (schema && !schema->is_null(0, 0) &&
            pg::exec_simple(c->get(), "LISTEN herald_events", "listen").is_ok()) {
          notify_prefix = schema->str(0, 0) + ":";
          conn = std::move(*c);
          // Notifications sent while we were not listening are lost: catch up once.
          poll_head(conn.get());
        }
      }
      const bool waiting = waiters_.load() > 0;
      constexpr std::chrono::milliseconds kIdle{1000};
      // Without a connection, retry it at least every second whatever the poll interval is.
      const auto interval = !conn     ? std::min(pg_options_.poll_interval, kIdle)
                            : waiting ? pg_options_.poll_interval
                                      : kIdle;
      pollfd fds[2] = {{wake_fd_, POLLIN, 0}, {conn ? PQsocket(conn.get()) : -1, POLLIN, 0}};
      const int ready = ::poll(fds, conn ? 2 : 1, static_cast<int>(interval.count()));
      if (closed_flag_.load()) break;
      if (ready > 0 && (fds[0].revents & POLLIN) != 0) {
        std::uint64_t drained = 0;
        [[maybe_unused]] auto n = ::read(wake_fd_, &drained, sizeof drained);
      }
      if (conn && ready > 0 && (fds[1].revents & (POLLIN | POLLERR | POLLHUP)) != 0) {
        if (PQconsumeInput(conn.get()) == 0) {
          conn.reset();
          continue;
        }
        while (PGnotify* n = PQnotifies(conn.get())) {
          std::int64_t h = -1;
          if (n->extra != nullptr) {
            std::string_view text(n->extra);
            if (text.starts_with(notify_prefix)) {
              text.remove_prefix(notify_prefix.size());
              std::from_chars(text.data(), text.data() + text.size(), h);
            }
          }
          PQfreemem(n);
          observe_head(h);
        }
      }
      // The fallback: while someone waits, ask the database now and then.
      const auto now = std::chrono::steady_clock::now();
      if (waiters_.load() > 0 && now - last_poll >= pg_options_.poll_interval) {
        last_poll = now;
        if (conn && !poll_head(conn.get())) conn.reset();
      }
    }
  }

  bool poll_head(PGconn* c) {
    auto r = pg::exec(c, "SELECT next_position - 1 FROM herald_log", {}, "poll head");
    if (!r) return false;
    observe_head(r->i64(0, 0));
    return true;
  }

  // ---- constant after construction ----
  const std::string url_;
  const std::string redacted_url_;
  const StoreOptions options_;
  const PostgresOptions pg_options_;
  const std::shared_ptr<Clock> clock_;
  const std::vector<std::string> session_setup_;
  int wake_fd_ = -1;  // eventfd that wakes the listener; set in start()

  pg::Pool pool_;  // thread-safe on its own

  // queue_mu_ guards queue_, closed_ and every PendingAppend::result. queue_cv_ wakes the writer;
  // done_cv_ wakes appenders when a batch finished.
  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::condition_variable done_cv_;
  std::deque<PendingAppend*> queue_;
  bool closed_ = false;

  // Owned by the writer thread only.
  pg::Conn writer_conn_;
  std::thread writer_;
  std::thread listener_;

  // stats_mu_ guards counted_: per-type event and stream counts of positions [0, upto).
  struct CountedLog {
    std::int64_t upto = 0;
    std::int64_t streams = 0;
    std::map<std::string, std::int64_t> by_type;
  };
  std::mutex stats_mu_;
  CountedLog counted_;

  // head_ is written under head_mu_ (so that a waiter cannot miss a wake-up) and read lock-free.
  // closed_flag_ mirrors closed_ for lock-free checks and is also set under head_mu_.
  std::mutex head_mu_;
  std::condition_variable head_cv_;
  std::atomic<std::int64_t> head_{-1};
  std::atomic<bool> closed_flag_{false};
  std::atomic<int> waiters_{0};
};

}  // namespace

Result<std::unique_ptr<EventStore>> open_postgres_store(std::string url, const StoreOptions& options,
                                                        const PostgresOptions& pg_options) {
  if (!url.starts_with("postgres://") && !url.starts_with("postgresql://")) {
    return Status::invalid_argument("not a postgres URL: " + pg::redact_url(url));
  }
  auto store = std::make_unique<PostgresEventStore>(std::move(url), options, pg_options);
  HERALD_RETURN_IF_ERROR(store->start());
  return std::unique_ptr<EventStore>(std::move(store));
}

Result<std::unique_ptr<EventStore>> open_postgres_store(std::string url, const StoreOptions& options) {
  return open_postgres_store(std::move(url), options, PostgresOptions{});
}

}  // namespace herald::detail
