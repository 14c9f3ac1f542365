// Behaviour specific to the SQLite backend, beyond the shared contract suite: group commit,
// schema versioning, refusing files that are not ours, reopening across the disk/cache boundary,
// and poisoning after a failed commit (through a fault-injecting SQLite VFS).
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <signal.h>
#include <stdlib.h>  // mkdtemp
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "herald/event_store.h"
#include "herald/id.h"
#include "store/sqlite/sqlite_connection.h"
#include "store/sqlite/sqlite_event_store.h"
#include "store/sqlite/sqlite_schema.h"

namespace herald {
namespace {

using namespace std::chrono_literals;
using detail::SqliteTuning;

// ---- a VFS that wraps the default one and can fail fsyncs of the WAL on demand ----

std::atomic<bool> g_fail_wal_sync{false};
std::atomic<int> g_failed_syncs{0};

struct FaultyFile {
  sqlite3_file base;   // must be first: SQLite sees this
  sqlite3_file* real;  // the default VFS's file, stored right after this struct
  bool is_wal;
};

sqlite3_vfs* real_vfs() { return sqlite3_vfs_find(nullptr); }
sqlite3_file* real_of(sqlite3_file* f) { return reinterpret_cast<FaultyFile*>(f)->real; }

int f_close(sqlite3_file* f) {
  sqlite3_file* r = real_of(f);
  return r->pMethods != nullptr ? r->pMethods->xClose(r) : SQLITE_OK;
}
int f_read(sqlite3_file* f, void* b, int n, sqlite3_int64 o) {
  return real_of(f)->pMethods->xRead(real_of(f), b, n, o);
}
int f_write(sqlite3_file* f, const void* b, int n, sqlite3_int64 o) {
  return real_of(f)->pMethods->xWrite(real_of(f), b, n, o);
}
int f_truncate(sqlite3_file* f, sqlite3_int64 s) { return real_of(f)->pMethods->xTruncate(real_of(f), s); }
int f_sync(sqlite3_file* f, int flags) {
  if (reinterpret_cast<FaultyFile*>(f)->is_wal && g_fail_wal_sync.load()) {
    g_failed_syncs.fetch_add(1);
    return SQLITE_IOERR_FSYNC;
  }
  return real_of(f)->pMethods->xSync(real_of(f), flags);
}
int f_size(sqlite3_file* f, sqlite3_int64* s) { return real_of(f)->pMethods->xFileSize(real_of(f), s); }
int f_lock(sqlite3_file* f, int l) { return real_of(f)->pMethods->xLock(real_of(f), l); }
int f_unlock(sqlite3_file* f, int l) { return real_of(f)->pMethods->xUnlock(real_of(f), l); }
int f_check(sqlite3_file* f, int* out) {
  return real_of(f)->pMethods->xCheckReservedLock(real_of(f), out);
}
int f_control(sqlite3_file* f, int op, void* arg) {
  return real_of(f)->pMethods->xFileControl(real_of(f), op, arg);
}
int f_sector(sqlite3_file* f) { return real_of(f)->pMethods->xSectorSize(real_of(f)); }
int f_device(sqlite3_file* f) { return real_of(f)->pMethods->xDeviceCharacteristics(real_of(f)); }
int f_shm_map(sqlite3_file* f, int pg, int sz, int ext, void volatile** p) {
  return real_of(f)->pMethods->xShmMap(real_of(f), pg, sz, ext, p);
}
int f_shm_lock(sqlite3_file* f, int off, int n, int flags) {
  return real_of(f)->pMethods->xShmLock(real_of(f), off, n, flags);
}
void f_shm_barrier(sqlite3_file* f) { real_of(f)->pMethods->xShmBarrier(real_of(f)); }
int f_shm_unmap(sqlite3_file* f, int del) { return real_of(f)->pMethods->xShmUnmap(real_of(f), del); }
int f_fetch(sqlite3_file* f, sqlite3_int64 o, int n, void** p) {
  return real_of(f)->pMethods->xFetch(real_of(f), o, n, p);
}
int f_unfetch(sqlite3_file* f, sqlite3_int64 o, void* p) {
  return real_of(f)->pMethods->xUnfetch(real_of(f), o, p);
}

const sqlite3_io_methods kFaultyMethods = {
    3,          f_close,   f_read,       f_write,         f_truncate,  f_sync,
    f_size,     f_lock,    f_unlock,     f_check,         f_control,   f_sector,
    f_device,   f_shm_map, f_shm_lock,   f_shm_barrier,   f_shm_unmap, f_fetch,
    f_unfetch,
};

int v_open(sqlite3_vfs*, sqlite3_filename name, sqlite3_file* f, int flags, int* out_flags) {
  auto* ff = reinterpret_cast<FaultyFile*>(f);
  ff->real = reinterpret_cast<sqlite3_file*>(ff + 1);
  ff->is_wal = (flags & SQLITE_OPEN_WAL) != 0;
  int rc = real_vfs()->xOpen(real_vfs(), name, ff->real, flags, out_flags);
  // On failure SQLite does not call xClose, but the real file's methods may be set; keep ours
  // unset so nothing is forwarded to a half-open file.
  ff->base.pMethods = rc == SQLITE_OK ? &kFaultyMethods : nullptr;
  return rc;
}
int v_delete(sqlite3_vfs*, const char* n, int s) { return real_vfs()->xDelete(real_vfs(), n, s); }
int v_access(sqlite3_vfs*, const char* n, int f, int* o) { return real_vfs()->xAccess(real_vfs(), n, f, o); }
int v_full(sqlite3_vfs*, const char* n, int sz, char* o) {
  return real_vfs()->xFullPathname(real_vfs(), n, sz, o);
}
void* v_dlopen(sqlite3_vfs*, const char* n) { return real_vfs()->xDlOpen(real_vfs(), n); }
void v_dlerror(sqlite3_vfs*, int n, char* m) { real_vfs()->xDlError(real_vfs(), n, m); }
void (*v_dlsym(sqlite3_vfs*, void* h, const char* s))(void) { return real_vfs()->xDlSym(real_vfs(), h, s); }
void v_dlclose(sqlite3_vfs*, void* h) { real_vfs()->xDlClose(real_vfs(), h); }
int v_random(sqlite3_vfs*, int n, char* o) { return real_vfs()->xRandomness(real_vfs(), n, o); }
int v_sleep(sqlite3_vfs*, int us) { return real_vfs()->xSleep(real_vfs(), us); }
int v_time(sqlite3_vfs*, double* t) { return real_vfs()->xCurrentTime(real_vfs(), t); }
int v_lasterr(sqlite3_vfs*, int n, char* m) { return real_vfs()->xGetLastError(real_vfs(), n, m); }
int v_time64(sqlite3_vfs*, sqlite3_int64* t) { return real_vfs()->xCurrentTimeInt64(real_vfs(), t); }

constexpr const char* kFaultyVfs = "herald-faulty";

void register_faulty_vfs() {
  static sqlite3_vfs vfs = [] {
    sqlite3_vfs v{};
    v.iVersion = 2;
    v.szOsFile = static_cast<int>(sizeof(FaultyFile)) + real_vfs()->szOsFile;
    v.mxPathname = real_vfs()->mxPathname;
    v.zName = kFaultyVfs;
    v.xOpen = v_open;
    v.xDelete = v_delete;
    v.xAccess = v_access;
    v.xFullPathname = v_full;
    v.xDlOpen = v_dlopen;
    v.xDlError = v_dlerror;
    v.xDlSym = v_dlsym;
    v.xDlClose = v_dlclose;
    v.xRandomness = v_random;
    v.xSleep = v_sleep;
    v.xCurrentTime = v_time;
    v.xGetLastError = v_lasterr;
    v.xCurrentTimeInt64 = v_time64;
    return v;
  }();
  static const int rc = sqlite3_vfs_register(&vfs, /*makeDflt=*/0);
  ASSERT_EQ(rc, SQLITE_OK);
}

// ---- helpers ----

EventData event(std::string type = "Thing", std::string payload = "{}") {
  EventData e;
  e.id = new_uuid_v7();
  e.type = std::move(type);
  e.payload = std::move(payload);
  return e;
}

std::vector<EventData> events(int n, const std::string& type = "Thing") {
  std::vector<EventData> out;
  for (int i = 0; i < n; ++i) out.push_back(event(type, "{\"i\":" + std::to_string(i) + "}"));
  return out;
}

// Every event from position 0, paging with `page`; checks each page is contiguous.
std::vector<RecordedEvent> read_everything(EventStore& store, std::size_t page) {
  std::vector<RecordedEvent> out;
  std::int64_t from = 0;
  for (int guard = 0; guard < 100'000; ++guard) {
    auto slice = store.read_all(from, page);
    EXPECT_TRUE(slice) << slice.status().to_string();
    if (!slice) return out;
    for (auto& e : slice->events) {
      EXPECT_EQ(e.position, static_cast<std::int64_t>(out.size())) << "gap or duplicate";
      out.push_back(std::move(e));
    }
    if (slice->end_of_log) return out;
    EXPECT_GT(slice->next_position, from);
    from = slice->next_position;
  }
  ADD_FAILURE() << "paging never reached end_of_log";
  return out;
}

class SqliteStore : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "herald-sqlite-test-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    path_ = (dir_ / "events.db").string();
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  Result<std::unique_ptr<EventStore>> open(const StoreOptions& options = {},
                                           const SqliteTuning& tuning = {}) {
    return detail::open_sqlite_store("sqlite://" + path_, path_, options, tuning);
  }
  std::unique_ptr<EventStore> must_open(const StoreOptions& options = {},
                                        const SqliteTuning& tuning = {}) {
    auto s = open(options, tuning);
    EXPECT_TRUE(s) << s.status().to_string();
    return s ? std::move(*s) : nullptr;
  }

