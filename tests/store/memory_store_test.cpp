// Behaviour specific to the memory backend, beyond the shared contract suite.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "herald/event_store.h"
#include "store/memory/memory_event_store.h"

namespace herald {
namespace {

// A sparse filter over a long log returns partial (even empty) pages that still make progress,
// instead of scanning the whole log under the store's lock in one call.
TEST(MemoryStore, SparseReadAllStopsEarlyButMakesProgress) {
  auto opened = detail::open_memory_store({});
  ASSERT_TRUE(opened);
  EventStore& store = **opened;
  constexpr int kBatches = 7;  // 70,000 events: past one call's scan budget (65,536)
  constexpr int kPerBatch = 10'000;
  for (int b = 0; b < kBatches; ++b) {
    std::vector<EventData> batch(kPerBatch);
    for (auto& e : batch) {
      e.type = "Common";
      e.payload.assign(1, '1');  // not = "1": g++ 12 at -O3 reports a false -Wrestrict (GCC PR 105329)
    }
    if (b == kBatches - 1) batch.back().type = "Rare";
    ASSERT_TRUE(store.append("s-" + std::to_string(b), ExpectedVersion::no_stream(), std::move(batch)));
  }
  const std::int64_t head = store.head_position();
  ASSERT_EQ(head, kBatches * kPerBatch - 1);

  ReadFilter rare;
  rare.event_types = {"Rare"};
  std::int64_t from = 0;
  int pages = 0;
  std::vector<std::int64_t> found;
  while (true) {
    auto slice = store.read_all(from, 10, rare);
    ASSERT_TRUE(slice);
    ++pages;
    for (const auto& e : slice->events) found.push_back(e.position);
    if (slice->end_of_log) {
      EXPECT_EQ(slice->next_position, head + 1);
      break;
    }
    ASSERT_GT(slice->next_position, from);
    from = slice->next_position;
  }
  EXPECT_EQ(found, std::vector<std::int64_t>{head});
  EXPECT_GT(pages, 1) << "one call scanned the whole log";
}

TEST(MemoryStore, UrlAndNoBytesOnDisk) {
  auto opened = detail::open_memory_store({});
  ASSERT_TRUE(opened);
  EXPECT_EQ((*opened)->url(), "memory:");
  auto stats = (*opened)->stats();
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->bytes_on_disk, 0);
}

}  // namespace
}  // namespace herald
