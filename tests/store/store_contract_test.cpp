// The EventStore contract (include/herald/event_store.h), written once and run unchanged against
// every backend registered in test_backends.cpp. A backend passes when every test here passes;
// tests that need data to survive reopening skip non-persistent backends.
//
// Idempotent retries: a retry is "the same" as an earlier successful append when it carries that
// append's ids in the same order and its expected version would have matched the stream just
// before that append was written. The tests below only use cases where this and the literal
// reading ("the identical ExpectedVersion value") agree.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "herald/clock.h"
#include "herald/event_store.h"
#include "herald/id.h"
#include "test_backends.h"

namespace herald {
namespace {

using namespace std::chrono_literals;
using testing::Backend;

// 2026-01-01T00:00:00Z: every test's ManualClock starts here.
const Timestamp kStart = timestamp_from_micros(1'767'225'600'000'000);

EventData event(std::string type, std::string payload = "{}", std::string correlation = {}) {
  EventData e;
  e.id = new_uuid_v7();
  e.type = std::move(type);
  e.payload = std::move(payload);
  e.metadata.correlation_id = std::move(correlation);
  return e;
}

std::vector<EventData> events(int n, const std::string& type = "Thing") {
  std::vector<EventData> out;
  for (int i = 0; i < n; ++i) out.push_back(event(type, "{\"i\":" + std::to_string(i) + "}"));
  return out;
}

std::vector<std::int64_t> positions_of(const std::vector<RecordedEvent>& es) {
  std::vector<std::int64_t> out;
  for (const auto& e : es) out.push_back(e.position);
  return out;
}

std::vector<std::int64_t> range(std::int64_t first, std::int64_t last) {
  std::vector<std::int64_t> out;
  for (std::int64_t i = first; i <= last; ++i) out.push_back(i);
  return out;
}

class StoreContract : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    clock_ = std::make_shared<ManualClock>(kStart);
    options_.clock = clock_;
    url_ = GetParam().fresh_url();
    open();
  }

  void TearDown() override { store_.reset(); }

  // (Re)opens url_ with options_; fails the test when the backend cannot open it.
  void open() {
    auto s = testing::open_backend(GetParam(), url_, options_);
    ASSERT_TRUE(s) << url_ << ": " << s.status().to_string();
    store_ = std::move(*s);
  }

  void reopen() {
    store_->close();
    store_.reset();
    open();
  }

  // Appends and asserts success.
  AppendResult must_append(std::string_view stream, ExpectedVersion expected,
                           std::vector<EventData> es) {
    auto r = store_->append(stream, expected, std::move(es));
    EXPECT_TRUE(r) << r.status().to_string();
    return r ? *r : AppendResult{-1, -1, -1};
  }

  std::vector<RecordedEvent> read_forwards(std::string_view stream, std::int64_t from = 0,
                                           std::size_t max = 1000) {
    auto r = store_->read_stream(stream, from, max, ReadDirection::forwards);
    EXPECT_TRUE(r) << r.status().to_string();
    return r ? *r : std::vector<RecordedEvent>{};
  }

  // Every event matching `filter`, read in pages of `page` events through read_all; checks the
  // paging invariants. (EventStore's own read_all_shared is one read_all call, wrapped.)
  std::vector<RecordedEvent> read_all_paged(const ReadFilter& filter, std::size_t page) {
    return read_paged(filter, page, [&](std::int64_t from) {
      return store_->EventStore::read_all_shared(from, page, filter);
    });
  }

  // The same through the backend's read_all_shared, which may hand out its own events.
  std::vector<RecordedEvent> read_all_shared_paged(const ReadFilter& filter, std::size_t page) {
    return read_paged(filter, page,
                      [&](std::int64_t from) { return store_->read_all_shared(from, page, filter); });
  }

  // Pages through read(from) -> Result<SharedSlice> from position 0 to the end of the log,
  // checking that every page holds at most `page` matching events in position order below its
  // next_position, and that a page which is not the end makes progress (it may stop early, even
  // empty). Returns copies of the events.
  template <class Read>
  std::vector<RecordedEvent> read_paged(const ReadFilter& filter, std::size_t page, Read read) {
    std::vector<RecordedEvent> out;
    std::int64_t from = 0;
    for (int guard = 0; guard < 10'000; ++guard) {
      Result<SharedSlice> slice = read(from);
      EXPECT_TRUE(slice) << slice.status().to_string();
      if (!slice) break;
      EXPECT_LE(slice->events.size(), page);
      if (!slice->events.empty()) {
        EXPECT_NE(slice->owner, nullptr) << "events without an owner";
      }
      for (const RecordedEvent* e : slice->events) {
        EXPECT_NE(e, nullptr);
        if (e == nullptr) return out;
        EXPECT_GE(e->position, from);
        EXPECT_LT(e->position, slice->next_position);
        EXPECT_TRUE(filter.matches(*e)) << "position " << e->position;
        if (!out.empty()) {
          EXPECT_GT(e->position, out.back().position);
        }
        out.push_back(*e);
      }
      EXPECT_GE(slice->next_position, from);
      if (slice->end_of_log) {
        EXPECT_EQ(slice->next_position, store_->head_position() + 1);
        return out;
      }
      EXPECT_GT(slice->next_position, from) << "a page that is not the end must make progress";
      from = slice->next_position;
    }
    ADD_FAILURE() << "paging never reached end_of_log";
    return out;
  }

  std::int64_t total_events() {
    auto s = store_->stats();
    EXPECT_TRUE(s) << s.status().to_string();
    return s ? s->total_events : -1;
  }

  bool persistent() const { return GetParam().persistent; }

  std::shared_ptr<ManualClock> clock_;
  StoreOptions options_;
  std::string url_;
  // Time passes for the store's leases, whichever clock judges them (see Backend::pass_lease_time).
  void pass_lease_time(std::chrono::microseconds elapsed) {
    clock_->advance(elapsed);
    if (GetParam().pass_lease_time) GetParam().pass_lease_time(url_, elapsed);
  }
  std::unique_ptr<EventStore> store_;
};

// ---------------------------------------------------------------- expected versions

TEST_P(StoreContract, AnyAppendsToAbsentAndExistingStreams) {
  auto a = must_append("order-1", ExpectedVersion::any(), events(2));
  EXPECT_EQ(a, (AppendResult{0, 1, 1}));
  auto b = must_append("order-1", ExpectedVersion::any(), events(1));
  EXPECT_EQ(b, (AppendResult{2, 2, 2}));
  auto v = store_->stream_version("order-1");
  ASSERT_TRUE(v);
  EXPECT_EQ(*v, 2);
}

TEST_P(StoreContract, NoStreamCreatesOnceThenConflicts) {
  EXPECT_EQ(must_append("user-1", ExpectedVersion::no_stream(), events(1)), (AppendResult{0, 0, 0}));
  auto again = store_->append("user-1", ExpectedVersion::no_stream(), events(1));
  ASSERT_FALSE(again);
  EXPECT_EQ(again.status().code(), StatusCode::wrong_expected_version);
  EXPECT_EQ(again.status().actual_version(), 0);
  EXPECT_EQ(store_->head_position(), 0);
}

TEST_P(StoreContract, StreamExistsFailsOnAbsentStreamAndAppendsToExisting) {
  auto absent = store_->append("cart-1", ExpectedVersion::stream_exists(), events(1));
  ASSERT_FALSE(absent);
  EXPECT_EQ(absent.status().code(), StatusCode::wrong_expected_version);
  EXPECT_EQ(absent.status().actual_version(), kNoStreamVersion);
  EXPECT_EQ(store_->head_position(), -1);

  must_append("cart-1", ExpectedVersion::no_stream(), events(1));
  EXPECT_EQ(must_append("cart-1", ExpectedVersion::stream_exists(), events(2)), (AppendResult{1, 2, 2}));
}

TEST_P(StoreContract, ExactMatchesOnlyTheCurrentVersion) {
  auto on_absent = store_->append("acct-1", ExpectedVersion::exact(0), events(1));
  ASSERT_FALSE(on_absent);
  EXPECT_EQ(on_absent.status().code(), StatusCode::wrong_expected_version);
  EXPECT_EQ(on_absent.status().actual_version(), kNoStreamVersion);

  must_append("acct-1", ExpectedVersion::no_stream(), events(3));  // versions 0..2
  EXPECT_EQ(must_append("acct-1", ExpectedVersion::exact(2), events(1)), (AppendResult{3, 3, 3}));

  for (std::int64_t wrong : {0, 2, 4, 100}) {
    SCOPED_TRACE("exact(" + std::to_string(wrong) + ")");
    auto r = store_->append("acct-1", ExpectedVersion::exact(wrong), events(2));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.status().code(), StatusCode::wrong_expected_version);
    EXPECT_EQ(r.status().actual_version(), 3);
  }
  EXPECT_EQ(store_->head_position(), 3);
  EXPECT_EQ(must_append("acct-1", ExpectedVersion::exact(3), events(1)), (AppendResult{4, 4, 4}));
}

TEST_P(StoreContract, VersionsArePerStreamAndPositionsGlobal) {
  EXPECT_EQ(must_append("a-1", ExpectedVersion::no_stream(), events(2)), (AppendResult{0, 1, 1}));
  EXPECT_EQ(must_append("b-1", ExpectedVersion::no_stream(), events(1)), (AppendResult{2, 2, 0}));
  EXPECT_EQ(must_append("a-1", ExpectedVersion::exact(1), events(1)), (AppendResult{3, 3, 2}));
  auto a = read_forwards("a-1");
  ASSERT_EQ(a.size(), 3u);
  EXPECT_EQ(positions_of(a), (std::vector<std::int64_t>{0, 1, 3}));
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i].version, static_cast<std::int64_t>(i));
}

