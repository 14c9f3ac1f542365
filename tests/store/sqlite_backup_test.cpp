// Online backup of the SQLite store (herald/sqlite_store.h): taken while writers append and the bus
// runs a projection and dead-letters events, then restored by opening the copy. The copy must hold
// exactly a gap-free prefix of the log (every stream gap-free too), and every checkpoint, inbox
// record, document and dead letter in it must agree with that prefix.
#include <gtest/gtest.h>
#include <stdlib.h>  // mkdtemp

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "herald/event_bus.h"
#include "herald/sqlite_store.h"

namespace herald {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

std::filesystem::path temp_dir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "herald-backup-XXXXXX").string();
  EXPECT_NE(::mkdtemp(tmpl.data()), nullptr);
  return tmpl;
}

// Blocks (on the store, no polling) until `pred` holds or 20 s pass; returns whether it held.
template <class Pred>
bool wait_on_appends(EventStore& store, Pred pred) {
  const auto until = std::chrono::steady_clock::now() + 20s;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > until) return false;
    (void)store.wait_for(store.head_position(), 100ms);
  }
  return true;
}

// Per stream, {"count": events applied, "last_version": the last one's version}, exactly once.
class CountPerStream final : public EventHandler {
 public:
  std::string name() const override { return "test.projection"; }
  std::vector<std::string> event_types() const override { return {"Item"}; }
  Status handle(const RecordedEvent& e, HandlerContext& ctx) override {
    Status st = ctx.exactly_once(e, [&](StoreTransaction& tx) -> Status {
      std::int64_t count = 0;
      auto doc = tx.get_document("counts", e.stream_id);
      if (doc) {
        auto j = json::parse(*doc);
        count = j.at("count").get<std::int64_t>();
        // Applied in stream order, each once: anything else is a bug the test must see.
        if (j.at("last_version").get<std::int64_t>() != e.version - 1) return Status::corruption("out of order");
      } else if (doc.status().code() != StatusCode::not_found) {
        return doc.status();
      }
      return tx.put_document("counts", e.stream_id, json{{"count", count + 1}, {"last_version", e.version}}.dump());
    });
    if (st.is_ok()) {
      std::lock_guard lock(mu);
      last_position = std::max(last_position, e.position);
      cv.notify_all();
    }
    return st;
  }
  std::mutex mu;
  std::condition_variable cv;
  std::int64_t last_position = -1;  // guarded by mu
};

// Fails every event marked poison, for good: dead letters, and parked events behind them.
class RefusePoison final : public EventHandler {
 public:
  std::string name() const override { return "test.poison"; }
  std::vector<std::string> event_types() const override { return {"Item"}; }
  Status handle(const RecordedEvent& e, HandlerContext&) override {
    return json::parse(e.payload).value("poison", false) ? Status::permanent("poison") : Status::ok();
  }
};

BusOptions quick_bus() {
  BusOptions o;
  o.poll_interval = 20ms;
  return o;
}

HandlerOptions no_retry() {
  HandlerOptions o;
  o.retry = RetryPolicy::no_retry();
  return o;
}

