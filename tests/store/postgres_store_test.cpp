// PostgreSQL-specific behaviour beyond the contract suite: readers never skip a position while
// several stores ("processes") write, schema migrations, the polling fallback of wait_for, and
// connection failures. Every test skips when HERALD_TEST_POSTGRES_URL is unset.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "herald/event_store.h"
#include "herald/id.h"
#include "postgres_test_util.h"
#include "store/postgres/pg_schema.h"
#include "store/postgres/pg_support.h"
#include "store/postgres/postgres_event_store.h"

namespace herald {
namespace {

namespace pg = herald::detail::pg;
using namespace std::chrono_literals;

EventData event(std::string type = "Tick", std::string payload = R"({"n":1})") {
  EventData e;
  e.type = std::move(type);
  e.payload = std::move(payload);
  return e;
}

class PostgresStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* base = std::getenv("HERALD_TEST_POSTGRES_URL");
    if (base == nullptr || *base == '\0') GTEST_SKIP() << "HERALD_TEST_POSTGRES_URL is not set";
    base_url_ = base;
    url_ = testing::create_postgres_schema();
  }

  std::unique_ptr<EventStore> open(const detail::PostgresOptions& pg_options = {},
                                   const std::string& url = {}) {
    auto s = detail::open_postgres_store(url.empty() ? url_ : url, StoreOptions{}, pg_options);
    EXPECT_TRUE(s.is_ok()) << s.status().to_string();
    return s ? std::move(*s) : nullptr;
  }

  // A raw libpq connection to the test schema, for what the store API cannot do.
  pg::Conn raw(const std::string& url = {}) {
    auto c = pg::connect(url.empty() ? url_ : url);
    EXPECT_TRUE(c.is_ok()) << c.status().to_string();
    return c ? std::move(*c) : nullptr;
  }

  std::string base_url_;
  std::string url_;
};

// The classic fault of a database event log: a reader sees position N+1 committed while N's
// transaction is still open, moves past N and never sees it. Writers here race through two store
// objects (each with its own connections and writer thread, like two processes) and through a raw
// connection that holds its transaction open before committing; a third store tails the log.
// Every slice it reads must start exactly where the previous one ended and be contiguous: a hole
// would be a position it skipped.
TEST_F(PostgresStoreTest, TailingReaderNeverSkipsAPositionWhileManyWritersRace) {
  auto a = open();
  auto b = open();
  auto reader = open();
  ASSERT_TRUE(a && b && reader);

  constexpr int kThreadsPerStore = 3;
  constexpr int kAppendsPerThread = 120;
  constexpr int kSlowCommits = 15;
  std::atomic<std::int64_t> written{0};
  std::atomic<bool> writer_failed{false};

  auto writer = [&](EventStore* store, int seed) {
    std::mt19937 rng(static_cast<unsigned>(seed));
    for (int i = 0; i < kAppendsPerThread; ++i) {
      const int n = 1 + static_cast<int>(rng() % 3);
      std::vector<EventData> batch;
      for (int k = 0; k < n; ++k) batch.push_back(event());
      auto r = store->append("race-" + std::to_string(rng() % 16), ExpectedVersion::any(), batch);
      if (!r) {
        writer_failed = true;
        ADD_FAILURE() << r.status().to_string();
        return;
      }
      written += n;
    }
  };
  // Holds the position lock inside an open transaction for a while before committing, so that
  // other writers queue behind it: the widest window for a reader to see a later position first.
  auto slow_writer = [&] {
    pg::Conn c = raw();
    if (!c) {
      writer_failed = true;
      return;
    }
    for (int i = 0; i < kSlowCommits; ++i) {
      const std::string sql =
          "BEGIN; SELECT * FROM herald_append_batch(ARRAY['slow-1'], ARRAY['slow'], ARRAY[0], "
          "ARRAY[0::bigint], ARRAY[1], ARRAY[0::bigint], ARRAY['" + new_uuid_v7() +
          "'], ARRAY['Slow'], ARRAY['{}'], ARRAY[''], ARRAY[''], ARRAY[''], ARRAY[''], false, true, ARRAY[1], ARRAY[1], true); "
          "SELECT pg_sleep(0.02); COMMIT";
      Status s = pg::exec_simple(c.get(), sql.c_str(), "slow append");
      if (!s.is_ok()) {
        writer_failed = true;
        ADD_FAILURE() << s.to_string();
        return;
      }
      written += 1;
    }
  };

  std::vector<std::thread> threads;
  for (int t = 0; t < kThreadsPerStore; ++t) {
    threads.emplace_back(writer, a.get(), 100 + t);
    threads.emplace_back(writer, b.get(), 200 + t);
  }
  threads.emplace_back(slow_writer);
  std::atomic<bool> writers_done{false};
  std::thread joiner([&] {
    for (auto& t : threads) t.join();
    writers_done = true;
  });

  std::int64_t next = 0;
  std::int64_t slices = 0;
  bool contiguous = true;
  for (;;) {
    const bool finished = writers_done.load();
    auto slice = reader->read_all(next, 37);
    ASSERT_TRUE(slice.is_ok()) << slice.status().to_string();
    ++slices;
    for (std::size_t i = 0; i < slice->events.size(); ++i) {
      const std::int64_t want = next + static_cast<std::int64_t>(i);
      if (slice->events[i].position != want) {
        contiguous = false;
        ADD_FAILURE() << "read_all from " << next << " returned position " << slice->events[i].position
                      << " where " << want << " was expected: position " << want << " was skipped";
        break;
      }
    }
    if (!contiguous) break;
    if (!slice->events.empty()) {
      EXPECT_EQ(slice->next_position, slice->events.back().position + 1);
    }
    next = slice->next_position;
    if (finished && slice->end_of_log) break;
    if (slice->end_of_log) (void)reader->wait_for(next - 1, 50ms);
  }
  joiner.join();
  ASSERT_FALSE(writer_failed.load());
  ASSERT_TRUE(contiguous);
  // Everything written was seen exactly once, positions 0..written-1.
  EXPECT_EQ(next, written.load());
  auto stats = reader->stats();
  ASSERT_TRUE(stats.is_ok());
  EXPECT_EQ(stats->total_events, written.load());
  EXPECT_EQ(stats->last_position, written.load() - 1);
  EXPECT_GT(slices, 1);
}