TEST_P(StoreContract, RacingExactAppendsHaveOneWinnerPerVersion) {
  constexpr int kThreads = 8;
  constexpr int kWinsPerThread = 12;
  const std::string stream = "race-1";
  must_append(stream, ExpectedVersion::no_stream(), events(1));  // version 0
  std::mutex mu;                        // guards winners
  std::map<std::int64_t, int> winners;  // stream version -> winning thread
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      int wins = 0;
      for (int attempt = 0; wins < kWinsPerThread && attempt < 100'000; ++attempt) {
        auto v = store_->stream_version(stream);
        if (!v) {
          ++errors;
          return;
        }
        auto r = store_->append(stream, ExpectedVersion::exact(*v),
                                {event("Raced", "{\"thread\":" + std::to_string(t) + "}")});
        if (r) {
          ++wins;
          std::lock_guard lock(mu);
          if (!winners.emplace(r->stream_version, t).second) ++errors;  // two winners
          if (r->stream_version != *v + 1 || r->first_position != r->last_position) ++errors;
        } else if (r.status().code() != StatusCode::wrong_expected_version ||
                   !r.status().actual_version() || *r.status().actual_version() <= *v) {
          ++errors;  // a conflict must report a version past the one we expected
        }
      }
      if (wins != kWinsPerThread) ++errors;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(errors.load(), 0);

  constexpr std::int64_t n = 1 + kThreads * kWinsPerThread;
  ASSERT_EQ(static_cast<std::int64_t>(winners.size()), n - 1);
  EXPECT_EQ(winners.begin()->first, 1);
  EXPECT_EQ(winners.rbegin()->first, n - 1);
  auto all = read_forwards(stream, 0, 10'000);
  ASSERT_EQ(static_cast<std::int64_t>(all.size()), n);
  std::map<int, int> per_thread;
  for (std::int64_t i = 0; i < n; ++i) {
    const RecordedEvent& e = all[static_cast<std::size_t>(i)];
    EXPECT_EQ(e.version, i);
    EXPECT_EQ(e.position, i);
    if (i > 0) {
      EXPECT_EQ(e.payload, "{\"thread\":" + std::to_string(winners[i]) + "}");
      ++per_thread[winners[i]];
    }
  }
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(per_thread[t], kWinsPerThread);
  EXPECT_EQ(store_->head_position(), n - 1);
}

// ---------------------------------------------------------------- atomicity

TEST_P(StoreContract, FailingMultiEventAppendWritesNothingAndConsumesNoPosition) {
  must_append("s-1", ExpectedVersion::no_stream(), events(2));  // positions 0, 1
  const std::string taken = read_forwards("s-1")[1].id;

  auto bad_payload = events(3);
  bad_payload[2].payload = "{not json";
  auto r1 = store_->append("s-1", ExpectedVersion::any(), bad_payload);
  ASSERT_FALSE(r1);
  EXPECT_EQ(r1.status().code(), StatusCode::invalid_argument);

  auto dup = events(3);
  dup[1].id = taken;
  auto r2 = store_->append("s-1", ExpectedVersion::any(), dup);
  ASSERT_FALSE(r2);
  EXPECT_EQ(r2.status().code(), StatusCode::already_exists);

  auto r3 = store_->append("s-1", ExpectedVersion::exact(7), events(3));
  ASSERT_FALSE(r3);
  EXPECT_EQ(r3.status().code(), StatusCode::wrong_expected_version);

  EXPECT_EQ(store_->head_position(), 1);
  EXPECT_EQ(total_events(), 2);
  EXPECT_EQ(read_forwards("s-1").size(), 2u);
  // The next successful append continues without a gap.
  EXPECT_EQ(must_append("s-1", ExpectedVersion::exact(1), events(3)), (AppendResult{2, 4, 4}));
  EXPECT_EQ(positions_of(read_all_paged({}, 100)), range(0, 4));
}

// ---------------------------------------------------------------- idempotent retries

TEST_P(StoreContract, RetryWithSameExpectedReturnsOriginalResultForEveryKind) {
  struct Case {
    std::string stream;
    ExpectedVersion expected;
    int existing;  // events in the stream before the original append
  };
  const std::vector<Case> cases = {
      {"retry-nostream", ExpectedVersion::no_stream(), 0},
      {"retry-exact", ExpectedVersion::exact(1), 2},
      {"retry-any", ExpectedVersion::any(), 1},
      {"retry-exists", ExpectedVersion::stream_exists(), 3},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.stream + " " + c.expected.to_string());
    if (c.existing > 0) must_append(c.stream, ExpectedVersion::any(), events(c.existing));
    const auto batch = events(3);
    const AppendResult original = must_append(c.stream, c.expected, batch);

    // Immediately, and again after the stream and the log moved on.
    for (int round = 0; round < 2; ++round) {
      const std::int64_t head = store_->head_position();
      const std::int64_t total = total_events();
      auto retry = store_->append(c.stream, c.expected, batch);
      ASSERT_TRUE(retry) << retry.status().to_string();
      EXPECT_EQ(*retry, original);
      EXPECT_EQ(store_->head_position(), head);
      EXPECT_EQ(total_events(), total);
      must_append(c.stream, ExpectedVersion::any(), events(1));
      must_append("other-1", ExpectedVersion::any(), events(1));
    }
  }
}

TEST_P(StoreContract, RetryWithDifferentExpectedOrPartialOverlapFails) {
  must_append("r-1", ExpectedVersion::no_stream(), events(1));  // version 0
  const auto batch = events(2);
  EXPECT_EQ(must_append("r-1", ExpectedVersion::exact(0), batch), (AppendResult{1, 2, 2}));
  must_append("r-1", ExpectedVersion::exact(2), events(1));  // stream at 3, head 3
  const std::int64_t total = total_events();

  // An expected version that does not match the stream now: a plain conflict.
  for (auto expected : {ExpectedVersion::exact(1), ExpectedVersion::exact(2), ExpectedVersion::no_stream()}) {
    SCOPED_TRACE(expected.to_string());
    auto r = store_->append("r-1", expected, batch);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.status().code(), StatusCode::wrong_expected_version);
    EXPECT_EQ(r.status().actual_version(), 3);
  }
  // An expected version that matches the stream now but not the original append: the ids are
  // taken.
  {
    auto r = store_->append("r-1", ExpectedVersion::exact(3), batch);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.status().code(), StatusCode::already_exists);
  }
  // Partial overlaps with `any`: a prefix, a reordering, and stored ids mixed with new ones.
  std::vector<std::vector<EventData>> overlaps = {
      {batch[0]}, {batch[1], batch[0]}, {batch[0], batch[1], event("New")}, {event("New"), batch[1]}};
  for (std::size_t i = 0; i < overlaps.size(); ++i) {
    SCOPED_TRACE("overlap " + std::to_string(i));
    auto r = store_->append("r-1", ExpectedVersion::any(), overlaps[i]);
    ASSERT_FALSE(r) << "appended at positions " << r->first_position << ".." << r->last_position
                    << ", stream version " << r->stream_version;
    EXPECT_EQ(r.status().code(), StatusCode::already_exists);
  }
  EXPECT_EQ(total_events(), total);
  EXPECT_EQ(store_->head_position(), 3);
}

TEST_P(StoreContract, ConcurrentRetriesOfOneBatchWriteItOnce) {
  constexpr int kThreads = 6;
  must_append("seed-1", ExpectedVersion::any(), events(1));
  const auto batch = events(3);
  std::vector<Result<AppendResult>> results(kThreads, Status::internal("not run"));
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      while (!go) std::this_thread::yield();
      results[static_cast<std::size_t>(t)] = store_->append("dup-1", ExpectedVersion::no_stream(), batch);
    });
  }
  go = true;
  for (auto& th : threads) th.join();
  for (const auto& r : results) {
    ASSERT_TRUE(r) << r.status().to_string();
    EXPECT_EQ(*r, (AppendResult{1, 3, 2}));
  }
  EXPECT_EQ(total_events(), 4);
  auto stored = read_forwards("dup-1");
  ASSERT_EQ(stored.size(), 3u);
  for (std::size_t i = 0; i < stored.size(); ++i) EXPECT_EQ(stored[i].id, batch[i].id);
}

TEST_P(StoreContract, EventIdStoredInAnotherStreamIsAlreadyExists) {
  const auto batch = events(1);
  must_append("first-1", ExpectedVersion::no_stream(), batch);
  for (auto expected : {ExpectedVersion::no_stream(), ExpectedVersion::any()}) {
    SCOPED_TRACE(expected.to_string());
    auto r = store_->append("second-1", expected, batch);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.status().code(), StatusCode::already_exists);
  }
  auto v = store_->stream_version("second-1");
  ASSERT_TRUE(v);
  EXPECT_EQ(*v, kNoStreamVersion);
  EXPECT_EQ(total_events(), 1);
}

TEST_P(StoreContract, EmptyIdsAreFilledWithFreshUuids) {
  std::vector<EventData> es(2);
  for (auto& e : es) {
    e.type = "Anon";
    e.payload = "{}";
  }
  must_append("anon-1", ExpectedVersion::any(), es);
  auto stored = read_forwards("anon-1");
  ASSERT_EQ(stored.size(), 2u);
  EXPECT_TRUE(is_uuid(stored[0].id)) << stored[0].id;
  EXPECT_TRUE(is_uuid(stored[1].id)) << stored[1].id;
  EXPECT_NE(stored[0].id, stored[1].id);
}

// ---------------------------------------------------------------- bad input

TEST_P(StoreContract, BadInputIsInvalidArgumentAndWritesNothing) {
  options_.max_payload_bytes = 64;
  options_.max_events_per_append = 4;
  reopen();
  must_append("good-1", ExpectedVersion::no_stream(), events(1));

  struct Case {
    std::string name;
    std::string stream;
    std::vector<EventData> events;
  };
  std::vector<Case> cases;
  cases.push_back({"empty stream id", "", events(1)});
  cases.push_back({"stream id over 256 bytes", std::string(257, 's'), events(1)});
  cases.push_back({"no events", "bad-1", {}});
  {
    auto es = events(2);
    es[1].type = "";
    cases.push_back({"empty type", "bad-1", es});
  }
  for (std::string payload : {"", "{", "{\"a\":}", "not json", "{} {}"}) {
    auto es = events(1);
    es[0].payload = payload;
    cases.push_back({"payload '" + payload + "'", "bad-1", es});
  }
  {
    auto es = events(1);
    es[0].payload = "\"" + std::string(63, 'x') + "\"";  // 65 bytes of valid JSON
    cases.push_back({"payload over max_payload_bytes", "bad-1", es});
  }
  cases.push_back({"more than max_events_per_append", "bad-1", events(5)});
  for (std::string id : {"x", "0192b3c4-d5e6-7f80-9a1b-2c3d4e5f607", "0192b3c4d5e67f809a1b2c3d4e5f6071z",
                         "0192b3c4-d5e6-7f80-9a1b-2c3d4e5f607g"}) {
    auto es = events(1);
    es[0].id = id;
    cases.push_back({"malformed id '" + id + "'", "bad-1", es});
  }
  {
    auto es = events(3);
    es[2].id = es[0].id;
    cases.push_back({"duplicate id in one append", "bad-1", es});
  }

  for (auto& c : cases) {
    SCOPED_TRACE(c.name);
    for (auto expected : {ExpectedVersion::any(), ExpectedVersion::no_stream()}) {
      auto r = store_->append(c.stream, expected, c.events);
      ASSERT_FALSE(r);
      EXPECT_EQ(r.status().code(), StatusCode::invalid_argument) << r.status().to_string();
    }
    EXPECT_EQ(store_->head_position(), 0);
    EXPECT_EQ(total_events(), 1);
    if (!c.stream.empty() && c.stream.size() <= 256) {
      auto v = store_->stream_version(c.stream);
      ASSERT_TRUE(v);
      EXPECT_EQ(*v, kNoStreamVersion);
    }
  }
  auto stats = store_->stats();
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->stream_count, 1);
  // The limits are inclusive.
  auto at_limit = events(4);
  at_limit[0].payload = "\"" + std::string(62, 'x') + "\"";  // 64 bytes
  EXPECT_EQ(must_append(std::string(256, 's'), ExpectedVersion::no_stream(), at_limit),
            (AppendResult{1, 4, 3}));
}