TEST(SqliteBackupTest, UnderWriteLoadTheCopyIsAConsistentPrefixAndResumes) {
  const auto dir = temp_dir();
  StoreOptions so;
  so.durable = false;  // fsyncs are not what this test is about; more appends per second are
  auto opened = open_sqlite_store((dir / "live" / "events.db").string(), so);
  ASSERT_TRUE(opened) << opened.status().to_string();
  std::shared_ptr<EventStore> store = std::move(*opened);

  EventBus bus(store, quick_bus());
  ASSERT_TRUE(bus.register_handler(std::make_shared<CountPerStream>(), no_retry()));
  ASSERT_TRUE(bus.register_handler(std::make_shared<RefusePoison>(), no_retry()));
  ASSERT_TRUE(bus.start());

  // Two writers, ten streams each, batches of one to three events; every 50th batch of each
  // writer's first stream is poison (so that stream's later events park behind it).
  std::atomic_bool stop{false};
  std::atomic<std::int64_t> appended{0};
  std::atomic<int> append_failures{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < 2; ++w) {
    writers.emplace_back([&, w] {
      std::vector<std::int64_t> version(10, kNoStreamVersion);
      for (std::int64_t n = 0; !stop.load(); ++n) {
        const auto k = static_cast<std::size_t>(n % 10);
        const std::string stream = "item-" + std::to_string(w) + "-" + std::to_string(k);
        std::vector<EventData> batch;
        for (int i = 0; i < 1 + static_cast<int>(n % 3); ++i) {
          const bool poison = k == 0 && i == 0 && n % 50 == 0;
          batch.push_back(EventData{"", "Item", json{{"w", w}, {"n", n}, {"poison", poison}}.dump(), {}});
        }
        const auto size = static_cast<std::int64_t>(batch.size());
        const auto expected =
            version[k] == kNoStreamVersion ? ExpectedVersion::no_stream() : ExpectedVersion::exact(version[k]);
        auto r = store->append(stream, expected, std::move(batch));
        if (!r) {
          append_failures.fetch_add(1);
          return;
        }
        version[k] = r->stream_version;
        appended.fetch_add(size);
      }
    });
  }
  auto stop_writers = [&] {
    stop = true;
    for (auto& t : writers) t.join();
    writers.clear();
  };
  struct OnExit {
    std::function<void()> f;
    ~OnExit() { f(); }
  } join_writers{stop_writers};  // a failed ASSERT must not leave joinable threads behind

  // Enough history, with dead letters and a saved projection checkpoint, before the backup.
  ASSERT_TRUE(wait_on_appends(*store, [&] { return store->head_position() >= 3000; }))
      << "head " << store->head_position() << ", append failures " << append_failures.load();
  ASSERT_TRUE(wait_on_appends(*store, [&] {
    auto dl = store->list_dead_letters("test.poison");
    auto cp = store->load_checkpoint("test.projection");
    return dl && dl->size() >= 3 && cp && *cp > 500;
  }));

  // At the first step the snapshot is open: appends must go on meanwhile, and stay out of the copy.
  std::int64_t head_at_first_step = -1;
  std::int64_t head_after_appends = -1;
  bool appends_continued = false;
  BackupOptions bo;
  bo.pages_per_step = 8;
  bo.on_step = [&](const BackupProgress& p) {
    if (p.steps != 1) return;
    head_at_first_step = store->head_position();
    appends_continued = wait_on_appends(*store, [&] { return store->head_position() >= head_at_first_step + 500; });
    head_after_appends = store->head_position();
  };
  const auto dest = (dir / "backups" / "events-copy.db").string();
  auto backup = backup_sqlite_store(*store, dest, bo);
  ASSERT_TRUE(backup) << backup.status().to_string();
  EXPECT_TRUE(appends_continued) << "appends stalled while the backup held its snapshot";
  EXPECT_GT(backup->steps, 2);
  // The snapshot may hold a commit group the store had not yet published when the first step
  // read its head (the head is published after COMMIT returns), but none of the 500 appended
  // while the snapshot stayed open.
  EXPECT_LT(backup->head_position, head_after_appends);
  EXPECT_FALSE(std::filesystem::exists(dest + ".partial"));
  EXPECT_EQ(backup->bytes, static_cast<std::int64_t>(std::filesystem::file_size(dest)));

  stop_writers();
  ASSERT_EQ(append_failures.load(), 0);
  (void)bus.stop(std::chrono::steady_clock::now() + 5s);
  ASSERT_GE(store->head_position(), backup->head_position + 500);

  // ---- restore: the copy opened as a store of its own ----
  auto reopened = open_sqlite_store(dest);
  ASSERT_TRUE(reopened) << reopened.status().to_string();
  std::shared_ptr<EventStore> restored = std::move(*reopened);
  const std::int64_t n = backup->head_position + 1;
  ASSERT_GT(n, 3000);
  EXPECT_EQ(restored->head_position(), backup->head_position);

  // Positions 0..n-1, each the same event as in the live store; every stream gap-free.
  std::map<std::string, std::vector<RecordedEvent>> streams;
  std::vector<RecordedEvent> log;
  for (std::int64_t from = 0;;) {
    auto mine = restored->read_all(from, 1000);
    ASSERT_TRUE(mine) << mine.status().to_string();
    auto live = store->read_all(from, mine->events.size());
    ASSERT_TRUE(live);
    ASSERT_EQ(live->events.size(), mine->events.size());
    for (std::size_t i = 0; i < mine->events.size(); ++i) {
      const auto& e = mine->events[i];
      ASSERT_EQ(e.position, static_cast<std::int64_t>(log.size())) << "gap before " << e.position;
      ASSERT_EQ(e.id, live->events[i].id);
      ASSERT_EQ(e.payload, live->events[i].payload);
      auto& s = streams[e.stream_id];
      ASSERT_EQ(e.version, static_cast<std::int64_t>(s.size())) << e.stream_id;
      s.push_back(e);
      log.push_back(e);
    }
    if (mine->end_of_log) break;
    from = mine->next_position;
  }
  ASSERT_EQ(static_cast<std::int64_t>(log.size()), n);
  for (const auto& [id, events] : streams) {
    auto v = restored->stream_version(id);
    ASSERT_TRUE(v);
    EXPECT_EQ(*v, static_cast<std::int64_t>(events.size()) - 1) << id;
  }

  // Checkpoints never point past the copy's log.
  auto projection_cp = restored->load_checkpoint("test.projection");
  ASSERT_TRUE(projection_cp);
  EXPECT_LE(*projection_cp, n);
  auto poison_cp = restored->load_checkpoint("test.poison");
  ASSERT_TRUE(poison_cp);
  EXPECT_LE(*poison_cp, n);

  // The projection's documents and inbox agree with each other and with the log: a stream's
  // document counts exactly the events recorded in the inbox, a prefix of the stream, and every
  // event before the checkpoint is in it. (The transaction is rolled back: it only reads.)
  Status checked = restored->transact([&](StoreTransaction& tx) -> Status {
    for (const auto& [id, events] : streams) {
      std::int64_t count = 0;
      auto doc = tx.get_document("counts", id);
      if (doc) {
        auto j = json::parse(*doc);
        count = j.at("count").get<std::int64_t>();
        EXPECT_EQ(j.at("last_version").get<std::int64_t>(), count - 1) << id;
      } else {
        EXPECT_EQ(doc.status().code(), StatusCode::not_found);
      }
      EXPECT_LE(count, static_cast<std::int64_t>(events.size())) << id;
      for (const auto& e : events) {
        auto fresh = tx.inbox_record("test.projection", e.id);
        EXPECT_TRUE(fresh);
        EXPECT_EQ(*fresh == InboxOutcome::already_recorded, e.version < count) << id << " v" << e.version;
        if (e.position < *projection_cp) {
          EXPECT_LT(e.version, count) << "before the checkpoint but not applied";
        }
      }
    }
    return Status::cancelled("read only");
  });
  EXPECT_EQ(checked.code(), StatusCode::cancelled);

  // Dead letters name events of the copy: failed ones are poison, parked ones wait behind an
  // earlier failed one of their stream; no poison event before the checkpoint went missing.
  auto dead = restored->list_dead_letters("test.poison");
  ASSERT_TRUE(dead);
  EXPECT_GE(dead->size(), 3u);
  std::map<std::string, std::int64_t> first_failed;  // stream -> position of its failed entry
  std::map<std::int64_t, bool> dead_positions;
  for (const auto& d : *dead) {
    ASSERT_LT(d.position, n);
    const auto& e = log[static_cast<std::size_t>(d.position)];
    EXPECT_EQ(d.event_id, e.id);
    EXPECT_EQ(d.stream_id, e.stream_id);
    dead_positions[d.position] = true;
    if (!d.parked) {
      EXPECT_TRUE(json::parse(e.payload).value("poison", false)) << d.position;
      first_failed.emplace(d.stream_id, d.position);
    }
  }
  for (const auto& d : *dead) {
    if (!d.parked) continue;
    auto it = first_failed.find(d.stream_id);
    ASSERT_NE(it, first_failed.end()) << "parked behind nothing: " << d.position;
    EXPECT_LT(it->second, d.position);
  }
  for (const auto& e : log) {
    if (e.position >= *poison_cp) break;
    if (json::parse(e.payload).value("poison", false)) {
      EXPECT_TRUE(dead_positions.count(e.position)) << e.position;
    }
  }

  // A bus on the restored store resumes the projection from its checkpoint; the inbox absorbs
  // what it had applied past it, and every stream ends fully counted.
  {
    EventBus resumed(restored, quick_bus());
    auto projection = std::make_shared<CountPerStream>();
    ASSERT_TRUE(resumed.register_handler(projection, no_retry()));
    ASSERT_TRUE(resumed.start());
    if (*projection_cp < n) {  // it may have been fully caught up when the snapshot was taken
      std::unique_lock lock(projection->mu);
      ASSERT_TRUE(projection->cv.wait_for(lock, 20s, [&] { return projection->last_position == n - 1; }));
    }
    (void)resumed.stop(std::chrono::steady_clock::now() + 5s);
  }
  for (const auto& entry : streams) {  // not a structured binding: clang 14 cannot capture one
    const std::string& id = entry.first;
    const auto length = static_cast<std::int64_t>(entry.second.size());
    Status st = restored->transact([&](StoreTransaction& tx) -> Status {
      auto doc = tx.get_document("counts", id);
      EXPECT_TRUE(doc) << id;
      if (doc) {
        EXPECT_EQ(json::parse(*doc).at("count").get<std::int64_t>(), length) << id;
      }
      return Status::ok();
    });
    EXPECT_TRUE(st);
  }
  auto dl = restored->list_dead_letters("test.projection");
  ASSERT_TRUE(dl);
  EXPECT_TRUE(dl->empty());

  restored->close();
  store->close();
  std::filesystem::remove_all(dir);
}