// Group commit: appends that share one database transaction still succeed or fail alone.
TEST_F(PostgresStoreTest, ConcurrentCreatorsOfOneStreamExactlyOneWins) {
  auto store = open();
  ASSERT_TRUE(store);
  constexpr int kThreads = 10;
  std::vector<Result<AppendResult>> results(kThreads, Status::internal("not run"));
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] { results[t] = store->append("order-1", ExpectedVersion::no_stream(), {event()}); });
  }
  for (auto& t : threads) t.join();
  int winners = 0;
  for (const auto& r : results) {
    if (r) {
      ++winners;
      EXPECT_EQ(r->stream_version, 0);
    } else {
      EXPECT_EQ(r.status().code(), StatusCode::wrong_expected_version) << r.status().to_string();
      EXPECT_EQ(r.status().actual_version(), 0);
    }
  }
  EXPECT_EQ(winners, 1);
  EXPECT_EQ(store->head_position(), 0);
}

// The same event id appended concurrently (likely within one group-commit batch): to different
// streams, one wins and the others get already_exists; as the same retry, all get one result.
TEST_F(PostgresStoreTest, ConcurrentAppendsOfOneEventIdResolveOneByOne) {
  auto store = open();
  ASSERT_TRUE(store);
  constexpr int kThreads = 8;
  EventData e = event();
  e.id = new_uuid_v7();
  std::vector<Result<AppendResult>> elsewhere(kThreads, Status::internal("not run"));
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      elsewhere[t] = store->append("dup-" + std::to_string(t), ExpectedVersion::any(), {e});
    });
  }
  for (auto& t : threads) t.join();
  int winners = 0;
  for (const auto& r : elsewhere) {
    if (r) {
      ++winners;
    } else {
      EXPECT_EQ(r.status().code(), StatusCode::already_exists) << r.status().to_string();
    }
  }
  EXPECT_EQ(winners, 1);

  EventData f = event();
  f.id = new_uuid_v7();
  std::vector<Result<AppendResult>> retries(kThreads, Status::internal("not run"));
  threads.clear();
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] { retries[t] = store->append("same-1", ExpectedVersion::no_stream(), {f}); });
  }
  for (auto& t : threads) t.join();
  for (const auto& r : retries) {
    ASSERT_TRUE(r.is_ok()) << r.status().to_string();
    EXPECT_EQ(*r, *retries[0]);
  }
  auto stats = store->stats();
  ASSERT_TRUE(stats.is_ok());
  EXPECT_EQ(stats->total_events, 2);
}