// Payloads are re-serialised recursively when read back (the admin API, projections), so the
// store refuses any nested deeper than kMaxJsonDepth, however the nesting is spelt.
TEST_P(StoreContract, PayloadsNestedTooDeepAreRefused) {
  auto nested = [](std::size_t depth, char open, char close) {
    return std::string(depth, open) + std::string(depth, close);
  };
  const std::size_t limit = herald::kMaxJsonDepth;
  for (auto [open, close] : {std::pair{'[', ']'}, std::pair{'{', '}'}}) {
    std::string too_deep = open == '[' ? nested(limit + 1, '[', ']') : "";
    if (open == '{') {
      for (std::size_t i = 0; i <= limit; ++i) too_deep += "{\"a\":";
      too_deep += "1" + std::string(limit + 1, '}');
    }
    for (std::size_t depth : {limit + 1, std::size_t{100'000}}) {
      auto es = events(1);
      es[0].payload = depth == limit + 1 ? too_deep : nested(depth, '[', ']');
      auto r = store_->append("deep-1", ExpectedVersion::any(), es);
      ASSERT_FALSE(r) << "depth " << depth;
      EXPECT_EQ(r.status().code(), StatusCode::invalid_argument) << r.status().to_string();
    }
  }
  EXPECT_EQ(total_events(), 0);
  auto at_limit = events(1);
  at_limit[0].payload = nested(limit, '[', ']');
  must_append("deep-1", ExpectedVersion::no_stream(), at_limit);
  auto back = store_->read_stream("deep-1", 0, 10, ReadDirection::forwards);
  ASSERT_TRUE(back);
  ASSERT_EQ(back->size(), 1u);
  EXPECT_EQ((*back)[0].payload, at_limit[0].payload);
}

TEST_P(StoreContract, BadReadArgumentsAreInvalidArgument) {
  must_append("s-1", ExpectedVersion::any(), events(1));
  auto empty = store_->read_stream("", 0, 10, ReadDirection::forwards);
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.status().code(), StatusCode::invalid_argument);
  auto negative = store_->read_stream("s-1", -1, 10, ReadDirection::forwards);
  ASSERT_FALSE(negative);
  EXPECT_EQ(negative.status().code(), StatusCode::invalid_argument);
  auto negative_back = store_->read_stream("s-1", -5, 10, ReadDirection::backwards);
  ASSERT_FALSE(negative_back);
  EXPECT_EQ(negative_back.status().code(), StatusCode::invalid_argument);
  auto version = store_->stream_version("");
  ASSERT_FALSE(version);
  EXPECT_EQ(version.status().code(), StatusCode::invalid_argument);
}

// ---------------------------------------------------------------- read_stream

TEST_P(StoreContract, ReadStreamOfAbsentStreamIsNotFound) {
  must_append("present-1", ExpectedVersion::any(), events(1));
  for (auto dir : {ReadDirection::forwards, ReadDirection::backwards}) {
    auto r = store_->read_stream("absent-1", 0, 10, dir);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.status().code(), StatusCode::not_found);
  }
  auto v = store_->stream_version("absent-1");
  ASSERT_TRUE(v);
  EXPECT_EQ(*v, kNoStreamVersion);
}

TEST_P(StoreContract, RecordedEventCarriesEverythingAppended) {
  EventData e = event("OrderCreated", R"({"total": 12.5, "items": ["a", "b"], "note": "ünï"})", "corr-1");
  e.metadata.causation_id = "cause-1";
  e.metadata.actor = "user-7";
  e.metadata.extra = {{"ip", "10.0.0.1"}, {"tenant", "acme"}};
  clock_->advance(1234567us);
  must_append("filler-1", ExpectedVersion::any(), events(1));
  must_append("order-42", ExpectedVersion::no_stream(), {e});

  auto got = read_forwards("order-42");
  ASSERT_EQ(got.size(), 1u);
  const RecordedEvent& r = got[0];
  EXPECT_EQ(r.stream_id, "order-42");
  EXPECT_EQ(r.category(), "order");
  EXPECT_EQ(r.version, 0);
  EXPECT_EQ(r.position, 1);
  EXPECT_EQ(to_micros(r.recorded_at), to_micros(kStart + 1234567us));
  EXPECT_EQ(r.id, e.id);
  EXPECT_EQ(r.type, e.type);
  EXPECT_EQ(r.payload, e.payload);
  EXPECT_EQ(r.metadata, e.metadata);

  auto all = store_->read_all(1, 1);
  ASSERT_TRUE(all);
  ASSERT_EQ(all->events.size(), 1u);
  EXPECT_EQ(all->events[0].id, e.id);
  EXPECT_EQ(all->events[0].metadata, e.metadata);
  EXPECT_EQ(all->events[0].payload, e.payload);
}

TEST_P(StoreContract, ReadStreamForwards) {
  must_append("f-1", ExpectedVersion::no_stream(), events(5));
  must_append("g-1", ExpectedVersion::no_stream(), events(2));
  must_append("f-1", ExpectedVersion::exact(4), events(2));  // f-1 at 6

  auto all = read_forwards("f-1");
  ASSERT_EQ(all.size(), 7u);
  EXPECT_EQ(positions_of(all), (std::vector<std::int64_t>{0, 1, 2, 3, 4, 7, 8}));

  auto mid = read_forwards("f-1", 2, 3);
  ASSERT_EQ(mid.size(), 3u);
  EXPECT_EQ(mid[0].version, 2);
  EXPECT_EQ(mid[2].version, 4);
  EXPECT_EQ(mid[0].id, all[2].id);

  auto tail = read_forwards("f-1", 5, 100);
  ASSERT_EQ(tail.size(), 2u);
  EXPECT_EQ(tail[1].version, 6);

  EXPECT_TRUE(read_forwards("f-1", 7, 10).empty());
  EXPECT_TRUE(read_forwards("f-1", 0, 0).empty());
}

TEST_P(StoreContract, ReadStreamBackwards) {
  must_append("b-1", ExpectedVersion::no_stream(), events(6));
  auto read = [&](std::int64_t from, std::size_t max) {
    auto r = store_->read_stream("b-1", from, max, ReadDirection::backwards);
    EXPECT_TRUE(r) << r.status().to_string();
    std::vector<std::int64_t> versions;
    if (r) for (const auto& e : *r) versions.push_back(e.version);
    return versions;
  };
  EXPECT_EQ(read(kStreamEnd, 100), (std::vector<std::int64_t>{5, 4, 3, 2, 1, 0}));
  EXPECT_EQ(read(kStreamEnd, 2), (std::vector<std::int64_t>{5, 4}));
  EXPECT_EQ(read(3, 2), (std::vector<std::int64_t>{3, 2}));
  EXPECT_EQ(read(0, 10), (std::vector<std::int64_t>{0}));
  EXPECT_EQ(read(5, 1), (std::vector<std::int64_t>{5}));
  EXPECT_EQ(read(50, 3), (std::vector<std::int64_t>{5, 4, 3}));  // beyond the end: from the end
  EXPECT_TRUE(read(kStreamEnd, 0).empty());
}

// ---------------------------------------------------------------- read_all

TEST_P(StoreContract, ReadAllOfEmptyStoreIsEndOfLog) {
  auto s = store_->read_all(0, 10);
  ASSERT_TRUE(s) << s.status().to_string();
  EXPECT_TRUE(s->events.empty());
  EXPECT_TRUE(s->end_of_log);
  EXPECT_EQ(s->next_position, 0);
  EXPECT_EQ(store_->head_position(), -1);
}

TEST_P(StoreContract, ReadAllPagesThroughTheLog) {
  must_append("p-1", ExpectedVersion::any(), events(4));
  must_append("q-1", ExpectedVersion::any(), events(3));
  must_append("p-1", ExpectedVersion::any(), events(3));  // positions 0..9

  auto first = store_->read_all(0, 3);
  ASSERT_TRUE(first);
  EXPECT_EQ(positions_of(first->events), range(0, 2));
  EXPECT_EQ(first->next_position, 3);
  EXPECT_FALSE(first->end_of_log);

  auto middle = store_->read_all(3, 5);
  ASSERT_TRUE(middle);
  EXPECT_EQ(positions_of(middle->events), range(3, 7));
  EXPECT_EQ(middle->next_position, 8);
  EXPECT_FALSE(middle->end_of_log);

  auto last = store_->read_all(8, 5);
  ASSERT_TRUE(last);
  EXPECT_EQ(positions_of(last->events), range(8, 9));
  EXPECT_EQ(last->next_position, 10);
  EXPECT_TRUE(last->end_of_log);

  auto exact_end = store_->read_all(7, 3);  // the page ends on the last event
  ASSERT_TRUE(exact_end);
  EXPECT_EQ(positions_of(exact_end->events), range(7, 9));
  EXPECT_EQ(exact_end->next_position, 10);
  EXPECT_TRUE(exact_end->end_of_log);

  auto past = store_->read_all(10, 5);
  ASSERT_TRUE(past);
  EXPECT_TRUE(past->events.empty());
  EXPECT_EQ(past->next_position, 10);
  EXPECT_TRUE(past->end_of_log);

  for (std::size_t page : {1u, 3u, 4u, 10u, 100u}) {
    SCOPED_TRACE("page " + std::to_string(page));
    EXPECT_EQ(positions_of(read_all_paged({}, page)), range(0, 9));
  }
}

