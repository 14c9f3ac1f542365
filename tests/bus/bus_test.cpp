// Unit tests of the handler framework and the event bus, on the memory store (and a few on
// sqlite).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <future>
#include <map>
#include <set>

#include "bus/dispatch_context.h"
#include "bus/handler_registry.h"
#include "bus/tick_clock.h"
#include "bus_test_util.h"
#include "herald/typed_handler.h"

namespace herald {
namespace {

using namespace std::chrono_literals;
using testing::ev;
using testing::eventually;
using testing::fast_bus;
using testing::FnHandler;
using testing::memory_store;
using testing::quick_retry;

// ------------------------------------------------------------------ retry policy

TEST(RetryPolicy, ExponentialWithoutJitterDoublesUpToTheCap) {
  RetryPolicy p;
  p.initial_delay = 100ms;
  p.multiplier = 2.0;
  p.max_delay = 1000ms;
  p.jitter = 0.0;
  EXPECT_EQ(p.delay_after(1, 0.5), 100ms);
  EXPECT_EQ(p.delay_after(2, 0.5), 200ms);
  EXPECT_EQ(p.delay_after(3, 0.5), 400ms);
  EXPECT_EQ(p.delay_after(4, 0.5), 800ms);
  EXPECT_EQ(p.delay_after(5, 0.5), 1000ms);
  EXPECT_EQ(p.delay_after(500, 0.5), 1000ms);  // no overflow far out
}

TEST(RetryPolicy, JitterStaysWithinItsBandAndUnderTheCap) {
  RetryPolicy p;
  p.initial_delay = 100ms;
  p.jitter = 0.2;
  p.max_delay = 10'000ms;
  EXPECT_EQ(p.delay_after(1, 0.0), 80ms);
  EXPECT_EQ(p.delay_after(1, 0.5), 100ms);
  EXPECT_EQ(p.delay_after(1, 0.999999), 120ms);
  p.max_delay = 110ms;
  EXPECT_EQ(p.delay_after(1, 0.999999), 110ms);
}

TEST(RetryPolicy, ExplicitDelaysAreUsedLiterallyAndTheLastRepeats) {
  auto p = RetryPolicy::fixed_delays({10ms, 50ms, 200ms}, 6);
  EXPECT_EQ(p.max_attempts, 6);
  EXPECT_EQ(p.delay_after(1, 0.9), 10ms);
  EXPECT_EQ(p.delay_after(2, 0.1), 50ms);
  EXPECT_EQ(p.delay_after(3, 0.5), 200ms);
  EXPECT_EQ(p.delay_after(4, 0.5), 200ms);
}

TEST(RetryPolicy, ClassifiesByCode) {
  RetryPolicy p;
  EXPECT_TRUE(p.is_retryable(Status::unavailable("db busy")));
  EXPECT_TRUE(p.is_retryable(Status::timeout("slow")));
  EXPECT_TRUE(p.is_retryable(Status::wrong_expected_version(3, "conflict")));
  EXPECT_TRUE(p.is_retryable(Status::internal("bug?")));
  EXPECT_FALSE(p.is_retryable(Status::permanent("no")));
  EXPECT_FALSE(p.is_retryable(Status::invalid_argument("bad")));
  EXPECT_FALSE(p.is_retryable(Status::corruption("bad bytes")));
  p.retryable = [](const Status& s) { return s.code() == StatusCode::permanent; };
  EXPECT_TRUE(p.is_retryable(Status::permanent("custom")));
  EXPECT_FALSE(p.is_retryable(Status::unavailable("custom")));
}

// ------------------------------------------------------------------ handlers and registry

TEST(HandlerRegistry, AddFindListRemove) {
  bus::HandlerRegistry reg;
  ASSERT_TRUE(reg.add(std::make_shared<FnHandler>("b", std::vector<std::string>{})).is_ok());
  ASSERT_TRUE(reg.add(std::make_shared<FnHandler>("a", std::vector<std::string>{"X"})).is_ok());
  auto dup = reg.add(std::make_shared<FnHandler>("a", std::vector<std::string>{}));
  EXPECT_EQ(dup.code(), StatusCode::already_exists);
  EXPECT_NE(dup.message().find("'a'"), std::string::npos);
  EXPECT_EQ(reg.add(nullptr).code(), StatusCode::invalid_argument);
  EXPECT_EQ(reg.add(std::make_shared<FnHandler>("", std::vector<std::string>{})).code(), StatusCode::invalid_argument);
  auto list = reg.list();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0]->name(), "a");
  EXPECT_EQ(list[1]->name(), "b");
  ASSERT_NE(reg.find("a"), nullptr);
  EXPECT_EQ(reg.find("zzz"), nullptr);
  EXPECT_TRUE(reg.remove("a").is_ok());
  EXPECT_EQ(reg.remove("a").code(), StatusCode::not_found);
  EXPECT_EQ(reg.list().size(), 1u);
}

TEST(EventHandler, HandlesItsTypesOrEverythingWhenEmpty) {
  FnHandler some("h", {"A", "B"});
  FnHandler all("h2", {});
  EXPECT_TRUE(some.handles("A"));
  EXPECT_FALSE(some.handles("C"));
  EXPECT_TRUE(all.handles("C"));
}

