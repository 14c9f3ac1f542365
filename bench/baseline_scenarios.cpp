// Baselines measured in the same run as the store scenarios, so that a number like "append_1x1:
// 400 events/s" can be read against what the disk and a naive design give on the same machine:
//   fsync_rate          the disk's fsyncs per second in the scratch directory (the ceiling of one
//                       durable commit at a time);
//   naive_sqlite_1x1    a plain SQLite table, one INSERT per transaction, no group commit;
//   naive_postgres_1x1  the same on PostgreSQL via raw libpq (only with --store postgres://…);
//   naive_postgres_batch_100  the same table, one 100-row INSERT per transaction (PostgreSQL's
//                       own cost of durable batches, next to append_batch_100);
//   std_function_loop   3 no-op std::function handlers called in a loop (the cost floor of
//                       in-process dispatch, next to dispatch_memory).
#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <system_error>

#include "bench.h"
#include "herald/id.h"

#ifdef HERALD_BENCH_WITH_POSTGRES
#include <libpq-fe.h>
#endif

namespace herald::bench {
namespace {

std::chrono::steady_clock::duration as_duration(double seconds) {
  return std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(seconds));
}

Status errno_status(const std::string& what) {
  return Status::unavailable(what + ": " + std::error_code(errno, std::generic_category()).message());
}

// Writes 4 KiB then fdatasync()s, for `seconds`. `append` grows the file each time (like a fresh
// WAL, which also makes the file system commit the new size); otherwise one block is rewritten
// (like a WAL being reused after a checkpoint).
struct SyncRun {
  std::int64_t syncs = 0;
  double seconds = 0;
  std::vector<std::int64_t> lat;
};
Result<SyncRun> sync_loop(const std::filesystem::path& file, bool append, double seconds) {
  int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return errno_status("open " + file.string());
  std::vector<char> block(4096, 'h');
  SyncRun run;
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + as_duration(seconds);
  Status st;
  off_t offset = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    const std::int64_t t0 = now_ns();
    if (::pwrite(fd, block.data(), block.size(), offset) != static_cast<ssize_t>(block.size())) {
      st = errno_status("pwrite");
      break;
    }
    if (::fdatasync(fd) != 0) {
      st = errno_status("fdatasync");
      break;
    }
    run.lat.push_back(now_ns() - t0);
    ++run.syncs;
    if (append) offset += static_cast<off_t>(block.size());
  }
  run.seconds = seconds_between(start, std::chrono::steady_clock::now());
  ::close(fd);
  if (!st) return st;
  return run;
}

Result<Json> run_fsync_rate(const Options& opt) {
  auto dir = TempDir::create(scratch_base(opt));
  if (!dir) return dir.status();
  const double phase = std::max(0.5, opt.seconds / 2);
  auto grow = sync_loop((*dir)->path() / "fsync-append.bin", true, phase);
  if (!grow) return grow.status();
  auto overwrite = sync_loop((*dir)->path() / "fsync-overwrite.bin", false, phase);
  if (!overwrite) return overwrite.status();

  Json out = base_result("fsync_rate", StoreKind::sqlite, grow->syncs, grow->seconds);
  out["store"] = "disk";
  out["fsyncs_per_s"] = out["events_per_s"];
  out["method"] = "pwrite 4 KiB appending + fdatasync";
  out["overwrite_fsyncs_per_s"] =
      round_to(static_cast<double>(overwrite->syncs) / overwrite->seconds, 1);
  out["directory"] = scratch_base(opt).string();
  put_latency(out, summarize(grow->lat));
  out["latency_of"] = "one write + fdatasync";
  return out;
}

// ---- naive SQLite ----