// Fixture data for the filter tests: 12 events over three streams of two categories, three
// types, two correlation ids and four distinct recorded_at instants.
class ReadAllFilters : public StoreContract {
 protected:
  void SetUp() override {
    StoreContract::SetUp();
    if (HasFatalFailure()) return;
    const std::vector<std::tuple<std::string, std::string, std::string>> plan = {
        // stream, type, correlation
        {"order-1", "OrderCreated", "c1"}, {"order-1", "OrderPaid", "c1"},
        {"user-1", "UserRegistered", "c2"}, {"order-2", "OrderCreated", "c2"},
        {"order-2", "OrderShipped", "c2"},  {"user-1", "UserRenamed", "c1"},
        {"order-1", "OrderShipped", "c1"}, {"user-2", "UserRegistered", ""},
        {"order-2", "OrderPaid", "c2"},     {"orders", "OrderCreated", "c1"},
        {"user-1", "UserRenamed", "c2"},   {"order-1", "OrderPaid", "c1"},
    };
    for (std::size_t i = 0; i < plan.size(); ++i) {
      if (i % 3 == 0) clock_->advance(1s);  // instants kStart+1s (0..2), +2s (3..5), +3s, +4s
      const auto& [stream, type, corr] = plan[i];
      must_append(stream, ExpectedVersion::any(), {event(type, "{}", corr)});
    }
    all_ = read_all_paged({}, 100);
    ASSERT_EQ(all_.size(), plan.size());
  }

  // Positions of all_ that satisfy `pred`, computed independently of ReadFilter::matches.
  template <class Pred>
  std::vector<std::int64_t> expected(Pred pred) const {
    std::vector<std::int64_t> out;
    for (const auto& e : all_) {
      if (pred(e)) out.push_back(e.position);
    }
    return out;
  }

  void check(const ReadFilter& filter, const std::vector<std::int64_t>& want) {
    ASSERT_FALSE(want.empty()) << "a filter test needs matching events";
    ASSERT_LT(want.size(), all_.size()) << "a filter test needs non-matching events";
    for (std::size_t page : {1u, 2u, 5u, 100u}) {
      SCOPED_TRACE("page " + std::to_string(page));
      EXPECT_EQ(positions_of(read_all_paged(filter, page)), want);
    }
    for (std::size_t page : {1u, 3u, 100u}) {
      SCOPED_TRACE("shared page " + std::to_string(page));
      EXPECT_EQ(positions_of(read_all_shared_paged(filter, page)), want);
    }
    // From the middle of the log.
    const std::int64_t from = 5;
    auto slice = store_->read_all(from, 100, filter);
    ASSERT_TRUE(slice);
    std::vector<std::int64_t> tail;
    std::copy_if(want.begin(), want.end(), std::back_inserter(tail), [&](auto p) { return p >= from; });
    EXPECT_EQ(positions_of(slice->events), tail);
  }

  std::vector<RecordedEvent> all_;
};

TEST_P(ReadAllFilters, EventTypes) {
  ReadFilter f;
  f.event_types = {"OrderCreated", "UserRenamed"};
  check(f, expected([](const RecordedEvent& e) { return e.type == "OrderCreated" || e.type == "UserRenamed"; }));
  f.event_types = {"OrderShipped"};
  check(f, expected([](const RecordedEvent& e) { return e.type == "OrderShipped"; }));
}

TEST_P(ReadAllFilters, Category) {
  ReadFilter f;
  f.category = "order";  // not "orders"
  check(f, expected([](const RecordedEvent& e) { return e.stream_id.rfind("order-", 0) == 0; }));
  f.category = "orders";
  check(f, expected([](const RecordedEvent& e) { return e.stream_id == "orders"; }));
}

TEST_P(ReadAllFilters, StreamId) {
  ReadFilter f;
  f.stream_id = "user-1";
  check(f, expected([](const RecordedEvent& e) { return e.stream_id == "user-1"; }));
  f.stream_id = "nobody-1";
  auto slice = store_->read_all(0, 10, f);
  ASSERT_TRUE(slice);
  EXPECT_TRUE(slice->events.empty());
  EXPECT_TRUE(slice->end_of_log);
  EXPECT_EQ(slice->next_position, 12);
}

TEST_P(ReadAllFilters, SinceAndUntil) {
  ReadFilter f;
  f.since = kStart + 2s;
  check(f, expected([](const RecordedEvent& e) { return e.position >= 3; }));
  f.since.reset();
  f.until = kStart + 3s;
  check(f, expected([](const RecordedEvent& e) { return e.position < 6; }));
  f.since = kStart + 2s;
  check(f, expected([](const RecordedEvent& e) { return e.position >= 3 && e.position < 6; }));
}

TEST_P(ReadAllFilters, CorrelationId) {
  ReadFilter f;
  f.correlation_id = "c2";
  check(f, expected([](const RecordedEvent& e) { return e.metadata.correlation_id == "c2"; }));
}

TEST_P(ReadAllFilters, Combined) {
  ReadFilter f;
  f.category = "order";
  f.event_types = {"OrderPaid", "OrderCreated"};
  f.correlation_id = "c1";
  check(f, expected([](const RecordedEvent& e) {
          return e.stream_id.rfind("order-", 0) == 0 && (e.type == "OrderPaid" || e.type == "OrderCreated") &&
                 e.metadata.correlation_id == "c1";
        }));
  ReadFilter g;
  g.stream_id = "order-2";
  g.event_types = {"OrderShipped", "OrderPaid"};
  g.since = kStart + 2s;
  g.until = kStart + 4s;
  check(g, expected([](const RecordedEvent& e) {
          return e.stream_id == "order-2" && e.type != "OrderCreated" && e.position >= 3 && e.position < 9;
        }));
  ReadFilter none;
  none.category = "user";
  none.event_types = {"OrderCreated"};
  auto slice = store_->read_all(0, 5, none);
  ASSERT_TRUE(slice);
  EXPECT_TRUE(slice->events.empty());
  EXPECT_TRUE(read_all_paged(none, 3).empty());
}

// Long enough to cross the memory store's internal chunks (4096 events), with two types and
// three streams interleaved in batches.
TEST_P(StoreContract, SharedPagesMatchReadAllOverALongLog) {
  constexpr int kBatches = 9;
  constexpr int kBatch = 1000;
  for (int b = 0; b < kBatches; ++b) {
    std::vector<EventData> es;
    for (int i = 0; i < kBatch; ++i) {
      es.push_back(event(i % 3 == 0 ? "Rare" : "Common", "{\"i\":" + std::to_string(b * kBatch + i) + "}"));
    }
    must_append("long-" + std::to_string(b % 3), ExpectedVersion::any(), std::move(es));
  }
  ReadFilter rare;
  rare.event_types = {"Rare"};
  ReadFilter one_stream;
  one_stream.stream_id = "long-1";
  for (const ReadFilter& filter : {ReadFilter{}, rare, one_stream}) {
    const auto want = read_all_paged(filter, 5000);
    ASSERT_FALSE(want.empty());
    for (std::size_t page : {700u, 4096u}) {
      SCOPED_TRACE("page " + std::to_string(page));
      const auto got = read_all_shared_paged(filter, page);
      ASSERT_EQ(positions_of(got), positions_of(want));
      for (std::size_t i = 0; i < got.size(); ++i) {
        ASSERT_EQ(got[i].id, want[i].id);
        ASSERT_EQ(got[i].payload, want[i].payload);
        ASSERT_EQ(got[i].stream_id, want[i].stream_id);
        ASSERT_EQ(got[i].version, want[i].version);
      }
    }
  }
}

TEST_P(StoreContract, SharedPageStaysValidWhileTheLogGrows) {
  must_append("grow-1", ExpectedVersion::any(), events(10));
  auto page = store_->read_all_shared(0, 10);
  ASSERT_TRUE(page) << page.status().to_string();
  ASSERT_EQ(page->events.size(), 10u);
  const auto copy_before = read_all_paged({}, 100);
  for (int b = 0; b < 6; ++b) must_append("grow-2", ExpectedVersion::any(), events(1000));
  for (std::size_t i = 0; i < page->events.size(); ++i) {
    EXPECT_EQ(page->events[i]->position, static_cast<std::int64_t>(i));
    EXPECT_EQ(page->events[i]->id, copy_before[i].id);
    EXPECT_EQ(page->events[i]->payload, copy_before[i].payload);
  }
  auto past = store_->read_all_shared(store_->head_position() + 1, 10);
  ASSERT_TRUE(past);
  EXPECT_TRUE(past->events.empty());
  EXPECT_TRUE(past->end_of_log);
  EXPECT_EQ(past->next_position, store_->head_position() + 1);
  auto negative = store_->read_all_shared(-1, 10);
  ASSERT_FALSE(negative);
  EXPECT_EQ(negative.status().code(), StatusCode::invalid_argument);
}

TEST_P(StoreContract, ConcurrentReadersNeverSeeGapsOrDuplicates) {
  constexpr int kWriters = 4;
  constexpr int kAppendsPerWriter = 25;
  constexpr int kReaders = 3;
  std::int64_t expected_total = 0;
  for (int w = 0; w < kWriters; ++w) {
    for (int i = 0; i < kAppendsPerWriter; ++i) expected_total += 1 + (i + w) % 3;
  }
  std::atomic<std::int64_t> written{0};
  std::atomic<bool> writers_done{false};
  std::atomic<int> errors{0};

  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      for (int i = 0; i < kAppendsPerWriter; ++i) {
        const int n = 1 + (i + w) % 3;
        auto r = store_->append("w-" + std::to_string(w), ExpectedVersion::any(), events(n));
        if (r) {
          written += n;
        } else {
          ++errors;
        }
      }
    });
  }
  std::vector<std::vector<std::int64_t>> seen(kReaders);
  std::vector<std::thread> readers;
  for (int rd = 0; rd < kReaders; ++rd) {
    readers.emplace_back([&, rd] {
      std::int64_t next = 0;
      const std::size_t page = 3 + static_cast<std::size_t>(rd) * 2;
      for (int guard = 0; guard < 1'000'000; ++guard) {
        if (writers_done && next == written.load()) return;
        auto slice = store_->read_all(next, page);
        if (!slice) {
          ++errors;
          return;
        }
        for (const auto& e : slice->events) {
          if (e.position != next) ++errors;  // a gap or a duplicate
          seen[static_cast<std::size_t>(rd)].push_back(e.position);
          next = e.position + 1;
        }
        if (slice->next_position != next) ++errors;
        if (slice->events.empty()) {
          Status s = store_->wait_for(next - 1, 20ms);
          if (!s && s.code() != StatusCode::timeout) ++errors;
        }
      }
      ++errors;  // never caught up
    });
  }
  for (auto& t : writers) t.join();
  writers_done = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(errors.load(), 0);
  const std::int64_t total = written.load();
  EXPECT_EQ(total, expected_total);
  for (const auto& s : seen) EXPECT_EQ(s, range(0, total - 1));
}