// transact() work that calls the store again needs a second connection while it holds one; more
// such callers than pooled connections must not wait for each other forever.
TEST_F(PostgresStoreTest, NestedStoreCallsInsideManyTransactionsDoNotExhaustThePool) {
  StoreOptions options;
  options.reader_connections = 1;  // a pool of 3
  auto opened = detail::open_postgres_store(url_, options);
  ASSERT_TRUE(opened.is_ok()) << opened.status().to_string();
  EventStore& store = **opened;
  constexpr int kThreads = 6;
  std::vector<Status> results(kThreads, Status::internal("not run"));
  std::atomic<int> inside{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      results[t] = store.transact([&](StoreTransaction& txn) -> Status {
        HERALD_RETURN_IF_ERROR(txn.save_checkpoint("sub-" + std::to_string(t), t));
        // Hold this connection until every transaction holds one, then use another.
        ++inside;
        while (inside.load() < kThreads) std::this_thread::sleep_for(1ms);
        auto slice = store.read_all(0, 10);
        return slice.status();
      });
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_TRUE(results[t].is_ok()) << results[t].to_string();
    auto cp = store.load_checkpoint("sub-" + std::to_string(t));
    ASSERT_TRUE(cp.is_ok());
    EXPECT_EQ(*cp, t);
  }
}

// A sparse filter examines a bounded window per call and still makes progress.
TEST_F(PostgresStoreTest, FilteredReadAllAdvancesThroughABoundedWindow) {
  detail::PostgresOptions small_window;
  small_window.filtered_scan_window = 10;
  auto store = open(small_window);
  ASSERT_TRUE(store);
  for (int i = 0; i < 30; ++i) {
    ASSERT_TRUE(store->append("s-" + std::to_string(i % 3), ExpectedVersion::any(),
                              {event(i == 25 ? "Rare" : "Common")})
                    .is_ok());
  }
  ReadFilter rare;
  rare.event_types = {"Rare"};
  auto first = store->read_all(0, 5, rare);
  ASSERT_TRUE(first.is_ok()) << first.status().to_string();
  EXPECT_TRUE(first->events.empty());
  EXPECT_EQ(first->next_position, 10);
  EXPECT_FALSE(first->end_of_log);

  std::vector<std::int64_t> found;
  std::int64_t next = first->next_position;
  int calls = 1;
  for (;;) {
    auto slice = store->read_all(next, 5, rare);
    ASSERT_TRUE(slice.is_ok());
    ++calls;
    for (const auto& e : slice->events) found.push_back(e.position);
    ASSERT_GT(slice->next_position, next) << "no progress";
    next = slice->next_position;
    if (slice->end_of_log) break;
  }
  EXPECT_EQ(found, std::vector<std::int64_t>{25});
  EXPECT_EQ(next, 30);
  EXPECT_EQ(calls, 3);
}

// A statement the database rejects aborts the PostgreSQL transaction; work that ignores the
// error and returns ok must not be told that it committed.
TEST_F(PostgresStoreTest, TransactReportsAStatementFailureThatWorkIgnored) {
  auto store = open();
  ASSERT_TRUE(store);
  Status ignored;
  Status result = store->transact([&](StoreTransaction& txn) -> Status {
    HERALD_RETURN_IF_ERROR(txn.put_document("docs", "good", R"({"a":1})"));
    ignored = txn.put_document("docs", "bad\xff\xfe", R"({"a":2})");  // not UTF-8
    return Status::ok();
  });
  EXPECT_EQ(ignored.code(), StatusCode::invalid_argument) << ignored.to_string();
  EXPECT_EQ(result.code(), StatusCode::invalid_argument) << result.to_string();
  Status read = store->transact([&](StoreTransaction& txn) -> Status {
    auto doc = txn.get_document("docs", "good");
    EXPECT_EQ(doc.status().code(), StatusCode::not_found) << "the aborted transaction committed";
    return Status::ok();
  });
  EXPECT_TRUE(read.is_ok()) << read.to_string();
}