  // Runs `sql` on the database file directly, outside any store.
  void raw_exec(const std::string& sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    char* err = nullptr;
    int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
    std::string msg = err != nullptr ? err : "";
    sqlite3_free(err);
    sqlite3_close(db);
    ASSERT_EQ(rc, SQLITE_OK) << msg;
  }

  std::filesystem::path dir_;
  std::string path_;
};

// ---- group commit ----

TEST_F(SqliteStore, QueuedAppendsCommitAsOneGroupAndAFailingOneDoesNotSinkTheOthers) {
  auto store = must_open();
  ASSERT_TRUE(store);
  const auto taken = events(1);
  ASSERT_TRUE(store->append("taken-1", ExpectedVersion::any(), taken));  // position 0

  // Hold the writer inside a transaction so that every append below queues behind it.
  std::mutex mu;
  std::condition_variable cv;
  bool entered = false;
  bool release = false;
  std::thread holder([&] {
    Status s = store->transact([&](StoreTransaction&) {
      std::unique_lock lk(mu);
      entered = true;
      cv.notify_all();
      cv.wait(lk, [&] { return release; });
      return Status::ok();
    });
    EXPECT_TRUE(s) << s.to_string();
  });
  {
    std::unique_lock lk(mu);
    cv.wait(lk, [&] { return entered; });
  }

  // Kinds of append, by index % 4: 0 and 2 succeed; 1 conflicts on its expected version; 3 writes
  // one new event and then hits an id stored elsewhere, so its savepoint must undo the first.
  constexpr int kAppends = 24;
  std::vector<Result<AppendResult>> results(kAppends, Status::internal("not run"));
  std::vector<std::vector<EventData>> batches(kAppends);
  std::vector<std::thread> writers;
  for (int i = 0; i < kAppends; ++i) {
    batches[i] = events(i % 4 == 3 ? 2 : 1 + i % 3);
    if (i % 4 == 3) batches[i][1].id = taken[0].id;
    writers.emplace_back([&, i] {
      const ExpectedVersion expected =
          i % 4 == 1 ? ExpectedVersion::exact(5) : ExpectedVersion::no_stream();
      results[i] = store->append("g-" + std::to_string(i), expected, batches[i]);
    });
  }
  // Wait until all are queued (a generous bound only turns a hang into a failure).
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  bool all_queued = false;
  while (!all_queued && std::chrono::steady_clock::now() < deadline) {
    auto c = detail::sqlite_counters(*store);
    all_queued = c && c->queued_writes == kAppends;
    if (!all_queued) std::this_thread::sleep_for(1ms);
  }
  EXPECT_TRUE(all_queued) << "the appends never queued behind the held transaction";
  const std::int64_t commits_before = detail::sqlite_counters(*store)->commits;
  {
    std::lock_guard lk(mu);
    release = true;
  }
  cv.notify_all();
  holder.join();
  for (auto& t : writers) t.join();

  // The held transaction's group, then ONE group for all queued appends.
  EXPECT_EQ(detail::sqlite_counters(*store)->commits, commits_before + 2);

  std::set<std::int64_t> written;
  std::int64_t expected_events = 1;
  for (int i = 0; i < kAppends; ++i) {
    SCOPED_TRACE("append " + std::to_string(i));
    if (i % 4 == 1) {
      ASSERT_FALSE(results[i]);
      EXPECT_EQ(results[i].status().code(), StatusCode::wrong_expected_version);
      EXPECT_EQ(results[i].status().actual_version(), kNoStreamVersion);
    } else if (i % 4 == 3) {
      ASSERT_FALSE(results[i]);
      EXPECT_EQ(results[i].status().code(), StatusCode::already_exists);
    } else {
      ASSERT_TRUE(results[i]) << results[i].status().to_string();
      const AppendResult& r = *results[i];
      EXPECT_EQ(r.last_position - r.first_position + 1, static_cast<std::int64_t>(batches[i].size()));
      EXPECT_EQ(r.stream_version, static_cast<std::int64_t>(batches[i].size()) - 1);
      for (auto p = r.first_position; p <= r.last_position; ++p) EXPECT_TRUE(written.insert(p).second);
      expected_events += static_cast<std::int64_t>(batches[i].size());
    }
  }
  // Positions of the successful appends fill 1..head without a gap.
  ASSERT_FALSE(written.empty());
  EXPECT_EQ(*written.begin(), 1);
  EXPECT_EQ(*written.rbegin(), expected_events - 1);
  EXPECT_EQ(static_cast<std::int64_t>(written.size()), expected_events - 1);
  EXPECT_EQ(store->head_position(), expected_events - 1);

  const auto all = read_everything(*store, 7);
  ASSERT_EQ(static_cast<std::int64_t>(all.size()), expected_events);
  for (int i = 3; i < kAppends; i += 4) {
    // The failed append's first (new) event was rolled back with its savepoint.
    for (const auto& e : all) EXPECT_NE(e.id, batches[i][0].id);
    auto r = store->read_stream("g-" + std::to_string(i), 0, 10, ReadDirection::forwards);
    EXPECT_EQ(r.status().code(), StatusCode::not_found);
  }
  for (int i = 0; i < kAppends; i += 2) {
    auto r = store->read_stream("g-" + std::to_string(i), 0, 10, ReadDirection::forwards);
    ASSERT_TRUE(r) << r.status().to_string();
    ASSERT_EQ(r->size(), batches[i].size());
    for (std::size_t k = 0; k < r->size(); ++k) {
      EXPECT_EQ((*r)[k].id, batches[i][k].id);
      EXPECT_EQ((*r)[k].position, results[i]->first_position + static_cast<std::int64_t>(k));
    }
  }
}

TEST_F(SqliteStore, LargeAppendsAreAllOrNothingAndRetriable) {
  auto store = must_open();
  ASSERT_TRUE(store);
  const auto taken = events(1);
  ASSERT_TRUE(store->append("taken-1", ExpectedVersion::any(), taken));

  // Large appends are inserted many rows per statement; a taken id deep inside one fails it all.
  auto big = events(100);
  big[69].id = taken[0].id;
  auto failed = store->append("big-1", ExpectedVersion::no_stream(), big);
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.status().code(), StatusCode::already_exists);
  EXPECT_NE(failed.status().message().find(taken[0].id), std::string::npos)
      << failed.status().to_string();
  EXPECT_EQ(store->head_position(), 0);
  EXPECT_EQ(store->read_stream("big-1", 0, 1000, ReadDirection::forwards).status().code(),
            StatusCode::not_found);

