// Leases between several bus instances on one store (two EventBus objects sharing a memory store
// stand in for two processes), and the configuration default that turns leases on for PostgreSQL.
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "../bus/bus_test_util.h"
#include "herald/system.h"

namespace herald {
namespace {

using namespace std::chrono_literals;
using testing::ev;
using testing::eventually;
using testing::FnHandler;

SystemConfig parsed(const std::vector<std::string>& args, const std::map<std::string, std::string>& env = {}) {
  auto r = parse_config(args, env);
  EXPECT_TRUE(r.is_ok()) << r.status().to_string();
  return r ? r->config : SystemConfig{};
}

TEST(LeaseConfig, OnByDefaultForPostgresStoresOnly) {
  EXPECT_TRUE(parsed({"--store", "postgres://shop@db.internal/shop"}).bus.use_leases);
  EXPECT_TRUE(parsed({"--store", "postgresql://shop@db.internal/shop"}).bus.use_leases);
  EXPECT_FALSE(parsed({"--store", "sqlite:///tmp/shop/events.db"}).bus.use_leases);
  EXPECT_FALSE(parsed({"--store", "memory:"}).bus.use_leases);
  EXPECT_FALSE(parsed({"--data-dir", "/tmp/shop"}).bus.use_leases);  // the sqlite default
  EXPECT_FALSE(parsed({}, {{"HERALD_STORE", "sqlite:///x.db"}}).bus.use_leases);
  EXPECT_TRUE(parsed({}, {{"HERALD_STORE", "postgres://h/db"}}).bus.use_leases);
}

TEST(LeaseConfig, AnExplicitSettingWins) {
  EXPECT_FALSE(parsed({"--store", "postgres://h/db", "--use-leases", "false"}).bus.use_leases);
  EXPECT_FALSE(parsed({"--store", "postgres://h/db"}, {{"HERALD_USE_LEASES", "off"}}).bus.use_leases);
  EXPECT_TRUE(parsed({"--store", "memory:", "--use-leases", "true"}).bus.use_leases);
  auto c = parsed({"--store", "postgres://h/db", "--instance-id", "shop-2", "--lease-ttl-ms", "2500"});
  EXPECT_EQ(c.bus.instance_id, "shop-2");
  EXPECT_EQ(c.bus.lease_ttl, 2500ms);
}

TEST(LeaseConfig, BadLeaseValuesAreRejected) {
  auto r = parse_config({"--store", "postgres://h/db", "--use-leases", "maybe"}, {});
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::invalid_argument);
  EXPECT_NE(r.status().message().find("--use-leases"), std::string::npos) << r.status().message();
  r = parse_config({"--lease-ttl-ms", "0"}, {});
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::invalid_argument);
}

BusOptions leased(const std::string& id, std::chrono::milliseconds ttl) {
  BusOptions o = testing::fast_bus();
  o.use_leases = true;
  o.instance_id = id;
  o.lease_ttl = ttl;
  return o;
}

int active_lanes(const EventBus& bus, const std::string& handler) {
  auto s = bus.handler_status(handler);
  EXPECT_TRUE(s.is_ok()) << s.status().to_string();
  return s ? s->active_lanes : -1;
}

TEST(Leases, StatusShowsWhichInstanceRunsEachLane) {
  auto store = testing::memory_store();
  EventBus a(store, leased("a", 3s)), b(store, leased("b", 3s));
  EXPECT_EQ(a.instance_id(), "a");
  HandlerOptions two;
  two.lanes = 2;
  ASSERT_TRUE(a.register_handler(std::make_shared<FnHandler>("h", std::vector<std::string>{}), two).is_ok());
  ASSERT_TRUE(a.start().is_ok());
  ASSERT_TRUE(eventually([&] { return active_lanes(a, "h") == 2; }));
  ASSERT_TRUE(b.register_handler(std::make_shared<FnHandler>("h", std::vector<std::string>{}), two).is_ok());
  ASSERT_TRUE(b.start().is_ok());
  EXPECT_EQ(store->try_acquire_lease("h#0/2", "probe", 1ms).value_or(LeaseGrant{LeaseOutcome::acquired, 0}).outcome, LeaseOutcome::held_by_another);
  EXPECT_EQ(store->try_acquire_lease("h#1/2", "probe", 1ms).value_or(LeaseGrant{LeaseOutcome::acquired, 0}).outcome, LeaseOutcome::held_by_another);
  EXPECT_EQ(active_lanes(b, "h"), 0);
  auto sb = b.handler_status("h");
  ASSERT_TRUE(sb.is_ok());
  EXPECT_EQ(sb->state, HandlerState::stopped);  // a standby runs nothing
  (void)a.stop(std::chrono::steady_clock::now() + 5s);  // releases both leases
  EXPECT_TRUE(eventually([&] { return active_lanes(b, "h") == 2; }));
  EXPECT_EQ(active_lanes(a, "h"), 0);
}