TEST_F(PostgresStoreTest, OpenAppliesMigrationsAndRecordsTheSchemaVersion) {
  {
    auto store = open();
    ASSERT_TRUE(store);
    ASSERT_TRUE(store->append("s-1", ExpectedVersion::no_stream(), {event()}).is_ok());
  }
  pg::Conn c = raw();
  ASSERT_TRUE(c);
  auto v = pg::schema_version(c.get());
  ASSERT_TRUE(v.is_ok()) << v.status().to_string();
  EXPECT_EQ(*v, pg::kSchemaVersion);
  // Reopening an up-to-date schema changes nothing and keeps the data.
  auto again = open();
  ASSERT_TRUE(again);
  auto version = again->stream_version("s-1");
  ASSERT_TRUE(version.is_ok());
  EXPECT_EQ(*version, 0);
  auto rows = pg::exec(c.get(), "SELECT count(*) FROM herald_schema_version");
  ASSERT_TRUE(rows.is_ok());
  EXPECT_EQ(rows->i64(0, 0), 1);
}

TEST_F(PostgresStoreTest, ConcurrentOpenersOfANewSchemaMigrateItOnce) {
  constexpr int kThreads = 4;
  std::vector<Result<std::unique_ptr<EventStore>>> stores;
  for (int t = 0; t < kThreads; ++t) stores.emplace_back(Status::internal("not run"));
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] { stores[t] = detail::open_postgres_store(url_, StoreOptions{}); });
  }
  for (auto& th : threads) th.join();
  for (auto& s : stores) ASSERT_TRUE(s.is_ok()) << s.status().to_string();
  ASSERT_TRUE((*stores[0])->append("s-1", ExpectedVersion::no_stream(), {event()}).is_ok());
  auto v = (*stores[3])->stream_version("s-1");
  ASSERT_TRUE(v.is_ok());
  EXPECT_EQ(*v, 0);
  pg::Conn c = raw();
  ASSERT_TRUE(c);
  auto rows = pg::exec(c.get(), "SELECT version FROM herald_schema_version");
  ASSERT_TRUE(rows.is_ok());
  ASSERT_EQ(rows->size(), 1);
  EXPECT_EQ(rows->i64(0, 0), pg::kSchemaVersion);
}

TEST_F(PostgresStoreTest, OpenRefusesASchemaNewerThanThisBuildWithCorruption) {
  { ASSERT_TRUE(open()); }
  pg::Conn c = raw();
  ASSERT_TRUE(c);
  const std::string sql =
      "UPDATE herald_schema_version SET version = " + std::to_string(pg::kSchemaVersion + 1);
  ASSERT_TRUE(pg::exec_simple(c.get(), sql.c_str()).is_ok());
  auto store = detail::open_postgres_store(url_, StoreOptions{});
  ASSERT_FALSE(store.is_ok());
  EXPECT_EQ(store.status().code(), StatusCode::corruption) << store.status().to_string();
  // Through the public entry point as well.
  auto via_url = open_store(url_);
  ASSERT_FALSE(via_url.is_ok());
  EXPECT_EQ(via_url.status().code(), StatusCode::corruption);
}