TEST(SqliteBackupTest, RefusesWhatItCannotDoAndLeavesNothingBehind) {
  const auto dir = temp_dir();
  auto opened = open_sqlite_store((dir / "events.db").string());
  ASSERT_TRUE(opened);
  auto& store = **opened;

  // An empty store backs up to an empty log.
  auto empty = backup_sqlite_store(store, (dir / "empty.db").string());
  ASSERT_TRUE(empty) << empty.status().to_string();
  EXPECT_EQ(empty->head_position, -1);
  {
    auto copy = open_sqlite_store((dir / "empty.db").string());
    ASSERT_TRUE(copy);
    EXPECT_EQ((*copy)->head_position(), -1);
  }

  ASSERT_TRUE(store.append("a-1", ExpectedVersion::no_stream(), {EventData{"", "A", "{}", {}}}));
  EXPECT_EQ(backup_sqlite_store(store, (dir / "empty.db").string()).status().code(), StatusCode::already_exists);
  EXPECT_EQ(backup_sqlite_store(store, (dir / "events.db").string()).status().code(), StatusCode::already_exists);
  EXPECT_EQ(backup_sqlite_store(store, "").status().code(), StatusCode::invalid_argument);

  // A leftover .partial (an interrupted backup, or one running) is not overwritten.
  std::ofstream(dir / "busy.db.partial") << "someone else's";
  EXPECT_EQ(backup_sqlite_store(store, (dir / "busy.db").string()).status().code(), StatusCode::already_exists);
  EXPECT_FALSE(std::filesystem::exists(dir / "busy.db"));
  EXPECT_EQ(std::filesystem::file_size(dir / "busy.db.partial"), 14u);

  auto memory = open_store("memory:");
  ASSERT_TRUE(memory);
  EXPECT_EQ(backup_sqlite_store(**memory, (dir / "m.db").string()).status().code(), StatusCode::invalid_argument);
  EXPECT_FALSE(std::filesystem::exists(dir / "m.db.partial"));

  // A callback that throws fails the backup and removes the partial copy.
  BackupOptions bo;
  bo.on_step = [](const BackupProgress&) { throw std::runtime_error("no"); };
  EXPECT_EQ(backup_sqlite_store(store, (dir / "thrown.db").string(), bo).status().code(), StatusCode::internal);
  EXPECT_FALSE(std::filesystem::exists(dir / "thrown.db"));
  EXPECT_FALSE(std::filesystem::exists(dir / "thrown.db.partial"));

  auto one = backup_sqlite_store(store, (dir / "one.db").string());
  ASSERT_TRUE(one);
  EXPECT_EQ(one->head_position, 0);
  store.close();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace herald