class Sqlite {
 public:
  ~Sqlite() {
    if (insert_ != nullptr) sqlite3_finalize(insert_);
    if (db_ != nullptr) sqlite3_close(db_);
  }
  Status open(const std::string& path) {
    if (sqlite3_open(path.c_str(), &db_) != SQLITE_OK) return error("open");
    return Status::ok();
  }
  Status exec(const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
      std::string msg = err != nullptr ? err : "?";
      sqlite3_free(err);
      return Status::unavailable(std::string(sql) + ": " + msg);
    }
    return Status::ok();
  }
  Status prepare_insert() {
    const char* sql =
        "INSERT INTO events(stream_id, version, id, type, payload, recorded_at) "
        "VALUES(?1, ?2, ?3, ?4, ?5, ?6)";
    if (sqlite3_prepare_v2(db_, sql, -1, &insert_, nullptr) != SQLITE_OK) return error("prepare");
    return Status::ok();
  }
  // One INSERT in autocommit mode: its own transaction and its own WAL fsync.
  Status insert(const std::string& stream, std::int64_t version, const std::string& id,
                const std::string& payload, std::int64_t recorded_at_us) {
    sqlite3_reset(insert_);
    sqlite3_bind_text(insert_, 1, stream.data(), static_cast<int>(stream.size()), SQLITE_STATIC);
    sqlite3_bind_int64(insert_, 2, version);
    sqlite3_bind_text(insert_, 3, id.data(), static_cast<int>(id.size()), SQLITE_STATIC);
    sqlite3_bind_text(insert_, 4, "BenchEvent", -1, SQLITE_STATIC);
    sqlite3_bind_text(insert_, 5, payload.data(), static_cast<int>(payload.size()), SQLITE_STATIC);
    sqlite3_bind_int64(insert_, 6, recorded_at_us);
    if (sqlite3_step(insert_) != SQLITE_DONE) return error("insert");
    return Status::ok();
  }

 private:
  Status error(const char* what) {
    return Status::unavailable(std::string("sqlite ") + what + ": " +
                               (db_ != nullptr ? sqlite3_errmsg(db_) : "out of memory"));
  }
  sqlite3* db_ = nullptr;
  sqlite3_stmt* insert_ = nullptr;
};

Result<Json> run_naive_sqlite(const Options& opt) {
  auto dir = TempDir::create(scratch_base(opt));
  if (!dir) return dir.status();
  std::vector<std::int64_t> lat;
  std::int64_t n = 0;
  double secs = 0;
  {
    Sqlite db;  // closed before the directory is removed
    HERALD_RETURN_IF_ERROR(db.open(((*dir)->path() / "naive.db").string()));
    HERALD_RETURN_IF_ERROR(db.exec("PRAGMA journal_mode=WAL"));
    HERALD_RETURN_IF_ERROR(db.exec("PRAGMA synchronous=FULL"));
    HERALD_RETURN_IF_ERROR(db.exec(
        "CREATE TABLE events(position INTEGER PRIMARY KEY, stream_id TEXT NOT NULL, "
        "version INTEGER NOT NULL, id TEXT NOT NULL UNIQUE, type TEXT NOT NULL, "
        "payload TEXT NOT NULL, recorded_at INTEGER NOT NULL, UNIQUE(stream_id, version))"));
    HERALD_RETURN_IF_ERROR(db.prepare_insert());
    const std::int64_t cap = opt.events > 0 ? opt.events : 1'000'000;
    const std::string stream = "bench-0";
    const auto start = std::chrono::steady_clock::now();
    const auto deadline = start + as_duration(opt.seconds);
    while (n < cap && std::chrono::steady_clock::now() < deadline) {
      const std::string id = new_uuid_v7();
      const std::string payload = make_payload(n);
      const std::int64_t t0 = now_ns();
      HERALD_RETURN_IF_ERROR(db.insert(stream, n, id, payload, t0 / 1000));
      lat.push_back(now_ns() - t0);
      ++n;
    }
    secs = seconds_between(start, std::chrono::steady_clock::now());
  }
  Json out = base_result("naive_sqlite_1x1", StoreKind::sqlite, n, secs);
  out["writers"] = 1;
  out["batch"] = 1;
  out["pragmas"] = "journal_mode=WAL, synchronous=FULL";
  put_latency(out, summarize(lat));
  out["latency_of"] = "one INSERT transaction";
  return out;
}