// ---------------------------------------------------------------- head, stats, wait_for

TEST_P(StoreContract, StatsDescribeTheLog) {
  auto empty = store_->stats();
  ASSERT_TRUE(empty) << empty.status().to_string();
  EXPECT_EQ(empty->total_events, 0);
  EXPECT_EQ(empty->stream_count, 0);
  EXPECT_TRUE(empty->events_by_type.empty());
  EXPECT_EQ(empty->first_position, -1);
  EXPECT_EQ(empty->last_position, -1);
  EXPECT_FALSE(empty->first_recorded_at);
  EXPECT_FALSE(empty->last_recorded_at);

  clock_->advance(5s);
  must_append("x-1", ExpectedVersion::any(), events(2, "A"));
  clock_->advance(5s);
  must_append("y-1", ExpectedVersion::any(), events(1, "B"));
  clock_->advance(5s);
  must_append("x-1", ExpectedVersion::any(), events(3, "C"));
  must_append("z-1", ExpectedVersion::any(), events(1, "A"));

  auto s = store_->stats();
  ASSERT_TRUE(s);
  EXPECT_EQ(s->total_events, 7);
  EXPECT_EQ(s->stream_count, 3);
  EXPECT_EQ(s->events_by_type, (std::map<std::string, std::int64_t>{{"A", 3}, {"B", 1}, {"C", 3}}));
  EXPECT_EQ(s->first_position, 0);
  EXPECT_EQ(s->last_position, 6);
  ASSERT_TRUE(s->first_recorded_at);
  ASSERT_TRUE(s->last_recorded_at);
  EXPECT_EQ(to_micros(*s->first_recorded_at), to_micros(kStart + 5s));
  EXPECT_EQ(to_micros(*s->last_recorded_at), to_micros(kStart + 15s));
  if (persistent()) {
    EXPECT_GT(s->bytes_on_disk, 0);
  } else {
    EXPECT_EQ(s->bytes_on_disk, 0);
  }
  EXPECT_EQ(store_->head_position(), 6);

  // Later calls see later appends (a backend may count incrementally): a new stream, an old one.
  must_append("w-1", ExpectedVersion::any(), events(2, "B"));
  must_append("y-1", ExpectedVersion::any(), events(1, "D"));
  auto later = store_->stats();
  ASSERT_TRUE(later);
  EXPECT_EQ(later->total_events, 10);
  EXPECT_EQ(later->stream_count, 4);
  EXPECT_EQ(later->events_by_type,
            (std::map<std::string, std::int64_t>{{"A", 3}, {"B", 3}, {"C", 3}, {"D", 1}}));
  auto again = store_->stats();  // nothing new: the same figures
  ASSERT_TRUE(again);
  EXPECT_EQ(again->stream_count, 4);
  EXPECT_EQ(again->events_by_type, later->events_by_type);
  if (persistent()) {
    reopen();
    auto reopened = store_->stats();
    ASSERT_TRUE(reopened);
    EXPECT_EQ(reopened->total_events, 10);
    EXPECT_EQ(reopened->stream_count, 4);
    EXPECT_EQ(reopened->events_by_type, later->events_by_type);
  }
}

TEST_P(StoreContract, WaitForReturnsAtOnceWhenAnEventIsReadable) {
  must_append("w-1", ExpectedVersion::any(), events(2));
  EXPECT_TRUE(store_->wait_for(-1, 10s).is_ok());
  EXPECT_TRUE(store_->wait_for(0, 10s).is_ok());
}

TEST_P(StoreContract, WaitForTimesOut) {
  Status empty = store_->wait_for(-1, 30ms);
  EXPECT_EQ(empty.code(), StatusCode::timeout) << empty.to_string();
  must_append("w-1", ExpectedVersion::any(), events(1));
  Status caught_up = store_->wait_for(0, 30ms);
  EXPECT_EQ(caught_up.code(), StatusCode::timeout) << caught_up.to_string();
}

TEST_P(StoreContract, WaitForWakesOnAppend) {
  must_append("w-1", ExpectedVersion::any(), events(1));
  std::atomic<bool> started{false};
  Status result = Status::internal("waiter did not run");
  std::thread waiter([&] {
    started = true;
    result = store_->wait_for(0, 30s);
  });
  while (!started) std::this_thread::yield();
  std::this_thread::sleep_for(20ms);
  must_append("w-2", ExpectedVersion::any(), events(1));
  waiter.join();
  EXPECT_TRUE(result.is_ok()) << result.to_string();
  auto slice = store_->read_all(1, 10);
  ASSERT_TRUE(slice);
  EXPECT_EQ(positions_of(slice->events), range(1, 1));
}

TEST_P(StoreContract, CloseCancelsWaitersAndFailsLaterCalls) {
  std::atomic<bool> started{false};
  Status result = Status::internal("waiter did not run");
  std::thread waiter([&] {
    started = true;
    result = store_->wait_for(-1, 30s);
  });
  while (!started) std::this_thread::yield();
  // Give the waiter time to block; if it has not yet, it must still see the closed store.
  std::this_thread::sleep_for(50ms);
  store_->close();
  waiter.join();
  EXPECT_EQ(result.code(), StatusCode::cancelled) << result.to_string();

  store_->close();  // idempotent
  auto a = store_->append("late-1", ExpectedVersion::any(), events(1));
  ASSERT_FALSE(a);
  EXPECT_EQ(a.status().code(), StatusCode::failed_precondition);
  auto r = store_->read_all(0, 10);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.status().code(), StatusCode::failed_precondition);
  auto c = store_->load_checkpoint("sub");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.status().code(), StatusCode::failed_precondition);
  Status t = store_->transact([](StoreTransaction&) { return Status::ok(); });
  EXPECT_EQ(t.code(), StatusCode::failed_precondition);
}

// ---------------------------------------------------------------- persistence

TEST_P(StoreContract, EverythingSurvivesReopen) {
  if (!persistent()) GTEST_SKIP() << GetParam().name << " does not persist across reopen";
  EventData rich = event("Rich", R"({"k":[1,2,3]})", "corr-9");
  rich.metadata.actor = "me";
  rich.metadata.causation_id = "cause";
  rich.metadata.extra = {{"a", "b"}};
  must_append("keep-1", ExpectedVersion::no_stream(), events(2));
  clock_->advance(3s);
  const auto batch = std::vector<EventData>{rich};
  must_append("keep-2", ExpectedVersion::no_stream(), batch);
  must_append("keep-1", ExpectedVersion::exact(1), events(1));
  ASSERT_TRUE(store_->save_checkpoint("sub-a", 2));
  DeadLetter dl;
  dl.handler = "h1";
  dl.position = 2;
  dl.event_id = rich.id;
  dl.event_type = "Rich";
  dl.stream_id = "keep-2";
  dl.attempts = 3;
  dl.last_error = "boom";
  dl.first_failed_at = kStart + 1s;
  dl.last_failed_at = kStart + 2s;
  auto dl_id = store_->add_dead_letter(dl);
  ASSERT_TRUE(dl_id);
  ASSERT_TRUE(store_->transact([&](StoreTransaction& tx) -> Status {
    auto rec = tx.inbox_record("h1", rich.id);
    if (!rec) return rec.status();
    HERALD_RETURN_IF_ERROR(tx.put_document("views", "k1", R"({"n":1})"));
    return tx.save_checkpoint("sub-b", 1);
  }));
  const auto before = read_all_paged({}, 100);

  reopen();

  EXPECT_EQ(store_->head_position(), 3);
  const auto after = read_all_paged({}, 100);
  ASSERT_EQ(after.size(), before.size());
  for (std::size_t i = 0; i < after.size(); ++i) {
    EXPECT_EQ(after[i].id, before[i].id);
    EXPECT_EQ(after[i].stream_id, before[i].stream_id);
    EXPECT_EQ(after[i].version, before[i].version);
    EXPECT_EQ(after[i].position, before[i].position);
    EXPECT_EQ(after[i].type, before[i].type);
    EXPECT_EQ(after[i].payload, before[i].payload);
    EXPECT_EQ(after[i].metadata, before[i].metadata);
    EXPECT_EQ(to_micros(after[i].recorded_at), to_micros(before[i].recorded_at));
  }
  auto v1 = store_->stream_version("keep-1");
  ASSERT_TRUE(v1);
  EXPECT_EQ(*v1, 2);
  auto stats = store_->stats();
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->total_events, 4);
  EXPECT_EQ(stats->stream_count, 2);

  // Appends continue where the log left off; a retry of an old append is still recognised.
  EXPECT_EQ(must_append("keep-1", ExpectedVersion::exact(2), events(1)), (AppendResult{4, 4, 3}));
  auto retry = store_->append("keep-2", ExpectedVersion::no_stream(), batch);
  ASSERT_TRUE(retry) << retry.status().to_string();
  EXPECT_EQ(*retry, (AppendResult{2, 2, 0}));

  auto cp = store_->load_checkpoint("sub-a");
  ASSERT_TRUE(cp);
  EXPECT_EQ(*cp, 2);
  auto cpb = store_->load_checkpoint("sub-b");
  ASSERT_TRUE(cpb);
  EXPECT_EQ(*cpb, 1);

  auto got = store_->get_dead_letter(*dl_id);
  ASSERT_TRUE(got) << got.status().to_string();
  EXPECT_EQ(got->handler, "h1");
  EXPECT_EQ(got->event_id, rich.id);
  EXPECT_EQ(got->attempts, 3);
  EXPECT_EQ(got->last_error, "boom");
  EXPECT_EQ(to_micros(got->first_failed_at), to_micros(kStart + 1s));
  EXPECT_EQ(to_micros(got->last_failed_at), to_micros(kStart + 2s));
  DeadLetter second = dl;
  second.event_id = new_uuid_v7();
  auto second_id = store_->add_dead_letter(second);
  ASSERT_TRUE(second_id);
  EXPECT_NE(*second_id, *dl_id);

  ASSERT_TRUE(store_->transact([&](StoreTransaction& tx) -> Status {
    auto rec = tx.inbox_record("h1", rich.id);
    if (!rec) return rec.status();
    EXPECT_EQ(*rec, InboxOutcome::already_recorded) << "the inbox record must survive reopen";
    auto doc = tx.get_document("views", "k1");
    if (!doc) return doc.status();
    EXPECT_EQ(*doc, R"({"n":1})");
    return Status::ok();
  }));
}

