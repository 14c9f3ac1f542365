// Concurrent read-modify-write transactions on one PostgreSQL document, as two lanes of a stats
// handler (or two instances) do: no update may be lost. Needs HERALD_TEST_POSTGRES_URL at run time
// (skipped otherwise); uses a fresh document key in that database.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "herald/event_store.h"
#include "herald/id.h"

namespace herald {
namespace {

TEST(PostgresTransact, ConcurrentReadModifyWritesLoseNoUpdate) {
  const char* url = std::getenv("HERALD_TEST_POSTGRES_URL");
  if (url == nullptr || *url == '\0') GTEST_SKIP() << "HERALD_TEST_POSTGRES_URL is not set";
  auto opened = open_store(url);
  ASSERT_TRUE(opened.is_ok()) << opened.status().to_string();
  std::shared_ptr<EventStore> store(std::move(*opened));
  const std::string key = "counter-" + new_uuid_v7();
  constexpr int kThreads = 4;
  constexpr int kIncrements = 25;

  auto increment = [&]() -> Status {
    return store->transact([&](StoreTransaction& tx) -> Status {
      std::int64_t n = 0;
      auto doc = tx.get_document("multi_test", key);
      if (doc) n = std::stoll(*doc);
      else if (doc.status().code() != StatusCode::not_found) return doc.status();
      return tx.put_document("multi_test", key, std::to_string(n + 1));
    });
  };
  std::vector<std::thread> threads;
  std::vector<int> gave_up(kThreads, 0);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kIncrements; ++i) {
        // A conflict that outlasts transact's own re-runs comes back as unavailable (retryable),
        // as it would to a handler; anything else is a failure.
        Status st;
        for (int tries = 0; tries < 100; ++tries) {
          st = increment();
          if (st.code() != StatusCode::unavailable) break;
        }
        if (!st.is_ok()) ++gave_up[static_cast<std::size_t>(t)];
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(gave_up[static_cast<std::size_t>(t)], 0) << "thread " << t;
  std::string final_doc;
  Status read = store->transact([&](StoreTransaction& tx) -> Status {
    auto doc = tx.get_document("multi_test", key);
    if (!doc) return doc.status();
    final_doc = *doc;
    return tx.delete_document("multi_test", key);
  });
  ASSERT_TRUE(read.is_ok()) << read.to_string();
  EXPECT_EQ(std::stoll(final_doc), kThreads * kIncrements);
}

}  // namespace
}  // namespace herald