// ---- naive PostgreSQL ----

#ifdef HERALD_BENCH_WITH_POSTGRES
// One element of a PostgreSQL array literal: quoted, with " and \ escaped.
void append_array_element(std::string& out, std::string_view value) {
  out += '"';
  for (char c : value) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
}
#endif

// A plain events table (the same three unique indexes as the stores: position, id, stream +
// version) written by one client, `batch` rows per transaction: one INSERT of one row, or one
// INSERT … SELECT FROM unnest(arrays) of `batch` rows. What PostgreSQL itself does with the same
// durability, next to append_1x1 and append_batch_<batch>.
Result<Json> run_naive_postgres(const Options& opt, const std::string& name, int batch) {
#ifdef HERALD_BENCH_WITH_POSTGRES
  if (opt.kind != StoreKind::postgres) {
    Json skipped;
    skipped["scenario"] = name;
    skipped["skipped"] = "needs --store postgres://";
    return skipped;
  }
  auto fresh = FreshPgDatabase::create(opt.store_url);
  if (!fresh) return fresh.status();
  std::vector<std::int64_t> lat;
  std::int64_t n = 0;
  double secs = 0;
  {
    PGconn* conn = PQconnectdb((*fresh)->url().c_str());
    // Owns conn; PQfinish before the database is dropped.
    std::unique_ptr<PGconn, void (*)(PGconn*)> guard(conn, PQfinish);
    if (PQstatus(conn) != CONNECTION_OK) {
      return Status::unavailable(std::string("cannot connect: ") + PQerrorMessage(conn));
    }
    auto run = [&](const char* sql) -> Status {
      PGresult* res = PQexec(conn, sql);
      bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
      PQclear(res);
      if (!ok) return Status::unavailable(std::string(sql) + ": " + PQerrorMessage(conn));
      return Status::ok();
    };
    HERALD_RETURN_IF_ERROR(run(
        "CREATE TABLE events(position BIGSERIAL PRIMARY KEY, stream_id TEXT NOT NULL, "
        "version BIGINT NOT NULL, id UUID NOT NULL UNIQUE, type TEXT NOT NULL, "
        "payload JSONB NOT NULL, recorded_at TIMESTAMPTZ NOT NULL DEFAULT now(), "
        "UNIQUE(stream_id, version))"));
    const char* insert = batch == 1
        ? "INSERT INTO events(stream_id, version, id, type, payload) "
          "VALUES($1, $2, $3, 'BenchEvent', $4)"
        : "INSERT INTO events(stream_id, version, id, type, payload) "
          "SELECT $1, u.v, u.id, 'BenchEvent', u.p "
          "FROM unnest($2::bigint[], $3::uuid[], $4::jsonb[]) AS u(v, id, p)";
    PGresult* prep = PQprepare(conn, "ins", insert, 4, nullptr);
    bool prep_ok = PQresultStatus(prep) == PGRES_COMMAND_OK;
    PQclear(prep);
    if (!prep_ok) return Status::unavailable(std::string("prepare: ") + PQerrorMessage(conn));

    const std::int64_t cap = opt.events > 0 ? opt.events : 1'000'000;
    const auto start = std::chrono::steady_clock::now();
    const auto deadline = start + as_duration(opt.seconds);
    std::string versions, ids, payloads;
    while (n < cap && std::chrono::steady_clock::now() < deadline) {
      if (batch == 1) {
        versions = std::to_string(n);
        ids = new_uuid_v7();
        payloads = make_payload(n);
      } else {
        versions = ids = payloads = "{";
        for (int i = 0; i < batch; ++i) {
          const char* sep = i == 0 ? "" : ",";
          versions += sep + std::to_string(n + i);
          ids += sep + new_uuid_v7();
          payloads += sep;
          append_array_element(payloads, make_payload(n + i));
        }
        versions += '}';
        ids += '}';
        payloads += '}';
      }
      const char* params[4] = {"bench-0", versions.c_str(), ids.c_str(), payloads.c_str()};
      const std::int64_t t0 = now_ns();
      PGresult* res = PQexecPrepared(conn, "ins", 4, params, nullptr, nullptr, 0);
      bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
      PQclear(res);
      if (!ok) return Status::unavailable(std::string("insert: ") + PQerrorMessage(conn));
      lat.push_back(now_ns() - t0);
      n += batch;
    }
    secs = seconds_between(start, std::chrono::steady_clock::now());
  }
  Json out = base_result(name, StoreKind::postgres, n, secs);
  out["writers"] = 1;
  out["batch"] = batch;
  put_latency(out, summarize(lat));
  out["latency_of"] = batch == 1 ? "one INSERT transaction" : "one INSERT transaction of `batch` rows";
  return out;
#else
  (void)batch;
  Json skipped;
  skipped["scenario"] = name;
  skipped["skipped"] = opt.kind == StoreKind::postgres ? "built without PostgreSQL support"
                                                       : "needs --store postgres://";
  return skipped;
#endif
}