// ---------------------------------------------------------------- transactions

TEST_P(StoreContract, TransactCommitsEverythingTogether) {
  Status s = store_->transact([](StoreTransaction& tx) -> Status {
    auto first = tx.inbox_record("proj", "e-1");
    if (!first) return first.status();
    EXPECT_EQ(*first, InboxOutcome::recorded);
    auto again = tx.inbox_record("proj", "e-1");  // within the same transaction
    if (!again) return again.status();
    EXPECT_EQ(*again, InboxOutcome::already_recorded);
    HERALD_RETURN_IF_ERROR(tx.put_document("carts", "u1", R"({"items":[]})"));
    auto own = tx.get_document("carts", "u1");  // reads its own writes
    if (!own) return own.status();
    EXPECT_EQ(*own, R"({"items":[]})");
    return tx.save_checkpoint("proj", 41);
  });
  ASSERT_TRUE(s) << s.to_string();

  auto cp = store_->load_checkpoint("proj");
  ASSERT_TRUE(cp);
  EXPECT_EQ(*cp, 41);
  ASSERT_TRUE(store_->transact([](StoreTransaction& tx) -> Status {
    auto rec = tx.inbox_record("proj", "e-1");
    if (!rec) return rec.status();
    EXPECT_EQ(*rec, InboxOutcome::already_recorded) << "a committed inbox record dedups later transactions";
    auto other_handler = tx.inbox_record("mailer", "e-1");
    if (!other_handler) return other_handler.status();
    EXPECT_EQ(*other_handler, InboxOutcome::recorded) << "the inbox is per handler";
    auto doc = tx.get_document("carts", "u1");
    if (!doc) return doc.status();
    EXPECT_EQ(*doc, R"({"items":[]})");
    return Status::ok();
  }));
}

TEST_P(StoreContract, TransactRollsBackOnErrorOrException) {
  ASSERT_TRUE(store_->save_checkpoint("proj", 5));
  ASSERT_TRUE(store_->transact([](StoreTransaction& tx) { return tx.put_document("c", "kept", "1"); }));

  Status failed = store_->transact([](StoreTransaction& tx) -> Status {
    auto rec = tx.inbox_record("proj", "e-9");
    if (!rec) return rec.status();
    HERALD_RETURN_IF_ERROR(tx.put_document("c", "new", R"({"x":1})"));
    HERALD_RETURN_IF_ERROR(tx.put_document("c", "kept", "2"));
    HERALD_RETURN_IF_ERROR(tx.delete_document("c", "kept"));
    HERALD_RETURN_IF_ERROR(tx.save_checkpoint("proj", 99));
    return Status::permanent("handler said no");
  });
  EXPECT_EQ(failed.code(), StatusCode::permanent);
  EXPECT_EQ(failed.message(), "handler said no");

  Status threw = store_->transact([](StoreTransaction& tx) -> Status {
    (void)tx.put_document("c", "thrown", "{}");
    (void)tx.save_checkpoint("proj", 100);
    throw std::runtime_error("kaboom");
  });
  EXPECT_EQ(threw.code(), StatusCode::internal) << threw.to_string();

  auto cp = store_->load_checkpoint("proj");
  ASSERT_TRUE(cp);
  EXPECT_EQ(*cp, 5);
  ASSERT_TRUE(store_->transact([](StoreTransaction& tx) -> Status {
    auto rec = tx.inbox_record("proj", "e-9");
    if (!rec) return rec.status();
    EXPECT_EQ(*rec, InboxOutcome::recorded) << "a rolled-back inbox record is not recorded";
    auto kept = tx.get_document("c", "kept");
    if (!kept) return kept.status();
    EXPECT_EQ(*kept, "1");
    auto gone = tx.get_document("c", "new");
    EXPECT_EQ(gone.status().code(), StatusCode::not_found);
    auto thrown = tx.get_document("c", "thrown");
    EXPECT_EQ(thrown.status().code(), StatusCode::not_found);
    return Status::ok();
  }));
}

TEST_P(StoreContract, ConcurrentTransactionsAreIsolated) {
  // Each (handler, event) is processed by exactly one of the racing transactions, and no
  // read-modify-write of a shared document is lost.
  constexpr int kThreads = 4;
  constexpr int kEvents = 8;
  std::atomic<int> errors{0};
  std::vector<std::vector<int>> processed(kThreads);
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      while (!go) std::this_thread::yield();
      for (int e = 0; e < kEvents; ++e) {
        bool fresh = false;
        Status s = store_->transact([&](StoreTransaction& tx) -> Status {
          fresh = false;  // `work` may be run again
          auto rec = tx.inbox_record("counter", "event-" + std::to_string(e));
          if (!rec) return rec.status();
          if (*rec == InboxOutcome::already_recorded) return Status::ok();
          std::this_thread::sleep_for(100us);  // invite the other transactions to interleave
          auto doc = tx.get_document("counters", "total");
          int n = 0;
          if (doc) {
            n = std::stoi(*doc);
          } else if (doc.status().code() != StatusCode::not_found) {
            return doc.status();
          }
          std::this_thread::yield();
          HERALD_RETURN_IF_ERROR(tx.put_document("counters", "total", std::to_string(n + 1)));
          fresh = true;
          return Status::ok();
        });
        if (!s) {
          ++errors;
        } else if (fresh) {
          processed[static_cast<std::size_t>(t)].push_back(e);
        }
      }
    });
  }
  go = true;
  for (auto& th : threads) th.join();
  EXPECT_EQ(errors.load(), 0);
  std::vector<int> all;
  for (const auto& p : processed) all.insert(all.end(), p.begin(), p.end());
  std::sort(all.begin(), all.end());
  std::vector<int> want(kEvents);
  for (int e = 0; e < kEvents; ++e) want[static_cast<std::size_t>(e)] = e;
  EXPECT_EQ(all, want) << "each event is processed exactly once";
  ASSERT_TRUE(store_->transact([&](StoreTransaction& tx) -> Status {
    auto doc = tx.get_document("counters", "total");
    if (!doc) return doc.status();
    EXPECT_EQ(*doc, std::to_string(kEvents));
    return Status::ok();
  }));
}

TEST_P(StoreContract, DocumentsCrudAndPaging) {
  Status s = store_->transact([](StoreTransaction& tx) -> Status {
    auto absent = tx.get_document("users", "nobody");
    EXPECT_EQ(absent.status().code(), StatusCode::not_found);
    EXPECT_EQ(tx.put_document("users", "k", "{oops").code(), StatusCode::invalid_argument);
    EXPECT_EQ(tx.put_document("", "k", "{}").code(), StatusCode::invalid_argument);
    EXPECT_EQ(tx.put_document("users", "", "{}").code(), StatusCode::invalid_argument);
    for (const char* k : {"d", "a", "e", "c", "b"}) {
      HERALD_RETURN_IF_ERROR(tx.put_document("users", k, std::string(R"({"k":")") + k + "\"}"));
    }
    HERALD_RETURN_IF_ERROR(tx.put_document("other", "a", "[]"));
    HERALD_RETURN_IF_ERROR(tx.put_document("users", "c", R"({"k":"c2"})"));  // replace
    return Status::ok();
  });
  ASSERT_TRUE(s) << s.to_string();

  auto keys = [](const std::vector<Document>& docs) {
    std::string out;
    for (const auto& d : docs) out += d.key;
    return out;
  };
  s = store_->transact([&](StoreTransaction& tx) -> Status {
    auto c = tx.get_document("users", "c");
    if (!c) return c.status();
    EXPECT_EQ(*c, R"({"k":"c2"})");
    auto page1 = tx.list_documents("users", "", 2);
    if (!page1) return page1.status();
    EXPECT_EQ(keys(*page1), "ab");
    if (page1->size() == 2) {
      EXPECT_EQ((*page1)[1].json, R"({"k":"b"})");
    }
    auto page2 = tx.list_documents("users", "b", 2);
    if (!page2) return page2.status();
    EXPECT_EQ(keys(*page2), "cd");
    auto page3 = tx.list_documents("users", "d", 2);
    if (!page3) return page3.status();
    EXPECT_EQ(keys(*page3), "e");
    auto page4 = tx.list_documents("users", "e", 2);
    if (!page4) return page4.status();
    EXPECT_TRUE(page4->empty());
    auto empty = tx.list_documents("nothing", "", 10);
    if (!empty) return empty.status();
    EXPECT_TRUE(empty->empty());

    HERALD_RETURN_IF_ERROR(tx.delete_document("users", "b"));
    HERALD_RETURN_IF_ERROR(tx.delete_document("users", "never-existed"));
    auto after_delete = tx.list_documents("users", "", 3);
    if (!after_delete) return after_delete.status();
    EXPECT_EQ(keys(*after_delete), "acd");
    return Status::ok();
  });
  ASSERT_TRUE(s) << s.to_string();
  s = store_->transact([&](StoreTransaction& tx) -> Status {
    auto b = tx.get_document("users", "b");
    EXPECT_EQ(b.status().code(), StatusCode::not_found);
    auto all = tx.list_documents("users", "", 100);
    if (!all) return all.status();
    EXPECT_EQ(keys(*all), "acde");
    auto other = tx.list_documents("other", "", 100);
    if (!other) return other.status();
    EXPECT_EQ(keys(*other), "a");
    return Status::ok();
  });
  ASSERT_TRUE(s) << s.to_string();

  // The same read model outside any transaction: what the last commit left, same errors.
  auto c = store_->read_document("users", "c");
  ASSERT_TRUE(c) << c.status().to_string();
  EXPECT_EQ(*c, R"({"k":"c2"})");
  EXPECT_EQ(store_->read_document("users", "b").status().code(), StatusCode::not_found);
  EXPECT_EQ(store_->read_document("", "b").status().code(), StatusCode::invalid_argument);
  EXPECT_EQ(store_->read_document("users", "").status().code(), StatusCode::invalid_argument);
  auto page = store_->read_documents("users", "a", 2);
  ASSERT_TRUE(page) << page.status().to_string();
  EXPECT_EQ(keys(*page), "cd");
  auto rest = store_->read_documents("users", "d", 10);
  ASSERT_TRUE(rest);
  EXPECT_EQ(keys(*rest), "e");
  EXPECT_EQ(store_->read_documents("", "", 10).status().code(), StatusCode::invalid_argument);
  auto none = store_->read_documents("nothing", "", 10);
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
}