// Instance `a` stalls inside a handler call past its lease's expiry (as a paused or partitioned
// process would); `b` takes the lane over from the stored checkpoint. When `a` comes back it must
// notice its lease is stale before handling anything else and must not write its (older)
// checkpoint over b's.
TEST(Leases, AStalledOwnerStopsAndDoesNotMoveTheCheckpointBack) {
  testing::ManualTime time;  // the store's lease expiry and both buses' schedules
  auto store = time.memory_store();
  constexpr int kEvents = 10;
  for (int i = 0; i < kEvents; ++i) {
    ASSERT_TRUE(store->append("s-" + std::to_string(i), ExpectedVersion::any(), {ev("T")}).is_ok());
  }
  std::mutex mu;  // guards release_a
  std::condition_variable cv;
  bool release_a = false;
  std::atomic_int a_calls{0};
  auto ha = std::make_shared<FnHandler>("fenced", std::vector<std::string>{"T"},
                                        [&](const RecordedEvent&, HandlerContext&) -> Status {
                                          if (a_calls.fetch_add(1) == 0) {
                                            std::unique_lock lock(mu);
                                            cv.wait(lock, [&] { return release_a; });
                                          }
                                          return Status::ok();
                                        });
  auto hb = std::make_shared<FnHandler>("fenced", std::vector<std::string>{"T"});
  auto a = std::make_unique<EventBus>(store, time.bus(leased("a", 300ms)));
  EventBus b(store, time.bus(leased("b", 300ms)));
  ASSERT_TRUE(a->register_handler(ha).is_ok());
  ASSERT_TRUE(a->start().is_ok());
  ASSERT_TRUE(eventually([&] { return a_calls.load() == 1; }));  // a is stuck in event 0
  ASSERT_TRUE(b.register_handler(hb).is_ok());
  ASSERT_TRUE(b.start().is_ok());
  ASSERT_TRUE(eventually([&] { return time.mono->waiting() == 1; }));  // b stands by
  // b asks again every 20 ms (its poll interval) of the bus's time; a's lease, taken at time 0
  // and never renewed since, still has 1 ms left at 299 ms: b keeps standing by.
  time.advance(299ms);
  ASSERT_TRUE(eventually([&] { return time.mono->waiting() == 1; }));
  EXPECT_EQ(hb->calls().size(), 0u);
  EXPECT_EQ(active_lanes(b, "fenced"), 0);
  // b can only get the lease once a's has expired; it resumes from the stored checkpoint (0).
  time.advance(21ms);
  ASSERT_TRUE(eventually([&] { return hb->handled_count() == static_cast<std::size_t>(kEvents); }));
  time.advance(100ms);  // b's next checkpoint save is due (kCheckpointInterval), its renewal too
  ASSERT_TRUE(eventually([&] { return store->load_checkpoint("fenced").value_or(-1) == kEvents; }));
  {
    std::lock_guard lock(mu);
    release_a = true;
  }
  cv.notify_all();
  ASSERT_TRUE(eventually([&] { return active_lanes(*a, "fenced") == 0 && ha->calls().size() == 1; }));
  (void)a->stop(std::chrono::steady_clock::now() + 5s);
  a.reset();
  EXPECT_EQ(ha->calls().size(), 1u) << "a handled events after its lease went stale";
  EXPECT_EQ(store->load_checkpoint("fenced").value_or(-1), kEvents) << "a stale owner moved the checkpoint";
  EXPECT_EQ(active_lanes(b, "fenced"), 1);
  // Every event was handled by the instance that held the lease at the time; none was skipped.
  std::set<std::int64_t> seen;
  for (const auto& e : hb->handled()) seen.insert(e.position);
  EXPECT_EQ(seen.size(), static_cast<std::size_t>(kEvents));
  ASSERT_TRUE(b.publish("s-0", ExpectedVersion::any(), {ev("T")}).is_ok());
  EXPECT_TRUE(eventually([&] { return hb->handled_count() == static_cast<std::size_t>(kEvents) + 1; }));
}

// A call that runs past the ttl lets the lease lapse; when no other instance took the lane
// meanwhile the owner takes it back and keeps its retry state, so a slow failing event still
// moves on to its next attempt instead of restarting at attempt 1 forever.
TEST(Leases, ALapsedLeaseTakenBackKeepsTheRetryState) {
  testing::ManualTime time;
  auto store = time.memory_store();
  ASSERT_TRUE(store->append("s-1", ExpectedVersion::any(), {ev("T")}).is_ok());
  std::vector<int> attempts;  // guarded by mu
  std::mutex mu;
  auto h = std::make_shared<FnHandler>("slow", std::vector<std::string>{"T"},
                                       [&](const RecordedEvent&, HandlerContext& ctx) -> Status {
                                         {
                                           std::lock_guard lock(mu);
                                           attempts.push_back(ctx.attempt());
                                         }
                                         if (ctx.attempt() > 1) return Status::ok();
                                         // Longer than the whole ttl: the lease lapses meanwhile.
                                         time.advance(400ms);
                                         return Status::unavailable("slow and failing");
                                       });
  EventBus bus(store, time.bus(leased("a", 200ms)));
  HandlerOptions o;
  o.retry = RetryPolicy::fixed_delays({1s}, 3);
  ASSERT_TRUE(bus.register_handler(h, o).is_ok());
  ASSERT_TRUE(bus.start().is_ok());
  ASSERT_TRUE(eventually([&] { return bus.handler_status("slow")->retried == 1; }));
  time.advance(1s);
  ASSERT_TRUE(eventually([&] { return h->handled_count() == 1; }));
  std::lock_guard lock(mu);
  EXPECT_EQ(attempts, (std::vector<int>{1, 2}));
}

}  // namespace
}  // namespace herald