  big[69].id = new_uuid_v7();
  auto ok = store->append("big-1", ExpectedVersion::no_stream(), big);
  ASSERT_TRUE(ok) << ok.status().to_string();
  EXPECT_EQ(*ok, (AppendResult{1, 100, 99}));
  auto retry = store->append("big-1", ExpectedVersion::no_stream(), big);
  ASSERT_TRUE(retry) << retry.status().to_string();
  EXPECT_EQ(*retry, *ok);
  auto back = store->read_stream("big-1", 0, 1000, ReadDirection::forwards);
  ASSERT_TRUE(back);
  ASSERT_EQ(back->size(), 100u);
  for (std::size_t i = 0; i < back->size(); ++i) {
    EXPECT_EQ((*back)[i].id, big[i].id);
    EXPECT_EQ((*back)[i].payload, big[i].payload);
    EXPECT_EQ((*back)[i].version, static_cast<std::int64_t>(i));
    EXPECT_EQ((*back)[i].position, static_cast<std::int64_t>(i) + 1);
  }
  EXPECT_EQ(store->head_position(), 100);
}

TEST_F(SqliteStore, TransactCallbackWritingThroughTheStoreFailsInsteadOfDeadlocking) {
  auto store = must_open();
  ASSERT_TRUE(store);
  Status inner;
  Status outer = store->transact([&](StoreTransaction& tx) {
    HERALD_RETURN_IF_ERROR(tx.put_document("docs", "a", "{}"));
    inner = store->append("nested-1", ExpectedVersion::any(), events(1)).status();
    return inner;
  });
  EXPECT_EQ(inner.code(), StatusCode::failed_precondition) << inner.to_string();
  EXPECT_EQ(outer.code(), StatusCode::failed_precondition);
  EXPECT_EQ(store->head_position(), -1);
  // The document written before the failure was rolled back with the rest.
  ASSERT_TRUE(store->transact([](StoreTransaction& tx) {
    EXPECT_EQ(tx.get_document("docs", "a").status().code(), StatusCode::not_found);
    return Status::ok();
  }));
  // Reads from inside a callback are fine: they use the reader connections.
  ASSERT_TRUE(store->append("plain-1", ExpectedVersion::any(), events(2)));
  ASSERT_TRUE(store->transact([&](StoreTransaction&) {
    auto v = store->stream_version("plain-1");
    EXPECT_TRUE(v);
    if (v) {
      EXPECT_EQ(*v, 1);
    }
    return Status::ok();
  }));
}