// ---------------------------------------------------------------- checkpoints

TEST_P(StoreContract, CheckpointsSaveAndLoad) {
  auto absent = store_->load_checkpoint("sub");
  ASSERT_FALSE(absent);
  EXPECT_EQ(absent.status().code(), StatusCode::not_found);
  ASSERT_TRUE(store_->save_checkpoint("sub", 0));
  ASSERT_TRUE(store_->save_checkpoint("other", 7));
  ASSERT_TRUE(store_->save_checkpoint("sub", 12));
  auto sub = store_->load_checkpoint("sub");
  ASSERT_TRUE(sub);
  EXPECT_EQ(*sub, 12);
  auto other = store_->load_checkpoint("other");
  ASSERT_TRUE(other);
  EXPECT_EQ(*other, 7);
}

// ---------------------------------------------------------------- dead letters

DeadLetter dead_letter(std::string handler, std::int64_t position, std::string stream = "s-1") {
  DeadLetter d;
  d.handler = std::move(handler);
  d.position = position;
  d.event_id = new_uuid_v7();
  d.event_type = "Thing";
  d.stream_id = std::move(stream);
  d.attempts = 1;
  d.last_error = "failed at " + std::to_string(position);
  d.first_failed_at = kStart;
  d.last_failed_at = kStart;
  return d;
}

TEST_P(StoreContract, DeadLettersAddGetListUpdateRemove) {
  const DeadLetter b7 = dead_letter("b-handler", 7);
  const DeadLetter a9 = dead_letter("a-handler", 9);
  DeadLetter a3 = dead_letter("a-handler", 3, "s-2");
  a3.parked = true;
  std::vector<std::int64_t> ids;
  for (const DeadLetter* d : {&b7, &a9, static_cast<const DeadLetter*>(&a3)}) {
    auto id = store_->add_dead_letter(*d);
    ASSERT_TRUE(id) << id.status().to_string();
    ids.push_back(*id);
  }
  EXPECT_EQ(std::set<std::int64_t>(ids.begin(), ids.end()).size(), 3u);

  DeadLetter dup = dead_letter("a-handler", 10);
  dup.event_id = a9.event_id;
  auto d = store_->add_dead_letter(dup);
  ASSERT_FALSE(d);
  EXPECT_EQ(d.status().code(), StatusCode::already_exists);
  DeadLetter other_handler = dup;
  other_handler.handler = "c-handler";
  ASSERT_TRUE(store_->add_dead_letter(other_handler)) << "(handler, event_id) is the key";

  auto got = store_->get_dead_letter(ids[2]);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->id, ids[2]);
  EXPECT_EQ(got->handler, "a-handler");
  EXPECT_EQ(got->position, 3);
  EXPECT_EQ(got->event_id, a3.event_id);
  EXPECT_EQ(got->event_type, "Thing");
  EXPECT_EQ(got->stream_id, "s-2");
  EXPECT_TRUE(got->parked);
  EXPECT_EQ(got->attempts, 1);
  EXPECT_EQ(got->last_error, "failed at 3");
  EXPECT_EQ(to_micros(got->first_failed_at), to_micros(kStart));

  auto missing = store_->get_dead_letter(ids[0] + ids[1] + ids[2] + 1000);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.status().code(), StatusCode::not_found);

  auto all = store_->list_dead_letters();
  ASSERT_TRUE(all);
  std::vector<std::pair<std::string, std::int64_t>> order;
  for (const auto& e : *all) order.emplace_back(e.handler, e.position);
  EXPECT_EQ(order, (std::vector<std::pair<std::string, std::int64_t>>{
                       {"a-handler", 3}, {"a-handler", 9}, {"b-handler", 7}, {"c-handler", 10}}));
  auto a_only = store_->list_dead_letters("a-handler");
  ASSERT_TRUE(a_only);
  ASSERT_EQ(a_only->size(), 2u);
  EXPECT_EQ((*a_only)[0].id, ids[2]);
  EXPECT_EQ((*a_only)[1].id, ids[1]);
  auto none = store_->list_dead_letters("nobody");
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());

  DeadLetter update = *got;
  update.attempts = 4;
  update.parked = false;
  update.last_error = "still failing";
  update.last_failed_at = kStart + 90s;
  update.handler = "ignored";  // update rewrites only attempts, parked, last_error, last_failed_at
  update.position = 1000;
  ASSERT_TRUE(store_->update_dead_letter(update));
  auto updated = store_->get_dead_letter(ids[2]);
  ASSERT_TRUE(updated);
  EXPECT_EQ(updated->attempts, 4);
  EXPECT_FALSE(updated->parked);
  EXPECT_EQ(updated->last_error, "still failing");
  EXPECT_EQ(to_micros(updated->last_failed_at), to_micros(kStart + 90s));
  EXPECT_EQ(to_micros(updated->first_failed_at), to_micros(kStart));
  EXPECT_EQ(updated->handler, "a-handler");
  EXPECT_EQ(updated->position, 3);

  DeadLetter ghost = update;
  ghost.id = ids[0] + ids[1] + ids[2] + 1000;
  EXPECT_EQ(store_->update_dead_letter(ghost).code(), StatusCode::not_found);

  ASSERT_TRUE(store_->remove_dead_letter(ids[1]));
  EXPECT_EQ(store_->remove_dead_letter(ids[1]).code(), StatusCode::not_found);
  EXPECT_EQ(store_->get_dead_letter(ids[1]).status().code(), StatusCode::not_found);
  auto remaining = store_->list_dead_letters("a-handler");
  ASSERT_TRUE(remaining);
  ASSERT_EQ(remaining->size(), 1u);
  EXPECT_EQ((*remaining)[0].id, ids[2]);
  // Once removed, the same (handler, event) may be dead-lettered again.
  EXPECT_TRUE(store_->add_dead_letter(a9));
}

// ---------------------------------------------------------------- leases

TEST_P(StoreContract, LeasesAcquireRenewConflictExpireRelease) {
  auto acquire = [&](const char* owner, std::chrono::milliseconds ttl = 10s) {
    auto r = store_->try_acquire_lease("handler:mailer", owner, ttl);
    EXPECT_TRUE(r) << r.status().to_string();
    return r && r->outcome == LeaseOutcome::acquired;
  };
  EXPECT_TRUE(acquire("node-a"));
  EXPECT_FALSE(acquire("node-b"));
  EXPECT_TRUE(acquire("node-a")) << "the holder renews";
  auto other_lease = store_->try_acquire_lease("handler:stats", "node-b", 10s);
  ASSERT_TRUE(other_lease);
  EXPECT_EQ(other_lease->outcome, LeaseOutcome::acquired) << "leases are independent by name";

  // Renewal moves the expiry: 6s + renew + 6s is past the first expiry but not the renewed one.
  pass_lease_time(6s);
  EXPECT_TRUE(acquire("node-a"));
  pass_lease_time(6s);
  EXPECT_FALSE(acquire("node-b"));
  // Past the renewed expiry another owner takes over, and the old holder is out.
  pass_lease_time(5s);
  EXPECT_TRUE(acquire("node-b"));
  EXPECT_FALSE(acquire("node-a"));

  // Releasing someone else's lease does nothing; releasing one's own frees it at once.
  EXPECT_TRUE(store_->release_lease("handler:mailer", "node-a"));
  EXPECT_FALSE(acquire("node-a"));
  EXPECT_TRUE(store_->release_lease("handler:mailer", "node-b"));
  EXPECT_TRUE(acquire("node-a"));
  EXPECT_TRUE(store_->release_lease("never-held", "node-a"));
}

// Fencing tokens: a renewal keeps the token, every other grant gets a greater one, a refusal gets
// none.
TEST_P(StoreContract, EveryNewHoldingOfALeaseGetsAGreaterFencingToken) {
  auto grant = [&](const char* owner) {
    auto r = store_->try_acquire_lease("lane", owner, 10s);
    EXPECT_TRUE(r) << r.status().to_string();
    return r ? *r : LeaseGrant{};
  };
  const LeaseGrant first = grant("a");
  ASSERT_EQ(first.outcome, LeaseOutcome::acquired);
  EXPECT_GT(first.token, 0);
  EXPECT_EQ(grant("a").token, first.token) << "a renewal of a live lease keeps its token";
  pass_lease_time(9s);
  EXPECT_EQ(grant("a").token, first.token);
  const LeaseGrant refused = grant("b");
  EXPECT_EQ(refused.outcome, LeaseOutcome::held_by_another);
  EXPECT_EQ(refused.token, 0);

  pass_lease_time(11s);  // expired: the next owner gets a new token
  const LeaseGrant second = grant("b");
  ASSERT_EQ(second.outcome, LeaseOutcome::acquired);
  EXPECT_GT(second.token, first.token);

  ASSERT_TRUE(store_->release_lease("lane", "b"));  // released: free at once, and a new token
  const LeaseGrant third = grant("a");
  ASSERT_EQ(third.outcome, LeaseOutcome::acquired);
  EXPECT_GT(third.token, second.token);

  pass_lease_time(11s);  // the same owner after its lease expired: a new holding, a new token
  const LeaseGrant fourth = grant("a");
  ASSERT_EQ(fourth.outcome, LeaseOutcome::acquired);
  EXPECT_GT(fourth.token, third.token);

  // Another lease's tokens are its own.
  auto other = store_->try_acquire_lease("other-lane", "b", 10s);
  ASSERT_TRUE(other);
  EXPECT_EQ(other->outcome, LeaseOutcome::acquired);
  EXPECT_GT(other->token, 0);
}

