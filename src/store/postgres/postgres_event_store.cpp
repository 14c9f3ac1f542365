// The PostgreSQL backend. See docs/postgres.md for the design; in short:
//
//  * Appends go through one writer thread per store that group-commits them (pg_writer.h).
//  * Gap-free positions that readers never skip: positions come from the single herald_log row,
//    locked FOR UPDATE until commit. So appends of all processes are assigned positions AND commit
//    in position order; a snapshot that shows position N+1 shows every position <= N.
//  * wait_for waits on the shared HeadSignal; a listener thread raises it on NOTIFY herald_events
//    and polls the head while someone waits (pg_listener.h).
//  * Everything else (reads, process state, transact) runs on a small connection pool
//    (pg_support.h), the SQL text is in pg_sql.h, row decoding in pg_rows.h, transact in
//    pg_transaction.h, stats in pg_stats.h, the schema in pg_schema.h.
// This class is the thin part: input checks (store/validation.h), then one of those.
#include "store/postgres/postgres_event_store.h"

#include <algorithm>
#include <atomic>
#include <utility>

#include "store/head_signal.h"
#include "store/postgres/pg_listener.h"
#include "store/postgres/pg_rows.h"
#include "store/postgres/pg_schema.h"
#include "store/postgres/pg_sql.h"
#include "store/postgres/pg_stats.h"
#include "store/postgres/pg_support.h"
#include "store/postgres/pg_transaction.h"
#include "store/postgres/pg_writer.h"
#include "store/validation.h"

namespace herald::detail {
namespace {

using pg::kInt64Max;
using pg::Params;
using pg::Rows;
using pg::clamp_count;
using pg::status_of;
using pg::store_closed;
namespace sql = pg::sql;

// Statements run on every connection of a store.
std::vector<std::string> session_setup(const StoreOptions& options) {
  // JIT compiles a query when its estimated cost is high, as happens on a new store whose tables
  // have no statistics yet: 100+ ms of compiling for a query that runs in one. Our queries are
  // all short index lookups, which JIT never speeds up.
  std::vector<std::string> out{"SET jit = off"};
  if (!options.durable) out.emplace_back("SET synchronous_commit = off");
  return out;
}

Status dead_letter_not_found(std::int64_t id) {
  return Status::not_found("no dead letter with id " + std::to_string(id));
}

class PostgresEventStore final : public EventStore {
 public:
  PostgresEventStore(std::string url, const StoreOptions& options, const PostgresOptions& pg_options)
      : url_(std::move(url)),
        redacted_url_(pg::redact_url(url_)),
        options_(options),
        pg_options_(pg_options),
        clock_(options.clock ? options.clock : system_clock()),
        pool_(url_, std::max(1, options.reader_connections) + 2, session_setup(options)),
        head_("postgres", [this] { listener_.wake(); }),
        writer_(url_, session_setup(options), pg_options.notify, head_),
        listener_(url_, pg_options.poll_interval, head_) {}

  ~PostgresEventStore() override { close(); }

  // Migrates the schema, reads the head and starts the writer and listener threads.
  Status start() {
    {
      auto lease = pool_.acquire();
      if (!lease) return lease.status();
      HERALD_RETURN_IF_ERROR(pg::migrate(lease->get()));
      auto head = pg::exec(lease->get(), sql::kReadHead, {}, "read head");
      if (!head) return head.status();
      head_.publish(head->i64(0, 0));
    }
    HERALD_RETURN_IF_ERROR(listener_.start());
    return writer_.start();
  }

  std::string url() const override { return redacted_url_; }

  // ---- the event log ----

  Result<AppendResult> append(std::string_view stream_id, ExpectedVersion expected,
                              std::vector<EventData> events) override {
    HERALD_RETURN_IF_ERROR(prepare_append(stream_id, expected, events, options_));
    return writer_.append(stream_id, expected, std::move(events), clock_->now());
  }

  Result<std::vector<RecordedEvent>> read_stream(std::string_view stream_id, std::int64_t from_version,
                                                 std::size_t max_count,
                                                 ReadDirection direction) override {
    HERALD_RETURN_IF_ERROR(validate_read_stream(stream_id, from_version));
    if (closed()) return store_closed();
    const std::string query =
        std::string("SELECT ") + sql::kEventColumns + sql::kStreamEventsFrom +
        (direction == ReadDirection::forwards ? sql::kStreamForwards : sql::kStreamBackwards);
    return with_conn(true, [&](PGconn* c) -> Result<std::vector<RecordedEvent>> {
      Params p;
      p.add(stream_id).add(from_version).add(clamp_count(max_count));
      auto r = pg::exec(c, query.c_str(), p, "read_stream");
      if (!r) return r.status();
      if (r->size() == 0) {
        Params q;
        q.add(stream_id);
        auto s = pg::exec(c, sql::kStreamExists, q, "read_stream");
        if (!s) return s.status();
        if (s->size() == 0) {
          return Status::not_found("stream '" + std::string(stream_id) + "' does not exist");
        }
      }
      std::vector<RecordedEvent> out;
      out.reserve(static_cast<std::size_t>(r->size()));
      for (int i = 0; i < r->size(); ++i) {
        auto e = pg::decode_event(*r, i, 0);
        if (!e) return e.status();
        out.push_back(std::move(*e));
      }
      return out;
    });
  }