// ---- opening ----

TEST_F(SqliteStore, DurableIsSynchronousFullAndNonDurableIsNormal) {
  {
    auto store = must_open();
    ASSERT_TRUE(store);
    EXPECT_EQ(detail::sqlite_counters(*store)->synchronous, 2);
  }
  StoreOptions fast;
  fast.durable = false;
  auto store = must_open(fast);
  ASSERT_TRUE(store);
  EXPECT_EQ(detail::sqlite_counters(*store)->synchronous, 1);
  ASSERT_TRUE(store->append("s-1", ExpectedVersion::no_stream(), events(1)));
}

TEST_F(SqliteStore, CreatesMissingDirectories) {
  path_ = (dir_ / "a" / "b" / "events.db").string();
  auto store = open_store("sqlite://" + path_);
  ASSERT_TRUE(store) << store.status().to_string();
  ASSERT_TRUE((*store)->append("s-1", ExpectedVersion::no_stream(), events(1)));
  EXPECT_TRUE(std::filesystem::exists(path_));
}

TEST_F(SqliteStore, SchemaNewerThanThisBuildIsRefusedAsCorruption) {
  {
    auto store = must_open();
    ASSERT_TRUE(store);
    ASSERT_TRUE(store->append("s-1", ExpectedVersion::no_stream(), events(1)));
  }
  raw_exec("PRAGMA user_version = " + std::to_string(detail::sqlite::kSchemaVersion + 1));
  auto again = open();
  ASSERT_FALSE(again);
  EXPECT_EQ(again.status().code(), StatusCode::corruption) << again.status().to_string();

  // Through the public entry point too.
  auto via_url = open_store("sqlite://" + path_);
  ASSERT_FALSE(via_url);
  EXPECT_EQ(via_url.status().code(), StatusCode::corruption);
}