struct UserRegistered {
  static constexpr std::string_view kType = "UserRegistered";
  std::string user_id;
  std::string email;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(UserRegistered, user_id, email)

struct UserDeleted {
  static constexpr std::string_view kType = "UserDeleted";
  std::string user_id;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(UserDeleted, user_id)

class UserStats final : public BaseEventHandler<UserRegistered, UserDeleted> {
 public:
  std::string name() const override { return "stats.users"; }
  Status on(const UserRegistered& e, const RecordedEvent&, HandlerContext&) override {
    std::lock_guard lock(mu);
    emails.push_back(e.email);
    return Status::ok();
  }
  Status on(const UserDeleted& e, const RecordedEvent&, HandlerContext&) override {
    std::lock_guard lock(mu);
    deleted.push_back(e.user_id);
    return Status::ok();
  }
  std::mutex mu;  // guards emails, deleted
  std::vector<std::string> emails;
  std::vector<std::string> deleted;
};

TEST(BaseEventHandler, DecodesAndDispatchesByType) {
  auto store = memory_store();
  UserStats h;
  EXPECT_EQ(h.event_types(), (std::vector<std::string>{"UserRegistered", "UserDeleted"}));
  ASSERT_TRUE(store->append("user-1", ExpectedVersion::any(),
                            {to_event(UserRegistered{"1", "a@b.c"}), to_event(UserDeleted{"1"}),
                             ev("UserRegistered", R"({"user_id":5})"), ev("Other")})
                  .is_ok());
  auto all = store->read_all(0, 10);
  ASSERT_TRUE(all.is_ok());
  bus::DispatchContext dispatch(*store, h.name());
  HandlerContext& ctx = dispatch.context();
  EXPECT_TRUE(h.handle(all->events[0], ctx).is_ok());
  EXPECT_TRUE(h.handle(all->events[1], ctx).is_ok());
  EXPECT_EQ(h.handle(all->events[2], ctx).code(), StatusCode::permanent);  // wrong shape
  EXPECT_EQ(h.handle(all->events[3], ctx).code(), StatusCode::permanent);  // not its type
  EXPECT_EQ(h.emails, std::vector<std::string>{"a@b.c"});
  EXPECT_EQ(h.deleted, std::vector<std::string>{"1"});
}

TEST(HandlerContext, ExactlyOnceSkipsWorkAlreadyRecordedAndRollsBackOnFailure) {
  auto store = memory_store();
  ASSERT_TRUE(store->append("c-1", ExpectedVersion::any(), {ev("Tick")}).is_ok());
  auto e = store->read_all(0, 1)->events.at(0);
  bus::DispatchContext dispatch(*store, "counter");
  HandlerContext& ctx = dispatch.context();
  int runs = 0;
  auto bump = [&](StoreTransaction& tx) -> Status {
    ++runs;
    return tx.put_document("c", "k", R"({"n":1})");
  };
  // A failing work leaves no inbox record, so a later try runs it.
  EXPECT_EQ(ctx.exactly_once(e, [](StoreTransaction&) { return Status::unavailable("boom"); }).code(),
            StatusCode::unavailable);
  ASSERT_TRUE(ctx.exactly_once(e, bump).is_ok());
  ASSERT_TRUE(ctx.exactly_once(e, bump).is_ok());
  EXPECT_EQ(runs, 1);
  bus::DispatchContext other(*store, "other");
  ASSERT_TRUE(other.context().exactly_once(e, bump).is_ok());
  EXPECT_EQ(runs, 2);  // the inbox is per handler
}

// ------------------------------------------------------------------ publish, subscribe

TEST(EventBus, PublishReturnsWithoutWaitingForHandlers) {
  auto store = memory_store();
  EventBus bus(store, fast_bus());
  std::promise<void> release;
  auto released = release.get_future().share();
  std::atomic_int entered{0};
  auto h = std::make_shared<FnHandler>("slow", std::vector<std::string>{}, [&](const RecordedEvent&, HandlerContext&) {
    entered.fetch_add(1);
    released.wait();
    return Status::ok();
  });
  ASSERT_TRUE(bus.register_handler(h).is_ok());
  ASSERT_TRUE(bus.start().is_ok());
  ASSERT_TRUE(bus.publish("a-1", ExpectedVersion::no_stream(), {ev("A")}).is_ok());
  ASSERT_TRUE(eventually([&] { return entered.load() == 1; }));
  // The handler is blocked inside its first event; publishing still completes.
  auto r = bus.publish("a-1", ExpectedVersion::exact(0), {ev("A"), ev("A")});
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->stream_version, 2);
  EXPECT_EQ(h->handled_count(), 0u);
  release.set_value();
  ASSERT_TRUE(eventually([&] { return h->handled_count() == 3; }));
  auto conflict = bus.publish("a-1", ExpectedVersion::no_stream(), {ev("A")});
  EXPECT_EQ(conflict.status().code(), StatusCode::wrong_expected_version);
  auto stats = bus.stats();
  EXPECT_EQ(stats.publish_calls, 3);
  EXPECT_EQ(stats.published_events, 3);
  EXPECT_EQ(stats.publish_failures, 1);
}

TEST(EventBus, LiveSubscriptionSeesOnlyLaterEventsOfItsTypeAndEndsWithItsHandle) {
  auto store = memory_store();
  EventBus bus(store, fast_bus());
  ASSERT_TRUE(bus.publish("a-1", ExpectedVersion::any(), {ev("A")}).is_ok());  // before subscribe
  std::mutex mu;
  std::vector<std::string> a_seen, all_seen;
  auto sub_a = bus.subscribe("A", [&](const RecordedEvent& e) {
    std::lock_guard lock(mu);
    a_seen.push_back(e.type + ":" + e.payload);
  });
  auto sub_all = bus.subscribe("*", [&](const RecordedEvent& e) {
    std::lock_guard lock(mu);
    all_seen.push_back(e.type);
    if (e.type == "Boom") throw std::runtime_error("subscriber bug");  // caught and logged
  });
  EXPECT_TRUE(sub_a.active());
  ASSERT_TRUE(bus.start().is_ok());
  ASSERT_TRUE(bus.publish("a-1", ExpectedVersion::any(), {ev("A", R"({"n":1})"), ev("B"), ev("Boom")}).is_ok());
  ASSERT_TRUE(eventually([&] {
    std::lock_guard lock(mu);
    return all_seen.size() == 3;
  }));
  sub_a.unsubscribe();
  EXPECT_FALSE(sub_a.active());
  ASSERT_TRUE(bus.publish("a-1", ExpectedVersion::any(), {ev("A", R"({"n":2})"), ev("C")}).is_ok());
  ASSERT_TRUE(eventually([&] {
    std::lock_guard lock(mu);
    return all_seen.size() == 5;
  }));
  std::lock_guard lock(mu);
  EXPECT_EQ(a_seen, std::vector<std::string>{R"(A:{"n":1})"});
  EXPECT_EQ(all_seen, (std::vector<std::string>{"A", "B", "Boom", "A", "C"}));
  EXPECT_GE(bus.stats().live_deliveries, 6);
}

// ------------------------------------------------------------------ durable handlers

TEST(EventBus, DurableHandlersSeeTheirTypesInOrderAndRunIndependently) {
  auto store = memory_store();
  EventBus bus(store, fast_bus());
  auto orders = std::make_shared<FnHandler>("orders", std::vector<std::string>{"OrderCreated"});
  auto all = std::make_shared<FnHandler>("audit", std::vector<std::string>{});
  ASSERT_TRUE(bus.register_handler(orders).is_ok());
  ASSERT_TRUE(bus.register_handler(all).is_ok());
  EXPECT_EQ(bus.register_handler(std::make_shared<FnHandler>("orders", std::vector<std::string>{})).code(),
            StatusCode::already_exists);
  HandlerOptions bad;
  bad.lanes = 0;
  EXPECT_EQ(bus.register_handler(std::make_shared<FnHandler>("x", std::vector<std::string>{}), bad).code(),
            StatusCode::invalid_argument);
  bad.lanes = 65;
  EXPECT_EQ(bus.register_handler(std::make_shared<FnHandler>("x", std::vector<std::string>{}), bad).code(),
            StatusCode::invalid_argument);
  EXPECT_EQ(bus.handler_names(), (std::vector<std::string>{"audit", "orders"}));
  // Published before start: durable handlers still get them (they start from the beginning).
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(bus.publish("order-" + std::to_string(i % 3), ExpectedVersion::any(),
                            {ev("OrderCreated", "{\"i\":" + std::to_string(i) + "}"), ev("Noise")})
                    .is_ok());
  }
  ASSERT_TRUE(bus.start().is_ok());
  ASSERT_TRUE(eventually([&] { return orders->handled_count() == 20 && all->handled_count() == 40; }));
  std::int64_t last = -1;
  for (const auto& e : orders->handled()) {
    EXPECT_EQ(e.type, "OrderCreated");
    EXPECT_GT(e.position, last);
    last = e.position;
  }
  ASSERT_TRUE(eventually([&] { return bus.handler_status("orders")->checkpoint == 40; }));
  auto st = bus.handler_status("orders");
  ASSERT_TRUE(st.is_ok());
  EXPECT_EQ(st->processed, 20);
  EXPECT_EQ(st->lag, 0);
  EXPECT_EQ(st->latency.count, 20);
  EXPECT_EQ(st->state, HandlerState::running);
  EXPECT_EQ(bus.handler_status("nope").status().code(), StatusCode::not_found);
  EXPECT_EQ(bus.handler_statuses().size(), 2u);
}