// A writer that does not notify (as when a NOTIFY is lost): a waiter in another store still wakes,
// through its polling fallback.
TEST_F(PostgresStoreTest, LostNotificationStillWakesWaitForByPolling) {
  detail::PostgresOptions waiter_options;
  waiter_options.poll_interval = 50ms;
  auto waiter = open(waiter_options);
  detail::PostgresOptions silent;
  silent.notify = false;
  auto writer = open(silent);
  ASSERT_TRUE(waiter && writer);

  // A listener of our own proves that no notification was sent.
  pg::Conn listener = raw();
  ASSERT_TRUE(listener);
  ASSERT_TRUE(pg::exec_simple(listener.get(), "LISTEN herald_events").is_ok());

  Status woke = Status::internal("not run");
  std::thread t([&] { woke = waiter->wait_for(-1, 60s); });
  ASSERT_TRUE(writer->append("s-1", ExpectedVersion::any(), {event()}).is_ok());
  t.join();
  EXPECT_TRUE(woke.is_ok()) << woke.to_string();
  EXPECT_EQ(waiter->head_position(), 0);

  // The channel is shared by every schema on the server (other suites may run in parallel); only a
  // notification naming this test's schema ("<schema>:<position>") would have come from `writer`.
  auto schema = pg::exec(listener.get(), "SELECT current_schema()");
  ASSERT_TRUE(schema.is_ok()) << schema.status().to_string();
  const std::string ours = schema->str(0, 0) + ":";
  ASSERT_EQ(PQconsumeInput(listener.get()), 1);
  while (PGnotify* n = PQnotifies(listener.get())) {
    const std::string payload = n->extra != nullptr ? n->extra : "";
    PQfreemem(n);
    EXPECT_NE(payload.rfind(ours, 0), 0u) << "the silent writer sent a notification: " << payload;
  }
}

// The normal path: a notification from another store wakes the waiter (the poll interval is set
// far beyond the wait so that only NOTIFY can explain the wake-up).
TEST_F(PostgresStoreTest, NotificationFromAnotherStoreWakesWaitFor) {
  detail::PostgresOptions no_polling;
  no_polling.poll_interval = 3600s;
  auto waiter = open(no_polling);
  auto writer = open();
  ASSERT_TRUE(waiter && writer);
  Status woke = Status::internal("not run");
  std::thread t([&] { woke = waiter->wait_for(-1, 60s); });
  ASSERT_TRUE(writer->append("s-1", ExpectedVersion::any(), {event()}).is_ok());
  t.join();
  EXPECT_TRUE(woke.is_ok()) << woke.to_string();
}

TEST_F(PostgresStoreTest, UnreachableServerIsUnavailable) {
  // Port 1 on loopback: nothing listens there.
  auto store = open_store("postgres://postgres@127.0.0.1:1/herald?connect_timeout=2");
  ASSERT_FALSE(store.is_ok());
  EXPECT_EQ(store.status().code(), StatusCode::unavailable) << store.status().to_string();
}

TEST_F(PostgresStoreTest, MalformedUrlIsInvalidArgument) {
  auto store = open_store("postgres://postgres@127.0.0.1:5432/herald?no_such_option=1");
  ASSERT_FALSE(store.is_ok());
  EXPECT_EQ(store.status().code(), StatusCode::invalid_argument) << store.status().to_string();
}

TEST_F(PostgresStoreTest, UrlHidesThePassword) {
  auto store = open_store("postgres://alice:s3cret@127.0.0.1:1/herald?connect_timeout=1");
  ASSERT_FALSE(store.is_ok());
  EXPECT_EQ(store.status().message().find("s3cret"), std::string::npos) << store.status().message();
  EXPECT_EQ(pg::redact_url("postgresql://alice:s3cret@db:5432/x?sslmode=require&password=p"),
            "postgresql://alice@db:5432/x?sslmode=require");
  // Found by fuzz/fuzz_store_url: libpq ends the user info at the '@', not at a '?' before it, and
  // percent-decodes parameter names.
  EXPECT_EQ(pg::redact_url("postgres://user:pw?x@host/db"), "postgres://user@host/db");
  EXPECT_EQ(pg::redact_url("postgres://host/db?pass%77ord=leak&sslmode=disable"), "postgres://host/db?sslmode=disable");
  EXPECT_EQ(pg::redact_url("postgres://host/db?pass%7=leak"), "postgres://host/db");
  EXPECT_EQ(pg::redact_url("postgres://u@host/db?a=b@c"), "postgres://u@host/db?a=b@c");
  // Also found by the fuzzer: dropping the unreadable parameter "%z/=1" removes the '/' that kept
  // the '@' out of the user info, so what is left must be redacted again.
  EXPECT_EQ(pg::redact_url("postgres://h:pw?%z/=1&q@r"), "postgres://h@r");
}