// A store written by schema version 1 (event ids as text), as the previous release left it,
// opens under this build: migration 2 stores canonical UUIDs as 16 bytes, keeps any other id as
// text, and every id, idempotent retry and duplicate check works as before.
TEST_F(SqliteStore, SchemaVersionOneStoreMigratesAndKeepsEveryId) {
  {
    auto conn = detail::sqlite::Connection::open(path_, /*create=*/true);
    ASSERT_TRUE(conn) << conn.status().to_string();
    ASSERT_TRUE(detail::sqlite::migrate(*conn, 1));
  }
  const std::string lower = "0190f3a0-1b2c-7d4e-8f60-7a8b9c0d1e2f";
  const std::string upper = "0190F3A0-1B2C-7D4E-8F60-7A8B9C0D1E30";  // not canonical: stays text
  // Rows as the version-1 writer wrote them: one append of two events and one of one.
  raw_exec("INSERT INTO events(position, stream_id, version, event_id, type, payload, recorded_at, batch_last) VALUES "
           "(0, 'order-1', 0, '" + lower + "', 'OrderCreated', '{}', 1, 1),"
           "(1, 'order-1', 1, '" + upper + "', 'OrderPaid', '{}', 1, NULL),"
           "(2, 'order-2', 0, '0190f3a0-1b2c-7d4e-8f60-7a8b9c0d1e31', 'OrderCreated', '{}', 2, 2);"
           "INSERT INTO streams VALUES ('order-1', 1), ('order-2', 0);"
           "INSERT INTO event_type_counts VALUES ('OrderCreated', 2), ('OrderPaid', 1);");

  auto store = must_open();
  ASSERT_TRUE(store);
  auto all = store->read_all(0, 10);
  ASSERT_TRUE(all) << all.status().to_string();
  ASSERT_EQ(all->events.size(), 3u);
  EXPECT_EQ(all->events[0].id, lower);
  EXPECT_EQ(all->events[1].id, upper) << "an id that is not a canonical UUID reads back as written";
  EXPECT_EQ(all->events[2].id, "0190f3a0-1b2c-7d4e-8f60-7a8b9c0d1e31");

  // The retry of the migrated first append returns its result and writes nothing.
  EventData a;
  a.id = lower;
  a.type = "OrderCreated";
  a.payload = "{}";
  EventData b = a;
  b.id = upper;
  b.type = "OrderPaid";
  auto retry = store->append("order-1", ExpectedVersion::no_stream(), {a, b});
  ASSERT_TRUE(retry) << retry.status().to_string();
  EXPECT_EQ(retry->first_position, 0);
  EXPECT_EQ(retry->last_position, 1);
  // A migrated id cannot be reused elsewhere.
  auto reused = store->append("order-3", ExpectedVersion::no_stream(), {a});
  EXPECT_EQ(reused.status().code(), StatusCode::already_exists) << reused.status().to_string();
  EXPECT_EQ(store->head_position(), 2);

  // New appends store 16 bytes per canonical id.
  ASSERT_TRUE(store->append("order-3", ExpectedVersion::no_stream(), events(2)));
  store.reset();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* q = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT typeof(event_id), length(event_id) FROM events ORDER BY position", -1, &q, nullptr),
            SQLITE_OK);
  std::vector<std::string> kinds;
  while (sqlite3_step(q) == SQLITE_ROW) {
    kinds.push_back(std::string(reinterpret_cast<const char*>(sqlite3_column_text(q, 0))) + ":" +
                    std::to_string(sqlite3_column_int(q, 1)));
  }
  sqlite3_finalize(q);
  int version = 0;
  ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &q, nullptr), SQLITE_OK);
  if (sqlite3_step(q) == SQLITE_ROW) version = sqlite3_column_int(q, 0);
  sqlite3_finalize(q);
  sqlite3_close(db);
  EXPECT_EQ(version, detail::sqlite::kSchemaVersion);
  EXPECT_EQ(kinds, (std::vector<std::string>{"blob:16", "text:36", "blob:16", "blob:16", "blob:16"}));
}