TEST(TickClock, ConvertsAnIntervalToMicroseconds) {
  const auto& clock = bus::TickClock::get();
  const std::int64_t t0 = clock.now();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const std::int64_t t1 = clock.now();
  EXPECT_GE(clock.micros(t1 - t0), 20'000);  // a sleep lasts at least what was asked
  EXPECT_LT(clock.micros(t1 - t0), 20'000'000) << "ticks converted with a wrong rate";
  EXPECT_EQ(clock.micros(t0 - t1), 0) << "a negative interval counts as none";
}

// The latency histogram of the lane's hot path (one clock read per event, chained from the
// previous call) puts slow calls in slow buckets and accounts for every call.
TEST(EventBus, LatencyHistogramPlacesSlowCallsInSlowBuckets) {
  auto store = memory_store();
  EventBus bus(store);
  auto slow = std::make_shared<FnHandler>("slow", std::vector<std::string>{}, [](const RecordedEvent&, HandlerContext&) {
    std::this_thread::sleep_for(std::chrono::milliseconds(3));
    return Status::ok();
  });
  ASSERT_TRUE(bus.register_handler(slow).is_ok());
  ASSERT_TRUE(bus.publish("s-1", ExpectedVersion::any(), {ev("A"), ev("B"), ev("C"), ev("D")}).is_ok());
  ASSERT_TRUE(bus.start().is_ok());
  ASSERT_TRUE(eventually([&] { return bus.handler_status("slow")->processed == 4; }));
  auto st = bus.handler_status("slow");
  ASSERT_TRUE(st.is_ok());
  EXPECT_EQ(st->latency.count, 4);
  EXPECT_GE(st->latency.sum_us, 4 * 3'000);
  std::int64_t at_least_2500us = 0;
  for (std::size_t b = 0; b < LatencyHistogram::kBuckets; ++b) {
    if (b >= std::size(LatencyHistogram::kBucketUpperUs) || LatencyHistogram::kBucketUpperUs[b] >= 2'500) {
      at_least_2500us += st->latency.counts[b];
    }
  }
  EXPECT_EQ(at_least_2500us, 4) << "every 3 ms call belongs in a bucket of 2.5 ms or more";
}

TEST(EventBus, ResumesFromTheStoredCheckpointAfterRestart) {
  auto store = memory_store();
  auto first = std::make_shared<FnHandler>("h", std::vector<std::string>{});
  {
    EventBus bus(store, fast_bus());
    ASSERT_TRUE(bus.register_handler(first).is_ok());
    ASSERT_TRUE(bus.start().is_ok());
    for (int i = 0; i < 10; ++i) ASSERT_TRUE(bus.publish("s-1", ExpectedVersion::any(), {ev("A")}).is_ok());
    ASSERT_TRUE(eventually([&] { return first->handled_count() == 10; }));
    auto report = bus.stop(std::chrono::steady_clock::now() + 5s);
    EXPECT_TRUE(report.clean);
    EXPECT_TRUE(report.unfinished.empty());
    EXPECT_EQ(report.pending_events, 0);
    EXPECT_EQ(bus.start().code(), StatusCode::failed_precondition);
  }
  EXPECT_EQ(*store->load_checkpoint("h"), 10);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(store->append("s-2", ExpectedVersion::any(), {ev("B")}).is_ok());
  auto second = std::make_shared<FnHandler>("h", std::vector<std::string>{});
  EventBus bus(store, fast_bus());
  ASSERT_TRUE(bus.register_handler(second).is_ok());
  ASSERT_TRUE(bus.start().is_ok());
  ASSERT_TRUE(eventually([&] { return second->handled_count() == 5; }));
  for (const auto& e : second->handled()) EXPECT_EQ(e.type, "B");
}

TEST(EventBus, StartFromEndSkipsHistoryOnlyOnTheFirstRun) {
  auto store = memory_store();
  ASSERT_TRUE(store->append("s-1", ExpectedVersion::any(), {ev("Old"), ev("Old")}).is_ok());
  HandlerOptions o;
  o.start_from = StartFrom::end;
  auto h = std::make_shared<FnHandler>("tail", std::vector<std::string>{});
  EventBus bus(store, fast_bus());
  ASSERT_TRUE(bus.register_handler(h, o).is_ok());
  ASSERT_TRUE(bus.start().is_ok());
  ASSERT_TRUE(bus.publish("s-1", ExpectedVersion::any(), {ev("New")}).is_ok());
  ASSERT_TRUE(eventually([&] { return h->handled_count() == 1; }));
  EXPECT_EQ(h->handled()[0].type, "New");
}

TEST(EventBus, HandlerRegisteredWhileRunningStartsAtOnceAndUnregisterKeepsItsCheckpoint) {
  auto store = memory_store();
  EventBus bus(store, fast_bus());
  ASSERT_TRUE(bus.start().is_ok());
  ASSERT_TRUE(bus.publish("s-1", ExpectedVersion::any(), {ev("A"), ev("A")}).is_ok());
  auto h = std::make_shared<FnHandler>("late", std::vector<std::string>{});
  ASSERT_TRUE(bus.register_handler(h).is_ok());
  ASSERT_TRUE(eventually([&] { return h->handled_count() == 2; }));
  ASSERT_TRUE(bus.unregister_handler("late").is_ok());
  EXPECT_EQ(bus.unregister_handler("late").code(), StatusCode::not_found);
  EXPECT_EQ(*store->load_checkpoint("late"), 2);
  EXPECT_TRUE(bus.handler_names().empty());
}

TEST(EventBus, LanesKeepEachStreamInOrderAndHaveOneCheckpointEach) {
  auto store = memory_store();
  EventBus bus(store, fast_bus());
  HandlerOptions o;
  o.lanes = 4;
  o.batch_size = 7;
  std::mutex mu;
  std::map<std::string, std::vector<std::int64_t>> versions;  // guarded by mu
  auto h = std::make_shared<FnHandler>("laned", std::vector<std::string>{}, [&](const RecordedEvent& e, HandlerContext&) {
    std::lock_guard lock(mu);
    versions[e.stream_id].push_back(e.version);
    return Status::ok();
  });
  ASSERT_TRUE(bus.register_handler(h, o).is_ok());
  ASSERT_TRUE(bus.start().is_ok());
  for (int round = 0; round < 10; ++round) {
    for (int s = 0; s < 12; ++s) {
      ASSERT_TRUE(bus.publish("s-" + std::to_string(s), ExpectedVersion::any(), {ev("A"), ev("A")}).is_ok());
    }
  }
  ASSERT_TRUE(eventually([&] { return h->handled_count() == 240; }));
  {
    std::lock_guard lock(mu);
    ASSERT_EQ(versions.size(), 12u);
    for (const auto& [stream, v] : versions) {
      ASSERT_EQ(v.size(), 20u) << stream;
      for (std::size_t i = 0; i < v.size(); ++i) EXPECT_EQ(v[i], static_cast<std::int64_t>(i)) << stream;
    }
  }
  // Every lane also reads past the other lanes' events; wait for the slowest one.
  ASSERT_TRUE(eventually([&] { return bus.handler_status("laned")->checkpoint == 240; }));
  (void)bus.stop(std::chrono::steady_clock::now() + 5s);
  for (int lane = 0; lane < 4; ++lane) {
    auto cp = store->load_checkpoint("laned#" + std::to_string(lane) + "/4");
    ASSERT_TRUE(cp.is_ok()) << lane;
    EXPECT_EQ(*cp, 240);
  }
  EXPECT_EQ(*store->load_checkpoint("laned#lanes"), 4);
  EXPECT_EQ(bus.handler_status("laned")->lanes, 4);
}

TEST(EventBus, ChangingTheLaneCountResumesEveryLaneFromTheLowestOldCheckpoint) {
  auto store = memory_store();
  for (int s = 0; s < 8; ++s) ASSERT_TRUE(store->append("s-" + std::to_string(s), ExpectedVersion::any(), {ev("A")}).is_ok());
  // An earlier 2-lane run left lane 1 behind lane 0.
  ASSERT_TRUE(store->save_checkpoint("h#lanes", 2).is_ok());
  ASSERT_TRUE(store->save_checkpoint("h#0/2", 8).is_ok());
  ASSERT_TRUE(store->save_checkpoint("h#1/2", 3).is_ok());
  HandlerOptions o;
  o.lanes = 3;
  auto h = std::make_shared<FnHandler>("h", std::vector<std::string>{});
  EventBus bus(store, fast_bus());
  ASSERT_TRUE(bus.register_handler(h, o).is_ok());
  ASSERT_TRUE(bus.start().is_ok());
  // Positions 3..7 are redelivered to the new lanes; nothing before 3, nothing skipped.
  ASSERT_TRUE(eventually([&] { return h->handled_count() == 5; }));
  ASSERT_TRUE(eventually([&] { return bus.handler_status("h")->checkpoint == 8; }));
  (void)bus.stop(std::chrono::steady_clock::now() + 5s);
  std::set<std::int64_t> positions;
  for (const auto& e : h->handled()) positions.insert(e.position);
  EXPECT_EQ(positions, (std::set<std::int64_t>{3, 4, 5, 6, 7}));
  EXPECT_EQ(*store->load_checkpoint("h#lanes"), 3);
  for (int lane = 0; lane < 3; ++lane) EXPECT_EQ(*store->load_checkpoint("h#" + std::to_string(lane) + "/3"), 8);
}

// ------------------------------------------------------------------ retries

TEST(EventBus, RetryableFailuresAreRetriedThenSucceed) {
  testing::ManualTime time;
  auto store = memory_store();
  EventBus bus(store, time.bus());
  std::vector<int> attempts_seen;  // only the lane thread writes it before handled_count moves
  auto h = std::make_shared<FnHandler>("flaky", std::vector<std::string>{}, [&](const RecordedEvent&, HandlerContext& ctx) {
    attempts_seen.push_back(ctx.attempt());
    return ctx.attempt() < 3 ? Status::unavailable("not yet") : Status::ok();
  });
  HandlerOptions o;
  o.retry = RetryPolicy::fixed_delays({1s, 2s}, 5);
  ASSERT_TRUE(bus.register_handler(h, o).is_ok());
  ASSERT_TRUE(bus.start().is_ok());
  ASSERT_TRUE(bus.publish("s-1", ExpectedVersion::any(), {ev("A")}).is_ok());
  ASSERT_TRUE(eventually([&] { return bus.handler_status("flaky")->retried == 1; }));
  // The retry is due 1 s after the failure, on the bus's time: not before.
  time.advance(999ms);
  EXPECT_EQ(h->calls().size(), 1u);
  time.advance(1ms);
  ASSERT_TRUE(eventually([&] { return bus.handler_status("flaky")->retried == 2; }));
  EXPECT_EQ(h->calls().size(), 2u);
  time.advance(2s);  // the second delay of the list
  ASSERT_TRUE(eventually([&] { return h->handled_count() == 1; }));
  (void)bus.stop(std::chrono::steady_clock::now() + 5s);
  EXPECT_EQ(attempts_seen, (std::vector<int>{1, 2, 3}));
  auto st = bus.handler_status("flaky");
  EXPECT_EQ(st->processed, 1);
  EXPECT_EQ(st->failed, 2);
  EXPECT_EQ(st->retried, 2);
  EXPECT_EQ(st->dead_lettered, 0);
  EXPECT_EQ(st->last_error, "unavailable: not yet");
  EXPECT_TRUE(store->list_dead_letters("flaky")->empty());
}

TEST(EventBus, ARetryingStreamBlocksNeitherOtherStreamsNorOtherHandlers) {
  auto store = memory_store();
  EventBus bus(store, fast_bus());
  // One lane only: the other streams share the lane with the retrying one.
  auto stuck = std::make_shared<FnHandler>("stuck", std::vector<std::string>{}, [](const RecordedEvent& e, HandlerContext&) {
    return e.stream_id == "bad-1" ? Status::unavailable("down") : Status::ok();
  });
  auto other = std::make_shared<FnHandler>("other", std::vector<std::string>{});
  HandlerOptions o;
  o.retry = RetryPolicy::fixed_delays({60s}, 3);  // the retry is far away
  ASSERT_TRUE(bus.register_handler(stuck, o).is_ok());
  ASSERT_TRUE(bus.register_handler(other).is_ok());
  ASSERT_TRUE(bus.start().is_ok());
  ASSERT_TRUE(bus.publish("bad-1", ExpectedVersion::any(), {ev("A")}).is_ok());
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(bus.publish("good-" + std::to_string(i), ExpectedVersion::any(), {ev("A")}).is_ok());
  ASSERT_TRUE(bus.publish("bad-1", ExpectedVersion::any(), {ev("A")}).is_ok());  // waits behind its stream
  ASSERT_TRUE(eventually([&] { return stuck->handled_count() == 5 && other->handled_count() == 7; }));
  for (const auto& e : stuck->handled()) EXPECT_NE(e.stream_id, "bad-1");
  ASSERT_TRUE(eventually([&] { return bus.handler_status("stuck")->state == HandlerState::retrying; }));
  auto st = bus.handler_status("stuck");
  EXPECT_EQ(st->checkpoint, 0);  // never past the retrying event
  EXPECT_EQ(st->lag, 7);
  auto report = bus.stop(std::chrono::steady_clock::now() + 5s);
  EXPECT_EQ(*store->load_checkpoint("stuck"), 0);
  EXPECT_EQ(report.pending_events, 7);
}

// ------------------------------------------------------------------ dead letters and parking

// Fails events whose payload says so, until told otherwise.
std::shared_ptr<FnHandler> payload_driven(const std::string& name, std::atomic_bool& fixed) {
  return std::make_shared<FnHandler>(name, std::vector<std::string>{}, [&fixed](const RecordedEvent& e, HandlerContext&) {
    if (!fixed.load() && e.payload.find("\"fail\"") != std::string::npos) return Status::permanent("cannot handle");
    return Status::ok();
  });
}

TEST(EventBus, PermanentFailureIsDeadLetteredAndParksLaterEventsOfItsStream) {
  testing::ManualTime time;
  auto store = memory_store();
  EventBus bus(store, time.bus());
  std::atomic_bool fixed{false};
  auto h = payload_driven("p", fixed);
  HandlerOptions o;
  o.retry = quick_retry(5);
  ASSERT_TRUE(bus.register_handler(h, o).is_ok());
  ASSERT_TRUE(bus.start().is_ok());
  ASSERT_TRUE(bus.publish("s-1", ExpectedVersion::any(), {ev("A", R"({"n":0})"), ev("A", R"({"fail":1})"),
                                                          ev("A", R"({"n":2})"), ev("A", R"({"n":3})")})
                  .is_ok());
  ASSERT_TRUE(bus.publish("s-2", ExpectedVersion::any(), {ev("A"), ev("A")}).is_ok());
  ASSERT_TRUE(eventually([&] { return bus.handler_status("p")->checkpoint == 6; }));
  EXPECT_EQ(h->handled_count(), 3u);  // s-1 v0 and both of s-2
  auto dls = bus.dead_letters("p");
  ASSERT_TRUE(dls.is_ok());
  ASSERT_EQ(dls->size(), 3u);
  const DeadLetter& head = (*dls)[0];
  EXPECT_EQ(head.handler, "p");
  EXPECT_EQ(head.position, 1);
  EXPECT_EQ(head.stream_id, "s-1");
  EXPECT_EQ(head.event_type, "A");
  EXPECT_FALSE(head.parked);
  EXPECT_EQ(head.attempts, 1);  // permanent: no retries
  EXPECT_EQ(head.last_error, "permanent: cannot handle");
  EXPECT_EQ(head.first_failed_at, time.wall->now());  // the bus's clock, not the system's
  EXPECT_EQ(head.last_failed_at, time.wall->now());
  EXPECT_TRUE((*dls)[1].parked);
  EXPECT_TRUE((*dls)[2].parked);
  EXPECT_EQ((*dls)[1].position, 2);
  auto st = bus.handler_status("p");
  EXPECT_EQ(st->state, HandlerState::parked);
  EXPECT_EQ(st->dead_lettered, 1);
  EXPECT_EQ(st->parked, 2);
  // A parked entry cannot jump the queue.
  EXPECT_EQ(bus.redrive((*dls)[1].id).code(), StatusCode::failed_precondition);
  // Still failing: the entry stays, with one more attempt, and the error comes back.
  time.advance(5s);
  Status again = bus.redrive(head.id);
  EXPECT_EQ(again.code(), StatusCode::permanent);
  EXPECT_EQ(store->get_dead_letter(head.id)->attempts, 2);
  EXPECT_EQ(store->get_dead_letter(head.id)->first_failed_at, head.first_failed_at);
  EXPECT_EQ(store->get_dead_letter(head.id)->last_failed_at, head.first_failed_at + 5s);
  // More events of s-1 park too.
  ASSERT_TRUE(bus.publish("s-1", ExpectedVersion::any(), {ev("A", R"({"n":4})")}).is_ok());
  ASSERT_TRUE(eventually([&] { return bus.dead_letters("p")->size() == 4; }));
  fixed = true;
  ASSERT_TRUE(bus.redrive(head.id).is_ok());
  EXPECT_TRUE(bus.dead_letters("p")->empty());
  std::vector<std::int64_t> s1_versions;
  for (const auto& e : h->handled()) {
    if (e.stream_id == "s-1") s1_versions.push_back(e.version);
  }
  EXPECT_EQ(s1_versions, (std::vector<std::int64_t>{0, 1, 2, 3, 4}));
  // The stream runs normally again.
  EXPECT_EQ(h->handled_count(), 7u);
  ASSERT_TRUE(bus.publish("s-1", ExpectedVersion::any(), {ev("A")}).is_ok());
  ASSERT_TRUE(eventually([&] { return h->handled_count() == 8; }));
  EXPECT_EQ(bus.handler_status("p")->parked, 0);
  EXPECT_EQ(bus.redrive(head.id).code(), StatusCode::not_found);
}

TEST(EventBus, RetriesExhaustedEndInDeadLettersWithTheAttemptCount) {
  testing::ManualTime time;
  auto store = memory_store();
  EventBus bus(store, time.bus());
  auto h = std::make_shared<FnHandler>("r", std::vector<std::string>{}, [](const RecordedEvent&, HandlerContext&) {
    return Status::timeout("always slow");
  });
  HandlerOptions o;
  o.retry = RetryPolicy::fixed_delays({1s}, 3);
  o.park_stream_after_dead_letter = false;
  ASSERT_TRUE(bus.register_handler(h, o).is_ok());
  ASSERT_TRUE(bus.start().is_ok());
  const Timestamp t0 = time.wall->now();
  ASSERT_TRUE(bus.publish("s-1", ExpectedVersion::any(), {ev("A"), ev("A")}).is_ok());
  // Two retries of each event, one second apart; the second event waits behind the first.
  for (int retried = 1; retried <= 4; ++retried) {
    ASSERT_TRUE(eventually([&] { return bus.handler_status("r")->retried == retried; })) << retried;
    time.advance(1s);
  }
  ASSERT_TRUE(eventually([&] { return bus.dead_letters("r")->size() == 2; }));
  auto entries = bus.dead_letters("r");
  ASSERT_TRUE(entries.is_ok());
  for (const auto& dl : *entries) {
    EXPECT_EQ(dl.attempts, 3);
    EXPECT_FALSE(dl.parked);  // parking is off: the second event ran (and failed) on its own
    EXPECT_EQ(dl.last_error, "timeout: always slow");
    EXPECT_EQ(dl.last_failed_at - dl.first_failed_at, 2s);  // attempt 1 to attempt 3
  }
  EXPECT_EQ((*entries)[0].first_failed_at, t0);
  EXPECT_EQ((*entries)[1].first_failed_at, t0 + 2s);
  ASSERT_TRUE(eventually([&] { return bus.handler_status("r")->checkpoint == 2; }));
  auto st = bus.handler_status("r");
  EXPECT_EQ(st->failed, 6);
  EXPECT_EQ(st->retried, 4);
  EXPECT_EQ(st->dead_lettered, 2);
}

TEST(EventBus, DiscardDropsTheEntryAndReleasesTheParkedEventsInOrder) {
  auto store = memory_store();
  EventBus bus(store, fast_bus());
  std::atomic_bool fixed{false};
  auto h = payload_driven("d", fixed);
  ASSERT_TRUE(bus.register_handler(h).is_ok());
  ASSERT_TRUE(bus.start().is_ok());
  ASSERT_TRUE(bus.publish("s-1", ExpectedVersion::any(), {ev("A", R"({"fail":1})"), ev("A", R"({"n":1})"),
                                                          ev("A", R"({"n":2})")})
                  .is_ok());
  ASSERT_TRUE(eventually([&] { return bus.dead_letters("d")->size() == 3; }));
  auto head = bus.dead_letters("d")->front();
  ASSERT_TRUE(bus.discard(head.id).is_ok());
  EXPECT_TRUE(bus.dead_letters("d")->empty());
  ASSERT_EQ(h->handled_count(), 2u);
  EXPECT_EQ(h->handled()[0].version, 1);
  EXPECT_EQ(h->handled()[1].version, 2);
  EXPECT_EQ(bus.discard(head.id).code(), StatusCode::not_found);
}

TEST(EventBus, ParkedStateSurvivesARestart) {
  auto store = memory_store();
  std::atomic_bool fixed{false};
  {
    EventBus bus(store, fast_bus());
    ASSERT_TRUE(bus.register_handler(payload_driven("k", fixed)).is_ok());
    ASSERT_TRUE(bus.start().is_ok());
    ASSERT_TRUE(bus.publish("s-1", ExpectedVersion::any(), {ev("A", R"({"fail":1})"), ev("A")}).is_ok());
    ASSERT_TRUE(eventually([&] { return bus.dead_letters("k")->size() == 2; }));
  }
  auto h = payload_driven("k", fixed);
  EventBus bus(store, fast_bus());
  ASSERT_TRUE(bus.register_handler(h).is_ok());
  ASSERT_TRUE(bus.start().is_ok());
  ASSERT_TRUE(bus.publish("s-1", ExpectedVersion::any(), {ev("A")}).is_ok());
  ASSERT_TRUE(bus.publish("s-2", ExpectedVersion::any(), {ev("A")}).is_ok());
  ASSERT_TRUE(eventually([&] { return bus.dead_letters("k")->size() == 3 && h->handled_count() == 1; }));
  EXPECT_EQ(h->handled()[0].stream_id, "s-2");
  EXPECT_EQ(bus.handler_status("k")->parked, 2);
  fixed = true;
  ASSERT_TRUE(bus.redrive_all("k").is_ok());
  EXPECT_TRUE(bus.dead_letters("k")->empty());
  ASSERT_EQ(h->handled_count(), 4u);
  std::vector<std::int64_t> versions;
  for (const auto& e : h->handled()) {
    if (e.stream_id == "s-1") versions.push_back(e.version);
  }
  EXPECT_EQ(versions, (std::vector<std::int64_t>{0, 1, 2}));
}

TEST(EventBus, RedriveRejectsUnknownIdsAndUnregisteredHandlers) {
  auto store = memory_store();
  EventBus bus(store, fast_bus());
  EXPECT_EQ(bus.redrive(12345).code(), StatusCode::not_found);
  ASSERT_TRUE(store->append("s-1", ExpectedVersion::any(), {ev("A")}).is_ok());
  DeadLetter dl;
  dl.handler = "gone";
  dl.position = 0;
  dl.event_id = store->read_all(0, 1)->events[0].id;
  dl.event_type = "A";
  dl.stream_id = "s-1";
  dl.attempts = 1;
  auto id = store->add_dead_letter(dl);
  ASSERT_TRUE(id.is_ok());
  EXPECT_EQ(bus.redrive(*id).code(), StatusCode::failed_precondition);
  EXPECT_EQ(bus.redrive_all("gone").code(), StatusCode::not_found);
  ASSERT_TRUE(bus.discard(*id).is_ok());  // no runner needed to drop an entry
  EXPECT_TRUE(store->list_dead_letters("gone")->empty());
}

// ------------------------------------------------------------------ replay

TEST(EventBus, ResetCheckpointReplaysAndReportsProgress) {
  auto store = memory_store();
  EventBus bus(store, fast_bus());
  auto h = std::make_shared<FnHandler>("proj", std::vector<std::string>{});
  ASSERT_TRUE(bus.register_handler(h).is_ok());
  EXPECT_EQ(bus.reset_checkpoint("nope", 0).code(), StatusCode::not_found);
  ASSERT_TRUE(bus.start().is_ok());
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(bus.publish("s-1", ExpectedVersion::any(), {ev("A")}).is_ok());
  ASSERT_TRUE(eventually([&] { return h->handled_count() == 10; }));
  EXPECT_EQ(bus.reset_checkpoint("proj", -1).code(), StatusCode::invalid_argument);
  EXPECT_EQ(bus.reset_checkpoint("proj", 11).code(), StatusCode::invalid_argument);
  ASSERT_TRUE(bus.reset_checkpoint("proj", 4).is_ok());
  ASSERT_TRUE(eventually([&] { return h->handled_count() == 16; }));
  ASSERT_TRUE(eventually([&] { return bus.replay_progress("proj")->finished; }));
  auto p = bus.replay_progress("proj");
  EXPECT_EQ(p->total, 6);
  EXPECT_EQ(p->done, 6);
  EXPECT_EQ(p->handler, "proj");
  EXPECT_EQ(h->handled()[10].position, 4);
  EXPECT_EQ(bus.replay_progress("nope").status().code(), StatusCode::not_found);
}

TEST(EventBus, ResetToTimeStartsAtTheFirstEventRecordedThen) {
  auto clock = std::make_shared<ManualClock>(timestamp_from_micros(1'000'000));
  StoreOptions so;
  so.clock = clock;
  auto opened = open_store("memory:", so);
  ASSERT_TRUE(opened.is_ok());
  std::shared_ptr<EventStore> store(std::move(*opened));
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(store->append("s-1", ExpectedVersion::any(), {ev("A")}).is_ok());
    clock->advance(std::chrono::seconds(1));
  }
  auto h = std::make_shared<FnHandler>("t", std::vector<std::string>{});
  EventBus bus(store, fast_bus());
  ASSERT_TRUE(bus.register_handler(h).is_ok());
  // Before start: the checkpoint is written directly and picked up at start.
  ASSERT_TRUE(bus.reset_checkpoint_to_time("t", timestamp_from_micros(3'500'000)).is_ok());
  EXPECT_EQ(*store->load_checkpoint("t"), 3);
  ASSERT_TRUE(bus.start().is_ok());
  ASSERT_TRUE(eventually([&] { return h->handled_count() == 3; }));
  EXPECT_EQ(h->handled()[0].position, 3);
}

TEST(EventBus, ReplayRangeRunsOnTheCallerWithoutMovingTheCheckpoint) {
  auto store = memory_store();
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(store->append("s-" + std::to_string(i % 2), ExpectedVersion::any(), {ev(i % 2 ? "B" : "A")}).is_ok());
  auto h = std::make_shared<FnHandler>("only-a", std::vector<std::string>{"A"});
  EventBus bus(store, fast_bus());
  ASSERT_TRUE(bus.register_handler(h).is_ok());
  std::vector<ReplayProgress> progress;
  ASSERT_TRUE(bus.replay_range("only-a", 2, 8, [&](const ReplayProgress& p) { progress.push_back(p); }).is_ok());
  std::vector<std::int64_t> positions;
  for (const auto& e : h->handled()) positions.push_back(e.position);
  EXPECT_EQ(positions, (std::vector<std::int64_t>{2, 4, 6}));
  ASSERT_FALSE(progress.empty());
  EXPECT_EQ(progress.back().total, 6);
  EXPECT_EQ(progress.back().done, 6);
  EXPECT_TRUE(progress.back().finished);
  EXPECT_EQ(store->load_checkpoint("only-a").status().code(), StatusCode::not_found);
  EXPECT_EQ(bus.replay_range("only-a", 5, 2).code(), StatusCode::invalid_argument);
  EXPECT_EQ(bus.replay_range("nope", 0, 2).code(), StatusCode::not_found);
}

TEST(EventBus, ReplayRangeFailuresFollowTheRetryPolicyAndRedriveAllReturnsTheFirstFailure) {
  auto store = memory_store();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(store->append("s-" + std::to_string(i), ExpectedVersion::any(), {ev("A")}).is_ok());
  auto h = std::make_shared<FnHandler>("bad", std::vector<std::string>{}, [](const RecordedEvent& e, HandlerContext&) {
    return e.stream_id == "s-1" ? Status::unavailable("still down") : Status::ok();
  });
  HandlerOptions o;
  o.retry = RetryPolicy::fixed_delays({1s}, 2);
  testing::ManualTime time;
  EventBus bus(store, time.bus());
  ASSERT_TRUE(bus.register_handler(h, o).is_ok());
  auto replay = std::async(std::launch::async, [&] { return bus.replay_range("bad", 0, 3); });
  // The replay waits for its retry on the bus's time: it is still waiting until that moves.
  ASSERT_TRUE(eventually([&] { return time.mono->waiting() == 1; }));
  EXPECT_EQ(bus.handler_status("bad")->retried, 1);
  EXPECT_EQ(h->calls().size(), 2u);  // s-0, then s-1's first attempt
  time.advance(1s);
  ASSERT_TRUE(replay.get().is_ok());
  auto dls = bus.dead_letters("bad");
  ASSERT_TRUE(dls.is_ok());
  ASSERT_EQ(dls->size(), 1u);
  EXPECT_EQ(dls->front().stream_id, "s-1");
  EXPECT_EQ(dls->front().attempts, 2);
  EXPECT_EQ(h->handled_count(), 2u);
  Status st = bus.redrive_all("bad");
  EXPECT_EQ(st.code(), StatusCode::unavailable);
  EXPECT_EQ(st.message(), "still down");
  EXPECT_EQ(bus.dead_letters("bad")->front().attempts, 3);
}

TEST(EventBus, ExactlyOnceCommitsTheCheckpointWithTheEffectsUnlessAnEarlierEventIsPending) {
  auto store = memory_store();
  EventBus bus(store, fast_bus());
  std::mutex mu;
  std::map<std::int64_t, std::int64_t> checkpoint_seen;  // position -> stored checkpoint; guarded by mu
  auto h = std::make_shared<FnHandler>("proj", std::vector<std::string>{}, [&](const RecordedEvent& e, HandlerContext& ctx) {
    if (e.stream_id == "bad-1") return Status::unavailable("down");
    Status st = ctx.exactly_once(e, [&](StoreTransaction& tx) { return tx.put_document("p", e.id, "{}"); });
    if (!st.is_ok()) return st;
    // Read right after the transaction, before the runner's own (batched) checkpoint save.
    auto cp = ctx.store().load_checkpoint("proj");
    std::lock_guard lock(mu);
    checkpoint_seen[e.position] = cp.value_or(-1);
    return Status::ok();
  });
  HandlerOptions o;
  o.retry = RetryPolicy::fixed_delays({60s}, 3);
  ASSERT_TRUE(bus.register_handler(h, o).is_ok());
  ASSERT_TRUE(bus.start().is_ok());
  ASSERT_TRUE(bus.publish("good-1", ExpectedVersion::any(), {ev("A"), ev("A")}).is_ok());
  ASSERT_TRUE(eventually([&] { return h->handled_count() == 2; }));
  ASSERT_TRUE(bus.publish("bad-1", ExpectedVersion::any(), {ev("A")}).is_ok());
  ASSERT_TRUE(bus.publish("good-2", ExpectedVersion::any(), {ev("A")}).is_ok());
  ASSERT_TRUE(eventually([&] { return h->handled_count() == 3; }));
  std::lock_guard lock(mu);
  EXPECT_EQ(checkpoint_seen[0], 1);
  EXPECT_EQ(checkpoint_seen[1], 2);
  EXPECT_LE(checkpoint_seen[3], 2);  // position 2 is retrying: the checkpoint must not pass it
}

TEST(EventBus, ExactlyOnceProjectionIsNotDoubledByAReplay) {
  auto store = memory_store();
  EventBus bus(store, fast_bus());
  auto h = std::make_shared<FnHandler>("count", std::vector<std::string>{}, [](const RecordedEvent& e, HandlerContext& ctx) {
    return ctx.exactly_once(e, [](StoreTransaction& tx) -> Status {
      auto doc = tx.get_document("counters", "total");
      int n = 0;
      if (doc) n = nlohmann::json::parse(*doc).at("n").get<int>();
      else if (doc.status().code() != StatusCode::not_found) return doc.status();
      return tx.put_document("counters", "total", nlohmann::json{{"n", n + 1}}.dump());
    });
  });
  ASSERT_TRUE(bus.register_handler(h).is_ok());
  ASSERT_TRUE(bus.start().is_ok());
  for (int i = 0; i < 8; ++i) ASSERT_TRUE(bus.publish("s-1", ExpectedVersion::any(), {ev("A")}).is_ok());
  ASSERT_TRUE(eventually([&] { return h->handled_count() == 8; }));
  ASSERT_TRUE(bus.reset_checkpoint("count", 0).is_ok());
  ASSERT_TRUE(eventually([&] { return h->handled_count() == 16; }));
  std::string total;
  ASSERT_TRUE(store->transact([&](StoreTransaction& tx) -> Status {
    auto d = tx.get_document("counters", "total");
    if (!d) return d.status();
    total = *d;
    return Status::ok();
  }).is_ok());
  EXPECT_EQ(nlohmann::json::parse(total).at("n").get<int>(), 8);
}

TEST(EventBus, AReplayWaitingForARetryEndsCancelledWhenItsHandlerIsStopped) {
  auto store = memory_store();
  ASSERT_TRUE(store->append("s-1", ExpectedVersion::any(), {ev("A")}).is_ok());
  auto h = std::make_shared<FnHandler>("down", std::vector<std::string>{}, [](const RecordedEvent&, HandlerContext&) {
    return Status::unavailable("down");
  });
  HandlerOptions o;
  o.retry = RetryPolicy::fixed_delays({1h}, 5);
  testing::ManualTime time;
  EventBus bus(store, time.bus());
  ASSERT_TRUE(bus.register_handler(h, o).is_ok());
  auto replay = std::async(std::launch::async, [&] { return bus.replay_range("down", 0, 1); });
  ASSERT_TRUE(eventually([&] { return time.mono->waiting() == 1; }));
  ASSERT_TRUE(bus.unregister_handler("down").is_ok());  // stops the runner the replay runs on
  Status st = replay.get();
  EXPECT_EQ(st.code(), StatusCode::cancelled) << st.to_string();
  EXPECT_EQ(h->calls().size(), 1u);
  EXPECT_TRUE(store->list_dead_letters("down")->empty()) << "a stop is no reason to dead-letter";
}

// ------------------------------------------------------------------ stop, exceptions, leases

TEST(EventBus, StopReportsAHandlerStillInFlightAtTheDeadline) {
  auto store = memory_store();
  auto bus = std::make_unique<EventBus>(store, fast_bus());
  std::promise<void> release;
  auto released = release.get_future().share();
  std::atomic_bool inside{false};
  auto h = std::make_shared<FnHandler>("stuck", std::vector<std::string>{}, [&](const RecordedEvent&, HandlerContext& ctx) {
    inside = true;
    released.wait();
    return ctx.stopping() ? Status::cancelled("shutting down") : Status::ok();
  });
  auto quick = std::make_shared<FnHandler>("quick", std::vector<std::string>{});
  ASSERT_TRUE(bus->register_handler(h).is_ok());
  ASSERT_TRUE(bus->register_handler(quick).is_ok());
  ASSERT_TRUE(bus->start().is_ok());
  ASSERT_TRUE(bus->publish("s-1", ExpectedVersion::any(), {ev("A"), ev("A")}).is_ok());
  ASSERT_TRUE(eventually([&] { return inside.load() && quick->handled_count() == 2; }));
  auto report = bus->stop(std::chrono::steady_clock::now() + 300ms);
  EXPECT_FALSE(report.clean);
  // "quick" normally stops in time too; on a very loaded machine it might not, so only "stuck"
  // is certain to be listed.
  EXPECT_NE(std::find(report.unfinished.begin(), report.unfinished.end(), "stuck"), report.unfinished.end());
  EXPECT_EQ(report.pending_events, 2);  // both events are still unhandled by "stuck"
  EXPECT_EQ(bus->stop(std::chrono::steady_clock::now()).unfinished, report.unfinished);  // idempotent
  release.set_value();
  bus.reset();  // joins the lane once the call returns
  EXPECT_EQ(*store->load_checkpoint("stuck"), 0);  // cancelled by shutdown: not handled
  EXPECT_EQ(*store->load_checkpoint("quick"), 2);
  EXPECT_TRUE(store->list_dead_letters()->empty());
}

TEST(EventBus, AnExceptionFromAHandlerIsARetryableInternalError) {
  testing::ManualTime time;
  auto store = memory_store();
  EventBus bus(store, time.bus());
  std::atomic_int calls{0};
  auto h = std::make_shared<FnHandler>("thrower", std::vector<std::string>{}, [&](const RecordedEvent&, HandlerContext&) -> Status {
    if (calls.fetch_add(1) == 0) throw std::runtime_error("oops");
    return Status::ok();
  });
  HandlerOptions o;
  o.retry = RetryPolicy::fixed_delays({1s}, 3);
  ASSERT_TRUE(bus.register_handler(h, o).is_ok());
  ASSERT_TRUE(bus.start().is_ok());
  ASSERT_TRUE(bus.publish("s-1", ExpectedVersion::any(), {ev("A")}).is_ok());
  ASSERT_TRUE(eventually([&] { return bus.handler_status("thrower")->retried == 1; }));
  time.advance(1s);
  ASSERT_TRUE(eventually([&] { return bus.handler_status("thrower")->processed == 1; }));
  EXPECT_EQ(bus.handler_status("thrower")->last_error, "internal: handler threw: oops");
  EXPECT_EQ(calls.load(), 2);
}

TEST(EventBus, WithLeasesOnlyOneInstanceRunsAHandlerAndAnotherTakesOver) {
  testing::ManualTime time;  // the leases' ttl and renewals move only when the test says so
  auto store = time.memory_store();
  BusOptions o = time.bus();
  o.use_leases = true;
  o.lease_ttl = 300ms;
  o.instance_id = "a";
  auto bus_a = std::make_unique<EventBus>(store, o);
  o.instance_id = "b";
  EventBus bus_b(store, o);
  auto ha = std::make_shared<FnHandler>("leased", std::vector<std::string>{});
  auto hb = std::make_shared<FnHandler>("leased", std::vector<std::string>{});
  ASSERT_TRUE(bus_a->register_handler(ha).is_ok());
  ASSERT_TRUE(bus_a->start().is_ok());
  // (No probing with a 1 ms lease here: on the manual clock such a lease would never expire.)
  ASSERT_TRUE(eventually([&] { return bus_a->handler_status("leased")->active_lanes == 1; }));
  ASSERT_TRUE(bus_b.register_handler(hb).is_ok());
  ASSERT_TRUE(bus_b.start().is_ok());
  EXPECT_EQ(store->try_acquire_lease("leased", "probe", 1ms).value_or(LeaseGrant{LeaseOutcome::acquired, 0}).outcome, LeaseOutcome::held_by_another);
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(bus_a->publish("s-1", ExpectedVersion::any(), {ev("A")}).is_ok());
  ASSERT_TRUE(eventually([&] { return ha->handled_count() == 20; }));
  EXPECT_EQ(hb->handled_count(), 0u);
  (void)bus_a->stop(std::chrono::steady_clock::now() + 5s);  // releases the lease
  bus_a.reset();
  EXPECT_EQ(bus_b.handler_status("leased")->active_lanes, 0);  // b asks again at its next renewal
  time.advance(o.poll_interval);
  ASSERT_TRUE(eventually([&] { return bus_b.handler_status("leased")->active_lanes == 1; }));
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(bus_b.publish("s-1", ExpectedVersion::any(), {ev("A")}).is_ok());
  ASSERT_TRUE(eventually([&] { return hb->handled_count() == 5; }));
  for (const auto& e : hb->handled()) EXPECT_GE(e.position, 20);  // resumed from a's checkpoint
}

// ------------------------------------------------------------------ sqlite

TEST(EventBusSqlite, DeadLettersParkingAndCheckpointsAreDurable) {
  testing::TempDir dir;
  auto file = dir.path() / "events.db";
  std::atomic_bool fixed{false};
  {
    auto store = testing::sqlite_store(file);
    ASSERT_NE(store, nullptr);
    EventBus bus(store, fast_bus());
    HandlerOptions o;
    o.lanes = 2;
    ASSERT_TRUE(bus.register_handler(payload_driven("sq", fixed), o).is_ok());
    ASSERT_TRUE(bus.start().is_ok());
    ASSERT_TRUE(bus.publish("s-1", ExpectedVersion::any(), {ev("A", R"({"fail":1})"), ev("A")}).is_ok());
    ASSERT_TRUE(bus.publish("s-2", ExpectedVersion::any(), {ev("A"), ev("A")}).is_ok());
    ASSERT_TRUE(eventually([&] { return bus.dead_letters("sq")->size() == 2 && bus.handler_status("sq")->checkpoint == 4; }));
    EXPECT_TRUE(bus.stop(std::chrono::steady_clock::now() + 5s).clean);
  }
  auto store = testing::sqlite_store(file);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(*store->load_checkpoint("sq#0/2"), 4);
  EXPECT_EQ(*store->load_checkpoint("sq#1/2"), 4);
  auto h = payload_driven("sq", fixed);
  EventBus bus(store, fast_bus());
  HandlerOptions o;
  o.lanes = 2;
  ASSERT_TRUE(bus.register_handler(h, o).is_ok());
  ASSERT_TRUE(bus.start().is_ok());
  ASSERT_TRUE(bus.publish("s-1", ExpectedVersion::any(), {ev("A")}).is_ok());
  ASSERT_TRUE(eventually([&] { return bus.dead_letters("sq")->size() == 3; }));
  EXPECT_EQ(h->handled_count(), 0u);
  fixed = true;
  ASSERT_TRUE(bus.redrive_all("sq").is_ok());
  EXPECT_TRUE(bus.dead_letters("sq")->empty());
  EXPECT_EQ(h->handled_count(), 3u);
}

}  // namespace
}  // namespace herald