// Losing the server (here: our backends terminated and logins refused) gives unavailable, and the
// store recovers by itself once the server is back.
TEST_F(PostgresStoreTest, LostConnectionsGiveUnavailableThenRecover) {
  const std::string role = "herald_role_" + std::to_string(::getpid()) + "_" +
                           std::to_string(std::chrono::steady_clock::now().time_since_epoch().count() % 100000);
  if (url_.find('@') == std::string::npos) GTEST_SKIP() << "needs a URL with a user name";
  pg::Conn admin = raw();
  ASSERT_TRUE(admin);
  ASSERT_TRUE(pg::exec_simple(admin.get(), ("CREATE ROLE " + role + " LOGIN SUPERUSER").c_str()).is_ok());
  // The store's URL: same schema, our own role, so that only its connections are cut.
  std::string url = url_;
  url.replace(url.find("://") + 3, url.find('@') - url.find("://") - 3, role);
  // No polling: after the outage only a reconnected LISTEN can wake a waiter.
  detail::PostgresOptions no_polling;
  no_polling.poll_interval = 3600s;
  auto store = open(no_polling, url);
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->append("s-1", ExpectedVersion::no_stream(), {event()}).is_ok());
  ASSERT_TRUE(store->read_all(0, 10).is_ok());

  ASSERT_TRUE(pg::exec_simple(admin.get(), ("ALTER ROLE " + role + " NOLOGIN").c_str()).is_ok());
  ASSERT_TRUE(pg::exec_simple(admin.get(), ("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                            "WHERE usename = '" + role + "'").c_str())
                  .is_ok());

  auto read = store->read_all(0, 10);
  ASSERT_FALSE(read.is_ok());
  EXPECT_EQ(read.status().code(), StatusCode::unavailable) << read.status().to_string();
  auto appended = store->append("s-1", ExpectedVersion::exact(0), {event()});
  ASSERT_FALSE(appended.is_ok());
  EXPECT_EQ(appended.status().code(), StatusCode::unavailable) << appended.status().to_string();
  Status saved = store->save_checkpoint("sub", 1);
  EXPECT_EQ(saved.code(), StatusCode::unavailable) << saved.to_string();

  ASSERT_TRUE(pg::exec_simple(admin.get(), ("ALTER ROLE " + role + " LOGIN").c_str()).is_ok());
  auto again = store->append("s-1", ExpectedVersion::exact(0), {event()});
  ASSERT_TRUE(again.is_ok()) << again.status().to_string();
  EXPECT_EQ(again->stream_version, 1);
  auto all = store->read_all(0, 10);
  ASSERT_TRUE(all.is_ok()) << all.status().to_string();
  EXPECT_EQ(all->events.size(), 2u);

  // The listener reconnected: another store's append wakes a waiter of this one.
  auto other = open();
  ASSERT_TRUE(other);
  const std::int64_t head = store->head_position();
  Status woke = Status::internal("not run");
  std::thread waiter([&] { woke = store->wait_for(head, 60s); });
  ASSERT_TRUE(other->append("s-2", ExpectedVersion::any(), {event()}).is_ok());
  waiter.join();
  EXPECT_TRUE(woke.is_ok()) << woke.to_string();
  other.reset();

  store.reset();
  (void)pg::exec_simple(admin.get(), ("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                      "WHERE usename = '" + role + "'").c_str());
  (void)pg::exec_simple(admin.get(), ("DROP ROLE IF EXISTS " + role).c_str());
}

// A retry of an append whose acknowledgement was lost (same ids, same expected version) through a
// second store returns the original result and writes nothing.
TEST_F(PostgresStoreTest, IdempotentRetryThroughAnotherStoreWritesNothing) {
  auto a = open();
  auto b = open();
  ASSERT_TRUE(a && b);
  std::vector<EventData> events{event(), event()};
  events[0].id = new_uuid_v7();
  events[1].id = new_uuid_v7();
  auto first = a->append("cart-9", ExpectedVersion::no_stream(), events);
  ASSERT_TRUE(first.is_ok());
  auto retry = b->append("cart-9", ExpectedVersion::no_stream(), events);
  ASSERT_TRUE(retry.is_ok()) << retry.status().to_string();
  EXPECT_EQ(*retry, *first);
  auto stats = b->stats();
  ASSERT_TRUE(stats.is_ok());
  EXPECT_EQ(stats->total_events, 2);
  // The same ids under another stream are someone else's events.
  auto elsewhere = b->append("cart-10", ExpectedVersion::any(), events);
  ASSERT_FALSE(elsewhere.is_ok());
  EXPECT_EQ(elsewhere.status().code(), StatusCode::already_exists);
}

// A database that version 1 of the schema made, with events written by version 1's append
// function, upgrades on open: the events stay readable, the store appends after them, and a retry
// of an append version 1 stored is still recognised as a retry.
TEST_F(PostgresStoreTest, OpeningAVersion1DatabaseUpgradesItAndKeepsItsEvents) {
  pg::Conn c = raw();
  ASSERT_TRUE(c);
  Status migrated = pg::migrate(c.get(), 1);
  ASSERT_TRUE(migrated.is_ok()) << migrated.to_string();
  const std::string id = new_uuid_v7();
  // A call of version 1's 18-argument function: one event `id` appended to `stream` with the
  // expected-version kind `kind` (0 any, 1 no_stream).
  auto v1_append = [&](const std::string& stream, int kind, const std::string& payload) {
    const std::string sql =
        "SELECT r_code, r_first FROM herald_append_batch(ARRAY['" + stream + "'], ARRAY['old'], "
        "ARRAY[" + std::to_string(kind) + "], ARRAY[0::bigint], ARRAY[1], ARRAY[0::bigint], "
        "ARRAY['" + id + "'], ARRAY['Old'], ARRAY['" + payload + "'], ARRAY[''], ARRAY[''], "
        "ARRAY[''], ARRAY[''], false, true, ARRAY[1], ARRAY[1], true)";
    return pg::exec(c.get(), sql.c_str());
  };
  auto written = v1_append("old-1", 1, R"({"v":1})");
  ASSERT_TRUE(written.is_ok()) << written.status().to_string();
  ASSERT_EQ(written->i64(0, 0), 0);
  EXPECT_EQ(written->i64(0, 1), 0);

  auto store = open();
  ASSERT_TRUE(store);
  auto v = pg::schema_version(c.get());
  ASSERT_TRUE(v.is_ok());
  EXPECT_EQ(*v, pg::kSchemaVersion);
  auto old_events = store->read_stream("old-1", 0, 10, ReadDirection::forwards);
  ASSERT_TRUE(old_events.is_ok()) << old_events.status().to_string();
  ASSERT_EQ(old_events->size(), 1u);
  EXPECT_EQ((*old_events)[0].id, id);
  EXPECT_EQ((*old_events)[0].payload, R"({"v":1})");

  EventData again = event("Old", R"({"v":1})");
  again.id = id;
  auto retry = store->append("old-1", ExpectedVersion::no_stream(), {again});
  ASSERT_TRUE(retry.is_ok()) << retry.status().to_string();
  EXPECT_EQ(retry->first_position, 0);
  EXPECT_EQ(retry->stream_version, 0);
  auto next = store->append("old-1", ExpectedVersion::exact(0), {event()});
  ASSERT_TRUE(next.is_ok()) << next.status().to_string();
  EXPECT_EQ(next->first_position, 1);
  EXPECT_EQ(next->stream_version, 1);
  // The 18-argument form of version 1 still works on the upgraded schema.
  auto refused = v1_append("old-2", 0, "{}");
  ASSERT_TRUE(refused.is_ok()) << refused.status().to_string();
  EXPECT_EQ(refused->i64(0, 0), 2);  // id stored elsewhere
}

TEST_F(PostgresStoreTest, MigratingToAVersionThisBuildLacksIsInvalidArgument) {
  pg::Conn c = raw();
  ASSERT_TRUE(c);
  EXPECT_EQ(pg::migrate(c.get(), pg::kSchemaVersion + 1).code(), StatusCode::invalid_argument);
  EXPECT_EQ(pg::migrate(c.get(), 0).code(), StatusCode::invalid_argument);
}

// The writer's first call skips the up-front probe for stored ids (p_verify_ids = false). Called
// directly: a stored id under an expected version that still matches is refused by the unique
// index (23505, nothing written); a retry whose expected version no longer matches is still
// recognised, on the set-based path (distinct streams) and on the append-by-append path.
TEST_F(PostgresStoreTest, UnverifiedAppendCallStillFindsRetriesAndRefusesStoredIds) {
  auto store = open();
  ASSERT_TRUE(store);
  EventData first = event();
  first.id = new_uuid_v7();
  auto stored = store->append("acc-1", ExpectedVersion::no_stream(), {first});
  ASSERT_TRUE(stored.is_ok()) << stored.status().to_string();
  pg::Conn c = raw();
  ASSERT_TRUE(c);
  // streams, kinds (0 any, 1 no_stream), ids: one event per append; distinct as given.
  auto call = [&](const std::string& streams, const std::string& kinds, const std::string& ids,
                  int appends, bool distinct) {
    std::string ones = "ARRAY[1";
    std::string apps = "ARRAY[1";
    std::string texts = "ARRAY[''";
    for (int i = 2; i <= appends; ++i) {
      ones += ",1";
      apps += ',';
      apps += std::to_string(i);  // not "," + …: g++ 12 -O3 warns falsely (-Wrestrict)
      texts += ",''";
    }
    ones += "]";
    apps += "]";
    texts += "]";
    std::string zeros = "array_fill(0::bigint, ARRAY[" + std::to_string(appends) + "])";
    const std::string sql =
        "SELECT r_code, r_first, r_version FROM herald_append_batch(" + streams + ", " + texts +
        ", " + kinds + ", " + zeros + ", " + ones + ", " + zeros + ", " + ids + ", " + texts +
        ", array_fill('{}'::text, ARRAY[" + std::to_string(appends) + "]), " + texts + ", " +
        texts + ", " + texts + ", " + texts + ", false, false, " + apps + ", " + ones + ", " +
        (distinct ? "true" : "false") + ", false)";
    return pg::exec(c.get(), sql.c_str(), {}, "unverified append");
  };
  const std::string fresh = new_uuid_v7();
  const std::string fresh2 = new_uuid_v7();

  // Expected any matches, so the insert reaches the index: refused, and the new append with it.
  auto refused = call("ARRAY['acc-1','acc-2']", "ARRAY[0,1]",
                      "ARRAY['" + first.id + "','" + fresh + "']", 2, true);
  ASSERT_FALSE(refused.is_ok());
  EXPECT_EQ(refused.status().code(), StatusCode::already_exists) << refused.status().to_string();
  c = raw();  // the failed call left nothing open, but start clean anyway
  ASSERT_TRUE(c);
  auto head = store->stats();
  ASSERT_TRUE(head.is_ok());
  EXPECT_EQ(head->total_events, 1);

  // no_stream no longer matches acc-1: the set-based path must still see the retry.
  auto set_based = call("ARRAY['acc-1','acc-2']", "ARRAY[1,1]",
                        "ARRAY['" + first.id + "','" + fresh + "']", 2, true);
  ASSERT_TRUE(set_based.is_ok()) << set_based.status().to_string();
  ASSERT_EQ(set_based->size(), 2);
  EXPECT_EQ(set_based->i64(0, 0), 0);  // the original result
  EXPECT_EQ(set_based->i64(0, 1), stored->first_position);
  EXPECT_EQ(set_based->i64(0, 2), 0);
  EXPECT_EQ(set_based->i64(1, 0), 0);  // written
  EXPECT_EQ(set_based->i64(1, 1), 1);

  // Two appends to acc-3 make the batch not distinct: the append-by-append path.
  auto one_by_one = call("ARRAY['acc-3','acc-3','acc-1']", "ARRAY[1,0,1]",
                         "ARRAY['" + fresh2 + "','" + new_uuid_v7() + "','" + first.id + "']", 3,
                         false);
  ASSERT_TRUE(one_by_one.is_ok()) << one_by_one.status().to_string();
  ASSERT_EQ(one_by_one->size(), 3);
  EXPECT_EQ(one_by_one->i64(0, 0), 0);
  EXPECT_EQ(one_by_one->i64(1, 0), 0);
  EXPECT_EQ(one_by_one->i64(1, 2), 1);
  EXPECT_EQ(one_by_one->i64(2, 0), 0);  // the retry, not wrong_expected_version
  EXPECT_EQ(one_by_one->i64(2, 1), stored->first_position);
  auto after = store->stats();
  ASSERT_TRUE(after.is_ok());
  EXPECT_EQ(after->total_events, 4);
}

}  // namespace
}  // namespace herald