// The fencing rule: a write under a lease commits only while its token is the current one, in
// the same transaction; refused, nothing of the transaction is written.
TEST_P(StoreContract, CheckLeaseRefusesAStaleTokenAndTheTransactionWritesNothing) {
  auto a = store_->try_acquire_lease("lane", "a", 10s);
  ASSERT_TRUE(a);
  ASSERT_EQ(a->outcome, LeaseOutcome::acquired);
  auto fenced_save = [&](std::int64_t token, std::int64_t position) {
    return store_->transact([&](StoreTransaction& tx) -> Status {
      HERALD_RETURN_IF_ERROR(tx.check_lease("lane", token));
      HERALD_RETURN_IF_ERROR(tx.put_document("docs", "k", "{\"at\":" + std::to_string(position) + "}"));
      return tx.save_checkpoint("lane", position);
    });
  };
  ASSERT_TRUE(fenced_save(a->token, 5));
  EXPECT_EQ(store_->load_checkpoint("lane").value_or(-1), 5);

  // Expired but not granted to anyone since: the holder's writes still commit.
  pass_lease_time(11s);
  EXPECT_TRUE(fenced_save(a->token, 6));

  auto b = store_->try_acquire_lease("lane", "b", 10s);
  ASSERT_TRUE(b);
  ASSERT_EQ(b->outcome, LeaseOutcome::acquired);
  Status stale = fenced_save(a->token, 7);
  EXPECT_EQ(stale.code(), StatusCode::lease_lost) << stale.to_string();
  EXPECT_EQ(stale.message(), "lease 'lane' is now held under token " + std::to_string(b->token) + ", not " +
                                 std::to_string(a->token));
  // A check after other writes of the same transaction rolls them back too.
  Status late_check = store_->transact([&](StoreTransaction& tx) -> Status {
    HERALD_RETURN_IF_ERROR(tx.save_checkpoint("lane", 8));
    HERALD_RETURN_IF_ERROR(tx.put_document("docs", "k", "{\"at\":8}"));
    return tx.check_lease("lane", a->token);
  });
  EXPECT_EQ(late_check.code(), StatusCode::lease_lost);
  EXPECT_EQ(store_->load_checkpoint("lane").value_or(-1), 6);
  auto doc = store_->read_document("docs", "k");
  ASSERT_TRUE(doc);
  EXPECT_EQ(*doc, "{\"at\":6}");

  EXPECT_TRUE(fenced_save(b->token, 9)) << "the new holder writes";
  EXPECT_EQ(store_->load_checkpoint("lane").value_or(-1), 9);
  // Renewing after losing it does not give the old holder its token back.
  auto again = store_->try_acquire_lease("lane", "a", 10s);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->outcome, LeaseOutcome::held_by_another);
  EXPECT_EQ(fenced_save(a->token, 10).code(), StatusCode::lease_lost);

  Status never = store_->transact([&](StoreTransaction& tx) { return tx.check_lease("never-granted", 1); });
  EXPECT_EQ(never.code(), StatusCode::lease_lost);
  EXPECT_EQ(never.message(), "lease 'never-granted' was never granted (token 1)");
}

TEST_P(StoreContract, CheckpointsMoveOnlyForwardUnlessReset) {
  ASSERT_TRUE(store_->save_checkpoint("sub", 10));
  ASSERT_TRUE(store_->save_checkpoint("sub", 4)) << "a late, lower save is not an error";
  EXPECT_EQ(store_->load_checkpoint("sub").value_or(-1), 10);
  ASSERT_TRUE(store_->transact([](StoreTransaction& tx) { return tx.save_checkpoint("sub", 3); }));
  EXPECT_EQ(store_->load_checkpoint("sub").value_or(-1), 10);
  ASSERT_TRUE(store_->transact([](StoreTransaction& tx) { return tx.save_checkpoint("sub", 12); }));
  EXPECT_EQ(store_->load_checkpoint("sub").value_or(-1), 12);
  ASSERT_TRUE(store_->transact([](StoreTransaction& tx) { return tx.reset_checkpoint("sub", 2); }));
  EXPECT_EQ(store_->load_checkpoint("sub").value_or(-1), 2) << "a reset rewinds";
  ASSERT_TRUE(store_->save_checkpoint("sub", 7));
  EXPECT_EQ(store_->load_checkpoint("sub").value_or(-1), 7);
  ASSERT_TRUE(store_->transact([](StoreTransaction& tx) { return tx.reset_checkpoint("fresh", 3); }));
  EXPECT_EQ(store_->load_checkpoint("fresh").value_or(-1), 3) << "a reset creates a missing checkpoint";
  // Two saves in one transaction: the higher one stands, in either order.
  ASSERT_TRUE(store_->transact([](StoreTransaction& tx) -> Status {
    HERALD_RETURN_IF_ERROR(tx.save_checkpoint("sub", 20));
    return tx.save_checkpoint("sub", 15);
  }));
  EXPECT_EQ(store_->load_checkpoint("sub").value_or(-1), 20);
  reopen();
  EXPECT_EQ(store_->load_checkpoint("sub").value_or(-1), GetParam().persistent ? 20 : -1);
}

TEST_P(StoreContract, ADeadLetterAddedInATransactionCommitsWithIt) {
  DeadLetter dl;
  dl.handler = "h";
  dl.event_id = "e-1";
  dl.event_type = "T";
  dl.stream_id = "s";
  dl.position = 3;
  dl.attempts = 2;
  dl.last_error = "boom";
  // Rolled back with its transaction.
  Status rolled_back = store_->transact([&](StoreTransaction& tx) -> Status {
    auto id = tx.add_dead_letter(dl);
    if (!id) return id.status();
    EXPECT_GT(*id, 0);
    return Status::internal("give up");
  });
  EXPECT_EQ(rolled_back.code(), StatusCode::internal);
  auto none = store_->list_dead_letters("h");
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());

  std::int64_t added = 0;
  ASSERT_TRUE(store_->transact([&](StoreTransaction& tx) -> Status {
    auto id = tx.add_dead_letter(dl);
    if (!id) return id.status();
    added = *id;
    return Status::ok();
  }));
  auto got = store_->get_dead_letter(added);
  ASSERT_TRUE(got) << got.status().to_string();
  EXPECT_EQ(got->event_id, "e-1");
  EXPECT_EQ(got->attempts, 2);
  EXPECT_EQ(got->last_error, "boom");
  Status twice = store_->transact([&](StoreTransaction& tx) { return tx.add_dead_letter(dl).status(); });
  EXPECT_EQ(twice.code(), StatusCode::already_exists) << twice.to_string();
  EXPECT_EQ(store_->add_dead_letter(dl).status().code(), StatusCode::already_exists);
  DeadLetter bad = dl;
  bad.handler.clear();
  Status invalid = store_->transact([&](StoreTransaction& tx) { return tx.add_dead_letter(bad).status(); });
  EXPECT_EQ(invalid.code(), StatusCode::invalid_argument);
  EXPECT_EQ(invalid.message(), "dead letter handler is empty");
}

// ---------------------------------------------------------------- process-state input checks

// Every backend refuses the same bad input with the same code and message, and writes nothing.
TEST_P(StoreContract, ProcessStateInputIsCheckedTheSameWayEverywhere) {
  auto expect_invalid = [](const Status& s, std::string_view message) {
    EXPECT_EQ(s.code(), StatusCode::invalid_argument) << s.to_string();
    EXPECT_EQ(s.message(), message);
  };
  expect_invalid(store_->load_checkpoint("").status(), "subscription name is empty");
  expect_invalid(store_->save_checkpoint("", 1), "subscription name is empty");
  expect_invalid(store_->save_checkpoint("sub", -1), "checkpoint position must be >= 0, got -1");
  DeadLetter no_handler;
  no_handler.event_id = "e-1";
  expect_invalid(store_->add_dead_letter(no_handler).status(), "dead letter handler is empty");
  DeadLetter no_event;
  no_event.handler = "h";
  expect_invalid(store_->add_dead_letter(no_event).status(), "dead letter event id is empty");
  expect_invalid(store_->try_acquire_lease("", "me", 1s).status(), "lease name is empty");
  expect_invalid(store_->try_acquire_lease("l", "", 1s).status(), "lease owner is empty");
  expect_invalid(store_->try_acquire_lease("l", "me", 0ms).status(), "lease ttl must be positive, got 0 ms");
  expect_invalid(store_->release_lease("", "me"), "lease name is empty");
  expect_invalid(store_->release_lease("l", ""), "lease owner is empty");
  expect_invalid(store_->read_document("", "k").status(), "collection is empty");
  expect_invalid(store_->read_document("c", "").status(), "document key is empty");
  expect_invalid(store_->read_documents("", "", 1).status(), "collection is empty");

  Status in_tx = store_->transact([&](StoreTransaction& tx) -> Status {
    expect_invalid(tx.inbox_record("", "e").status(), "inbox handler is empty");
    expect_invalid(tx.inbox_record("h", "").status(), "inbox event id is empty");
    expect_invalid(tx.get_document("", "k").status(), "collection is empty");
    expect_invalid(tx.get_document("c", "").status(), "document key is empty");
    expect_invalid(tx.put_document("c", "", "{}"), "document key is empty");
    expect_invalid(tx.put_document("c", "k", "{"), "document 'k' is not valid JSON nested at most 128 deep");
    expect_invalid(tx.put_document("c", "k", std::string(200, '[') + std::string(200, ']')),
                   "document 'k' is not valid JSON nested at most 128 deep");
    expect_invalid(tx.delete_document("", "k"), "collection is empty");
    expect_invalid(tx.list_documents("", "", 1).status(), "collection is empty");
    expect_invalid(tx.save_checkpoint("", 0), "subscription name is empty");
    expect_invalid(tx.save_checkpoint("sub", -5), "checkpoint position must be >= 0, got -5");
    expect_invalid(tx.reset_checkpoint("", 0), "subscription name is empty");
    expect_invalid(tx.reset_checkpoint("sub", -5), "checkpoint position must be >= 0, got -5");
    expect_invalid(tx.check_lease("", 1), "lease name is empty");
    return Status::ok();
  });
  EXPECT_TRUE(in_tx) << in_tx.to_string();

  // Nothing was written by any of them.
  EXPECT_EQ(store_->load_checkpoint("sub").status().code(), StatusCode::not_found);
  auto letters = store_->list_dead_letters();
  ASSERT_TRUE(letters);
  EXPECT_TRUE(letters->empty());
  EXPECT_EQ(store_->read_document("c", "k").status().code(), StatusCode::not_found);
  auto lease = store_->try_acquire_lease("l", "someone", 1s);
  ASSERT_TRUE(lease);
  EXPECT_EQ(lease->outcome, LeaseOutcome::acquired);
}

std::string backend_name(const ::testing::TestParamInfo<Backend>& info) { return info.param.name; }

INSTANTIATE_TEST_SUITE_P(Backends, StoreContract, ::testing::ValuesIn(testing::backends()), backend_name);
INSTANTIATE_TEST_SUITE_P(Backends, ReadAllFilters, ::testing::ValuesIn(testing::backends()), backend_name);

}  // namespace
}  // namespace herald