// ---- in-process dispatch floor ----

Result<Json> run_std_function_loop(const Options& opt) {
  const std::int64_t n = opt.events > 0 ? opt.events : kDispatchDefaultEvents;
  std::vector<RecordedEvent> events(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) {
    auto& e = events[static_cast<std::size_t>(i)];
    e.stream_id = "bench-" + std::to_string(i % 100);
    e.version = i / 100;
    e.position = i;
    e.id = new_uuid_v7();
    e.type = "BenchEvent";
    e.payload = make_payload(i);
  }
  // Each "no-op" handler adds the position to its own sink so the calls cannot be dropped; the
  // bus handlers of dispatch_memory do the same amount of work (they count).
  std::int64_t sinks[3] = {0, 0, 0};
  std::vector<std::function<void(const RecordedEvent&)>> handlers;
  for (auto& sink : sinks) handlers.emplace_back([&sink](const RecordedEvent& e) { sink += e.position; });

  // Repeat the loop until at least 0.25 s have passed so the clock's resolution does not matter.
  std::int64_t loops = 0;
  const auto start = std::chrono::steady_clock::now();
  double secs = 0;
  do {
    for (const auto& e : events) {
      for (const auto& h : handlers) h(e);
    }
    ++loops;
    secs = seconds_between(start, std::chrono::steady_clock::now());
  } while (secs < 0.25);
  const std::int64_t expected = loops * (n * (n - 1) / 2);
  for (auto s : sinks) {
    if (s != expected) return Status::internal("std_function_loop: a handler missed events");
  }
  const std::int64_t total = loops * n;
  Json out = base_result("std_function_loop", StoreKind::memory, total, secs);
  out["store"] = "none";
  out["handlers"] = handlers.size();
  out["distinct_events"] = n;
  out["ns_per_event_per_handler"] =
      round_to(secs * 1e9 / static_cast<double>(total) / static_cast<double>(handlers.size()), 2);
  return out;
}

}  // namespace

void register_baseline_scenarios(Registry& r) {
  r.add({"fsync_rate", "the disk's fsyncs/s in the scratch directory (4 KiB write + fdatasync)",
         run_fsync_rate});
  r.add({"naive_sqlite_1x1", "plain SQLite table (WAL, synchronous=FULL), 1 INSERT per transaction",
         run_naive_sqlite});
  r.add({"naive_postgres_1x1", "plain PostgreSQL table via libpq, 1 INSERT per transaction",
         [](const Options& o) { return run_naive_postgres(o, "naive_postgres_1x1", 1); }});
  r.add({"naive_postgres_batch_100",
         "plain PostgreSQL table via libpq, one 100-row INSERT per transaction",
         [](const Options& o) { return run_naive_postgres(o, "naive_postgres_batch_100", 100); }});
}

void register_dispatch_baseline(Registry& r) {
  r.add({"std_function_loop", "3 no-op std::function handlers called over pre-built events",
         run_std_function_loop});
}

}  // namespace herald::bench