  Result<AllSlice> read_all(std::int64_t from_position, std::size_t max_count,
                            const ReadFilter& filter) override {
    HERALD_RETURN_IF_ERROR(validate_read_all(from_position));
    if (closed()) return store_closed();
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
    std::string where = sql::kReadAllWindow;
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
    const std::string query = std::string(sql::kReadAllHead) + sql::kEventColumns + sql::kReadAllFrom + where +
                              sql::kReadAllTail;
    return with_conn(true, [&](PGconn* c) -> Result<AllSlice> {
      auto r = pg::exec(c, query.c_str(), p, "read_all");
      if (!r) return r.status();
      if (r->size() == 0) return Status::corruption("herald_log has no row");
      const std::int64_t end = r->i64(0, 0);  // head + 1
      head_.publish(end - 1);
      AllSlice slice;
      for (int i = 0; i < r->size(); ++i) {
        if (r->is_null(i, 1)) continue;  // the LEFT JOIN's row when nothing matched
        auto e = pg::decode_event(*r, i, 1);
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
    if (closed()) return store_closed();
    return with_conn(true, [&](PGconn* c) -> Result<std::int64_t> {
      Params p;
      p.add(stream_id);
      auto r = pg::exec(c, sql::kStreamVersion, p, "stream_version");
      if (!r) return r.status();
      return r->size() == 0 ? kNoStreamVersion : r->i64(0, 0);
    });
  }

  std::int64_t head_position() const override { return head_.head(); }

  Result<StoreStats> stats() override {
    if (closed()) return store_closed();
    return with_conn(true, [&](PGconn* c) { return stats_.collect(c); });
  }

  Status wait_for(std::int64_t after_position, std::chrono::milliseconds timeout) override {
    pg::PgListener::Waiting waiting(listener_);
    return head_.wait_for(after_position, timeout);
  }

  // ---- process state ----

  Status transact(const std::function<Status(StoreTransaction&)>& work) override {
    if (closed()) return store_closed();
    return pg::run_transaction(pool_, work);
  }

  Result<std::int64_t> load_checkpoint(std::string_view subscription) override {
    HERALD_RETURN_IF_ERROR(validate_checkpoint_name(subscription));
    if (closed()) return store_closed();
    return with_conn(true, [&](PGconn* c) -> Result<std::int64_t> {
      Params p;
      p.add(subscription);
      auto r = pg::exec(c, sql::kLoadCheckpoint, p, "load_checkpoint");
      if (!r) return r.status();
      if (r->size() == 0) {
        return Status::not_found("no checkpoint for subscription '" + std::string(subscription) + "'");
      }
      return r->i64(0, 0);
    });
  }

  Status save_checkpoint(std::string_view subscription, std::int64_t position) override {
    HERALD_RETURN_IF_ERROR(validate_checkpoint(subscription, position));
    if (closed()) return store_closed();
    return with_conn(true, [&](PGconn* c) -> Status {
      Params p;
      p.add(subscription).add(position);
      return status_of(pg::exec(c, sql::kSaveCheckpoint, p, "save_checkpoint"));
    });
  }

  Result<std::int64_t> add_dead_letter(const DeadLetter& entry) override {
    HERALD_RETURN_IF_ERROR(validate_dead_letter(entry));
    if (closed()) return store_closed();
    // Not retried on a fresh connection: had the insert committed, a retry would see its own row.
    return with_conn(false, [&](PGconn* c) -> Result<std::int64_t> {
      auto r = pg::exec(c, sql::kAddDeadLetter, pg::dead_letter_params(entry), "add_dead_letter");
      if (!r) return r.status();
      if (r->size() == 0) return pg::dead_letter_exists(entry);
      return r->i64(0, 0);
    });
  }

  Result<DeadLetter> get_dead_letter(std::int64_t id) override {
    if (closed()) return store_closed();
    return with_conn(true, [&](PGconn* c) -> Result<DeadLetter> {
      Params p;
      p.add(id);
      const std::string query =
          std::string("SELECT ") + sql::kDeadLetterColumns + sql::kDeadLettersFrom + sql::kDeadLetterById;
      auto r = pg::exec(c, query.c_str(), p, "get_dead_letter");
      if (!r) return r.status();
      if (r->size() == 0) return dead_letter_not_found(id);
      return pg::decode_dead_letter(*r, 0);
    });
  }

  Result<std::vector<DeadLetter>> list_dead_letters(std::string_view handler) override {
    if (closed()) return store_closed();
    return with_conn(true, [&](PGconn* c) -> Result<std::vector<DeadLetter>> {
      Params p;
      std::string query = std::string("SELECT ") + sql::kDeadLetterColumns + sql::kDeadLettersFrom;
      if (!handler.empty()) {
        query += sql::kDeadLettersOfHandler;
        p.add(handler);
      }
      query += sql::kDeadLettersOrder;
      auto r = pg::exec(c, query.c_str(), p, "list_dead_letters");
      if (!r) return r.status();
      std::vector<DeadLetter> out;
      out.reserve(static_cast<std::size_t>(r->size()));
      for (int i = 0; i < r->size(); ++i) out.push_back(pg::decode_dead_letter(*r, i));
      return out;
    });
  }

  Status update_dead_letter(const DeadLetter& entry) override {
    if (closed()) return store_closed();
    return with_conn(true, [&](PGconn* c) -> Status {
      Params p;
      p.add(entry.id).add(static_cast<std::int64_t>(entry.attempts)).add(entry.parked)
          .add(entry.last_error).add(to_micros(entry.last_failed_at));
      auto r = pg::exec(c, sql::kUpdateDeadLetter, p, "update_dead_letter");
      if (!r) return r.status();
      if (r->affected() == 0) return dead_letter_not_found(entry.id);
      return Status{};
    });
  }

  Status remove_dead_letter(std::int64_t id) override {
    if (closed()) return store_closed();
    return with_conn(false, [&](PGconn* c) -> Status {
      Params p;
      p.add(id);
      auto r = pg::exec(c, sql::kRemoveDeadLetter, p, "remove_dead_letter");
      if (!r) return r.status();
      if (r->affected() == 0) return dead_letter_not_found(id);
      return Status{};
    });
  }

  // By the server's clock (see kAcquireLease): instances whose clocks disagree still agree on
  // who holds a lease.
  Result<LeaseGrant> try_acquire_lease(std::string_view name, std::string_view owner,
                                       std::chrono::milliseconds ttl) override {
    HERALD_RETURN_IF_ERROR(validate_lease(name, owner, ttl));
    if (closed()) return store_closed();
    // A year at most, so that the server's "now + ttl" cannot overflow.
    constexpr std::int64_t kMaxTtlUs = std::int64_t{366} * 24 * 3600 * 1000000;
    const std::int64_t ttl_us =
        std::min<std::int64_t>(std::chrono::duration_cast<std::chrono::microseconds>(ttl).count(), kMaxTtlUs);
    return with_conn(true, [&](PGconn* c) -> Result<LeaseGrant> {
      Params p;
      p.add(name).add(owner).add(ttl_us);
      auto r = pg::exec(c, sql::kAcquireLease, p, "try_acquire_lease");
      if (!r) return r.status();
      if (r->size() != 1) return LeaseGrant{};
      return LeaseGrant{LeaseOutcome::acquired, r->i64(0, 0)};
    });
  }

  Status release_lease(std::string_view name, std::string_view owner) override {
    HERALD_RETURN_IF_ERROR(validate_lease_names(name, owner));
    if (closed()) return store_closed();
    return with_conn(true, [&](PGconn* c) -> Status {
      Params p;
      p.add(name).add(owner);
      return status_of(pg::exec(c, sql::kReleaseLease, p, "release_lease"));
    });
  }

  void close() override {
    if (closing_.exchange(true)) return;
    writer_.close();  // takes no more appends; the writer finishes what is queued, then exits
    head_.close();
    listener_.stop();
    writer_.join();
    pool_.close();
  }

 private:
  bool closed() const { return head_.closed(); }

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

  // ---- constant after construction ----
  const std::string url_;
  const std::string redacted_url_;
  const StoreOptions options_;
  const PostgresOptions pg_options_;
  const std::shared_ptr<Clock> clock_;
  std::atomic<bool> closing_{false};  // set by the first close(); later calls return at once

  // Each is thread-safe on its own. Declared in this order because the later ones refer to the
  // earlier: the writer and the listener publish on head_, whose first-waiter hook wakes the
  // listener (only once wait_for can run, i.e. after construction).
  pg::Pool pool_;
  pg::PgStats stats_;
  HeadSignal head_;
  pg::PgWriter writer_;
  pg::PgListener listener_;
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