TEST_F(SqliteStore, FileThatIsNotADatabaseIsCorruption) {
  {
    std::ofstream f(path_, std::ios::binary);
    for (int i = 0; i < 200; ++i) f << "this is not an SQLite database, just text\n";
  }
  auto store = open();
  ASSERT_FALSE(store);
  EXPECT_EQ(store.status().code(), StatusCode::corruption) << store.status().to_string();
}

TEST_F(SqliteStore, AnotherApplicationsDatabaseIsRefused) {
  raw_exec("CREATE TABLE events(x); INSERT INTO events VALUES (1);");
  auto store = open();
  ASSERT_FALSE(store);
  EXPECT_EQ(store.status().code(), StatusCode::corruption) << store.status().to_string();
}

TEST_F(SqliteStore, DirectoryThatCannotBeCreatedIsUnavailable) {
  {
    std::ofstream f(dir_ / "file");
    f << "x";
  }
  path_ = (dir_ / "file" / "sub" / "events.db").string();
  auto store = open();
  ASSERT_FALSE(store);
  EXPECT_EQ(store.status().code(), StatusCode::unavailable) << store.status().to_string();
}

TEST_F(SqliteStore, WaitForWithAnEndlessTimeoutStillWakesAndCancels) {
  auto store = must_open();
  ASSERT_TRUE(store);
  Status woken = Status::internal("not run");
  std::thread waiter([&] { woken = store->wait_for(-1, std::chrono::milliseconds::max()); });
  ASSERT_TRUE(store->append("w-1", ExpectedVersion::any(), events(1)));
  waiter.join();
  EXPECT_TRUE(woken) << woken.to_string();

  Status cancelled = Status::internal("not run");
  std::thread second([&] { cancelled = store->wait_for(0, std::chrono::milliseconds::max()); });
  store->close();
  second.join();
  EXPECT_EQ(cancelled.code(), StatusCode::cancelled) << cancelled.to_string();
}

// ---- reopening, and reads that cross from the disk into the cache ----

