// The SQLite store under sustained load: appends at saturation while tailing readers keep
// snapshots open, for HERALD_SUSTAINED_SECONDS (default 60). A passive checkpoint alone never
// resets the WAL while readers overlap (checkpoint starvation), so without escalation the WAL
// grows for as long as the load lasts. Asserted: the WAL never passes twice its limit, every
// reader saw every event in order, and the store holds exactly what was acknowledged.
#include <gtest/gtest.h>
#include <stdlib.h>  // mkdtemp

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "herald/event_store.h"
#include "store/sqlite/sqlite_event_store.h"

namespace herald {
namespace {

using namespace std::chrono_literals;

int sustained_seconds() {
  const char* v = std::getenv("HERALD_SUSTAINED_SECONDS");
  return v != nullptr && std::atoi(v) > 0 ? std::atoi(v) : 60;
}

TEST(SqliteSustained, TheWalStaysUnderTwiceItsLimitWhileReadersTail) {
  std::string pattern = (std::filesystem::temp_directory_path() / "herald-sustained-XXXXXX").string();
  ASSERT_NE(mkdtemp(pattern.data()), nullptr);
  const std::filesystem::path dir = pattern;
  const std::string path = (dir / "events.db").string();
  StoreOptions options;
  options.durable = false;  // the disk's fsync rate is not what this test is about
  const char* limit_mib = std::getenv("HERALD_SUSTAINED_WAL_LIMIT_MIB");
  options.sqlite_wal_limit_bytes = std::size_t(limit_mib != nullptr ? std::atoi(limit_mib) : 8) << 20;
  detail::SqliteTuning tuning;
  // A small tail cache sends most tail reads to the reader pool, as a store much larger than its
  // cache does: the snapshots that starve checkpoints.
  tuning.cache_max_events = 2'000;
  auto opened = detail::open_sqlite_store("sqlite://" + path, path, options, tuning);
  ASSERT_TRUE(opened) << opened.status().to_string();
  std::shared_ptr<EventStore> store = std::move(*opened);

  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(sustained_seconds());
  std::atomic<bool> stop{false};
  std::atomic<std::int64_t> acknowledged{0};
  std::atomic<std::uintmax_t> wal_max{0};
  std::atomic<int> failures{0};

  std::vector<std::thread> threads;
  for (int w = 0; w < 2; ++w) {
    threads.emplace_back([&, w] {
      const std::string payload = "{\"pad\":\"" + std::string(180, 'x') + "\"}";  // ~200 bytes
      for (int i = 0; !stop.load(); ++i) {
        std::vector<EventData> batch(20);
        for (auto& e : batch) {
          e.type = "Sustained";
          e.payload = payload;
        }
        auto r = store->append("s-" + std::to_string(w) + "-" + std::to_string(i % 1000), ExpectedVersion::any(),
                               std::move(batch));
        if (!r) {
          ++failures;
          return;
        }
        acknowledged += 20;
      }
    });
  }
  std::vector<std::int64_t> seen(4, 0);
  for (int r = 0; r < 4; ++r) {
    threads.emplace_back([&, r] {
      std::int64_t from = 0;
      // Tails lag differently so their snapshots overlap.
      const std::size_t page = 50 + 150 * static_cast<std::size_t>(r);
      while (!stop.load()) {
        auto slice = store->read_all(from, page);
        if (!slice) {
          ++failures;
          return;
        }
        for (const auto& e : slice->events) {
          if (e.position != from) {
            ++failures;
            return;
          }
          ++from;
        }
        if (slice->end_of_log) (void)store->wait_for(from - 1, 20ms);
      }
      seen[static_cast<std::size_t>(r)] = from;
    });
  }
  threads.emplace_back([&] {
    std::error_code ec;
    while (!stop.load()) {
      auto size = std::filesystem::file_size(path + "-wal", ec);
      if (!ec && size > wal_max.load()) wal_max = size;
      std::this_thread::sleep_for(5ms);
    }
  });
  while (std::chrono::steady_clock::now() < deadline && failures.load() == 0) std::this_thread::sleep_for(50ms);
  stop = true;
  for (auto& t : threads) t.join();

  ASSERT_EQ(failures.load(), 0);
  const std::uintmax_t limit = options.sqlite_wal_limit_bytes;
  auto counters = detail::sqlite_counters(*store);
  ASSERT_TRUE(counters);
  std::printf("appended %lld events; WAL max %.1f MiB (limit %.1f MiB, counters %.1f MiB); %lld escalated checkpoints (%lld busy)\n",
              static_cast<long long>(acknowledged.load()), static_cast<double>(wal_max.load()) / (1 << 20),
              static_cast<double>(limit) / (1 << 20), static_cast<double>(counters->wal_max_bytes) / (1 << 20),
              static_cast<long long>(counters->escalated_checkpoints), static_cast<long long>(counters->escalated_busy));
  EXPECT_GT(acknowledged.load(), 0);
  EXPECT_LE(wal_max.load(), 2 * limit);
  EXPECT_LE(static_cast<std::uintmax_t>(counters->wal_max_bytes), 2 * limit);
  EXPECT_EQ(store->head_position() + 1, acknowledged.load());
  auto stats = store->stats();
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->total_events, acknowledged.load());
  EXPECT_GE(stats->bytes_on_disk, stats->wal_bytes);
  for (auto s : seen) EXPECT_GT(s, 0);
  store->close();
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

}  // namespace
}  // namespace herald