TEST_F(SqliteStore, ReopenKeepsEverythingAndPagesCrossTheCacheBoundary) {
  SqliteTuning small;
  small.cache_max_events = 50;  // most of the log is read from SQLite, the tail from the cache
  std::vector<std::string> ids;
  {
    auto store = must_open({}, small);
    ASSERT_TRUE(store);
    for (int i = 0; i < 30; ++i) {
      auto batch = events(10, i % 2 == 0 ? "Even" : "Odd");
      for (const auto& e : batch) ids.push_back(e.id);
      ASSERT_TRUE(store->append("s-" + std::to_string(i % 3), ExpectedVersion::any(), batch));
    }
    EXPECT_EQ(detail::sqlite_counters(*store)->cached_events, 50);
    store->close();
  }
  auto store = must_open({}, small);
  ASSERT_TRUE(store);
  EXPECT_EQ(store->head_position(), 299);
  EXPECT_EQ(detail::sqlite_counters(*store)->cached_events, 0);
  for (int i = 0; i < 20; ++i) {
    auto batch = events(10, "Even");
    for (const auto& e : batch) ids.push_back(e.id);
    ASSERT_TRUE(store->append("s-" + std::to_string(i % 3), ExpectedVersion::any(), batch));
  }
  for (std::size_t page : {1u, 7u, 64u, 1000u}) {
    SCOPED_TRACE("page " + std::to_string(page));
    const auto all = read_everything(*store, page);
    ASSERT_EQ(all.size(), ids.size());
    for (std::size_t i = 0; i < all.size(); ++i) EXPECT_EQ(all[i].id, ids[i]);
  }
  // A filtered page in the SQLite part and one in the cache part.
  ReadFilter odd;
  odd.event_types = {"Odd"};
  auto early = store->read_all(0, 5, odd);
  ASSERT_TRUE(early);
  ASSERT_EQ(early->events.size(), 5u);
  EXPECT_EQ(early->events.front().position, 10);
  EXPECT_EQ(early->next_position, 15);
  auto late = store->read_all(450, 1000, odd);
  ASSERT_TRUE(late);
  EXPECT_TRUE(late->events.empty());
  EXPECT_TRUE(late->end_of_log);
  EXPECT_EQ(late->next_position, 500);

  // A stream filter paged from arbitrary positions, on disk and in the cache.
  for (std::int64_t from : {0, 1, 29, 30, 31, 205, 449, 450, 451, 499, 500}) {
    SCOPED_TRACE("from " + std::to_string(from));
    ReadFilter s1;
    s1.stream_id = "s-1";
    std::vector<std::int64_t> expected;
    for (std::int64_t p = from; p < 500; ++p) {
      // Before the reopen batch i went to s-(i % 3); after it, batch 30 + j went to s-(j % 3).
      const std::int64_t batch = p / 10;
      const std::int64_t stream = batch < 30 ? batch % 3 : (batch - 30) % 3;
      if (stream == 1) expected.push_back(p);
    }
    std::vector<std::int64_t> got;
    std::int64_t next = from;
    for (int guard = 0; guard < 1000; ++guard) {
      auto page = store->read_all(next, 7, s1);
      ASSERT_TRUE(page) << page.status().to_string();
      for (const auto& e : page->events) got.push_back(e.position);
      next = page->next_position;
      if (page->end_of_log) break;
    }
    EXPECT_EQ(got, expected);
    EXPECT_EQ(next, std::max<std::int64_t>(from, 500));
  }

  auto stats = store->stats();
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->total_events, 500);
  EXPECT_EQ(stats->stream_count, 3);
  EXPECT_EQ(stats->events_by_type["Odd"], 150);
  EXPECT_EQ(stats->events_by_type["Even"], 350);
  EXPECT_GT(stats->bytes_on_disk, 0);
}

TEST_F(SqliteStore, ReadersNeverSeeGapsWhileTheCacheEvicts) {
  SqliteTuning small;
  small.cache_max_events = 16;
  StoreOptions options;
  options.reader_connections = 2;
  auto store = must_open(options, small);
  ASSERT_TRUE(store);
  std::atomic<bool> done{false};
  std::atomic<int> errors{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 3; ++r) {
    readers.emplace_back([&, r] {
      std::int64_t next = 0;
      while (!done.load() || next <= store->head_position()) {
        auto slice = store->read_all(next, static_cast<std::size_t>(5 + r * 3));
        if (!slice) {
          ++errors;
          return;
        }
        for (const auto& e : slice->events) {
          if (e.position != next) ++errors;
          next = e.position + 1;
        }
        if (slice->next_position != next) ++errors;
        if (slice->events.empty()) (void)store->wait_for(next - 1, 5ms);
      }
    });
  }
  std::vector<std::thread> writers;
  for (int w = 0; w < 4; ++w) {
    writers.emplace_back([&, w] {
      for (int i = 0; i < 40; ++i) {
        auto r = store->append("w-" + std::to_string(w), ExpectedVersion::any(), events(1 + i % 3));
        if (!r) ++errors;
      }
    });
  }
  for (auto& t : writers) t.join();
  done = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(read_everything(*store, 33).size(), static_cast<std::size_t>(store->head_position() + 1));
}

TEST_F(SqliteStore, AppendsByAnotherWriterOfTheSameFileKeepPositionsGapFree) {
  auto first = must_open();
  ASSERT_TRUE(first);
  ASSERT_TRUE(first->append("a-1", ExpectedVersion::no_stream(), events(3)));
  // A second store on the same file stands in for another process.
  auto second = must_open();
  ASSERT_TRUE(second);
  auto theirs = second->append("b-1", ExpectedVersion::no_stream(), events(2));
  ASSERT_TRUE(theirs) << theirs.status().to_string();
  EXPECT_EQ(*theirs, (AppendResult{3, 4, 1}));
  EXPECT_EQ(first->head_position(), 2) << "no notification crosses stores";

  auto mine = first->append("a-1", ExpectedVersion::exact(2), events(1));
  ASSERT_TRUE(mine) << mine.status().to_string();
  EXPECT_EQ(*mine, (AppendResult{5, 5, 3}));
  EXPECT_EQ(first->head_position(), 5);
  const auto all = read_everything(*first, 4);
  ASSERT_EQ(all.size(), 6u);
  EXPECT_EQ(all[3].stream_id, "b-1");
  auto stats = first->stats();
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->total_events, 6);
  EXPECT_EQ(stats->stream_count, 2);
}

// ---- a killed process loses nothing it acknowledged ----

TEST_F(SqliteStore, AcknowledgedAppendsSurviveSigkill) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The child appends from 4 threads and reports every acknowledged append's last position and
    // first event id until it is killed. No gtest macros here: this is another process.
    close(fds[0]);
    auto store = open_store("sqlite://" + path_);
    if (!store) _exit(2);
    std::mutex pipe_mu;
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0;; ++i) {
          auto batch = events(1 + i % 3);
          auto r = (*store)->append("k-" + std::to_string(t), ExpectedVersion::any(), batch);
          if (!r) _exit(3);
          const std::string line = std::to_string(r->last_position) + " " + batch[0].id + "\n";
          std::lock_guard lk(pipe_mu);
          if (write(fds[1], line.data(), line.size()) != static_cast<ssize_t>(line.size())) _exit(4);
        }
      });
    }
    for (auto& t : threads) t.join();
    _exit(0);
  }
  close(fds[1]);
  // Read acknowledgements until enough arrived, then kill the child mid-flight.
  std::string acks;
  char buf[4096];
  int lines = 0;
  while (lines < 300) {
    ssize_t n = read(fds[0], buf, sizeof buf);
    if (n <= 0) break;
    acks.append(buf, static_cast<std::size_t>(n));
    lines = static_cast<int>(std::count(acks.begin(), acks.end(), '\n'));
  }
  kill(child, SIGKILL);
  int status = 0;
  waitpid(child, &status, 0);
  // Drain what was acknowledged before the kill landed.
  for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) acks.append(buf, static_cast<std::size_t>(n));
  close(fds[0]);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the child exited on its own with status " << status;
  ASSERT_GE(lines, 300);

  auto store = must_open();
  ASSERT_TRUE(store);
  const auto all = read_everything(*store, 1000);  // also checks the log is gap-free
  std::set<std::string> ids;
  for (const auto& e : all) ids.insert(e.id);
  std::istringstream in(acks);
  std::int64_t last = 0;
  std::string id;
  int checked = 0;
  while (in >> last >> id) {
    EXPECT_LE(last, store->head_position());
    EXPECT_EQ(ids.count(id), 1u) << "acknowledged event " << id << " was lost";
    ++checked;
  }
  EXPECT_GE(checked, 300);
}

// ---- a failed commit poisons the store ----

TEST_F(SqliteStore, FailedCommitFailsTheGroupAndPoisonsLaterWrites) {
  register_faulty_vfs();
  SqliteTuning faulty;
  faulty.vfs = kFaultyVfs;
  auto store = must_open({}, faulty);
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->append("p-1", ExpectedVersion::no_stream(), events(1)));

  const auto doomed = events(2);
  g_fail_wal_sync = true;
  auto failed = store->append("p-1", ExpectedVersion::exact(0), doomed);
  g_fail_wal_sync = false;
  ASSERT_FALSE(failed);
  EXPECT_GT(g_failed_syncs.load(), 0);
  EXPECT_EQ(failed.status().code(), StatusCode::unavailable) << failed.status().to_string();
  EXPECT_EQ(store->head_position(), 0) << "a failed commit publishes nothing";

  // Every later write is refused with the original error, even though the disk works again.
  auto later = store->append("p-2", ExpectedVersion::any(), events(1));
  ASSERT_FALSE(later);
  EXPECT_EQ(later.status().code(), StatusCode::failed_precondition);
  EXPECT_NE(later.status().message().find(failed.status().message()), std::string::npos)
      << later.status().to_string();
  EXPECT_EQ(store->save_checkpoint("sub", 1).code(), StatusCode::failed_precondition);
  EXPECT_EQ(store->transact([](StoreTransaction&) { return Status::ok(); }).code(),
            StatusCode::failed_precondition);
  // Reads still work and see only what was acknowledged.
  const auto seen = read_everything(*store, 10);
  EXPECT_EQ(seen.size(), 1u);
  store.reset();

  // After reopening, the log is consistent whatever reached the disk, and retrying the failed
  // append (same ids, same expected version) either writes it or finds it already written.
  auto reopened = must_open();
  ASSERT_TRUE(reopened);
  auto retry = reopened->append("p-1", ExpectedVersion::exact(0), doomed);
  ASSERT_TRUE(retry) << retry.status().to_string();
  EXPECT_EQ(*retry, (AppendResult{1, 2, 2}));
  EXPECT_EQ(read_everything(*reopened, 10).size(), 3u);
}

}  // namespace
}  // namespace herald
