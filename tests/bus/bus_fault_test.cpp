// Fault injection: handlers fail at random (10% of calls, a third of those permanently) while
// events are published concurrently. At the end every event is handled or dead-lettered (failed
// or parked); redriving with the fault removed clears the dead letters; nothing is lost, and each
// stream's events were handled successfully exactly in stream order.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "bus_test_util.h"

namespace herald {
namespace {

using namespace std::chrono_literals;
using testing::ev;
using testing::eventually;
using testing::fast_bus;
using testing::FnHandler;

constexpr int kStreams = 40;
constexpr int kPerStream = 25;

// Decides failures from a seeded generator, so a failing run can be reproduced from its seed.
class FaultInjector {
 public:
  explicit FaultInjector(std::uint64_t seed) : rng_(seed) {}
  Status next() {
    if (!enabled.load()) return Status::ok();
    std::lock_guard lock(mu_);
    double r = std::uniform_real_distribution<double>(0.0, 1.0)(rng_);
    if (r < 0.033) return Status::permanent("injected permanent fault");
    if (r < 0.10) return Status::unavailable("injected transient fault");
    return Status::ok();
  }
  std::atomic_bool enabled{true};

 private:
  std::mutex mu_;  // guards rng_
  std::mt19937_64 rng_;
};

void run_fault_injection(std::shared_ptr<EventStore> store, int lanes) {
  const auto seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  FaultInjector faults(seed);
  EventBus bus(store, fast_bus());
  auto flaky = std::make_shared<FnHandler>("flaky", std::vector<std::string>{},
                                           [&](const RecordedEvent&, HandlerContext&) { return faults.next(); });
  auto steady = std::make_shared<FnHandler>("steady", std::vector<std::string>{});
  HandlerOptions o;
  o.lanes = lanes;
  o.batch_size = 64;
  o.retry = RetryPolicy::fixed_delays({1ms, 3ms}, 3);
  ASSERT_TRUE(bus.register_handler(flaky, o).is_ok());
  ASSERT_TRUE(bus.register_handler(steady).is_ok());
  ASSERT_TRUE(bus.start().is_ok());

  // Two publishers, interleaving streams.
  std::vector<std::thread> publishers;
  std::atomic_int publish_errors{0};
  for (int t = 0; t < 2; ++t) {
    publishers.emplace_back([&, t] {
      for (int i = 0; i < kPerStream; ++i) {
        for (int s = t; s < kStreams; s += 2) {
          if (!bus.publish("f-" + std::to_string(s), ExpectedVersion::any(), {ev("E")}).is_ok()) publish_errors++;
        }
      }
    });
  }
  for (auto& p : publishers) p.join();
  ASSERT_EQ(publish_errors.load(), 0);
  const std::int64_t total = kStreams * kPerStream;
  ASSERT_EQ(store->head_position() + 1, total);

  // Every event is handled or dead-lettered: the checkpoint only passes an event then.
  ASSERT_TRUE(eventually([&] {
    auto st = bus.handler_status("flaky");
    return st->checkpoint == total && st->state != HandlerState::retrying;
  }));
  ASSERT_TRUE(eventually([&] { return steady->handled_count() == static_cast<std::size_t>(total); }));
  auto dls = bus.dead_letters("flaky");
  ASSERT_TRUE(dls.is_ok());
  std::set<std::string> handled_ids;
  for (const auto& id : flaky->handled_ids()) EXPECT_TRUE(handled_ids.insert(id).second) << "handled twice: " << id;
  std::set<std::string> dead_ids;
  for (const auto& dl : *dls) {
    EXPECT_TRUE(dead_ids.insert(dl.event_id).second);
    EXPECT_EQ(handled_ids.count(dl.event_id), 0u) << "handled and dead-lettered: " << dl.event_id;
    if (!dl.parked) {
      EXPECT_FALSE(dl.last_error.empty());
    }
  }
  EXPECT_EQ(static_cast<std::int64_t>(handled_ids.size() + dead_ids.size()), total);
  auto status = bus.handler_status("flaky");
  EXPECT_EQ(status->processed, static_cast<std::int64_t>(handled_ids.size()));
  EXPECT_GT(status->failed, 0);

  // Fault removed: redrive clears everything.
  faults.enabled = false;
  ASSERT_TRUE(bus.redrive_all("flaky").is_ok());
  EXPECT_TRUE(bus.dead_letters("flaky")->empty());
  EXPECT_EQ(bus.handler_status("flaky")->parked, 0);

  // Nothing lost, nothing twice, each stream in order.
  std::map<std::string, std::vector<std::int64_t>> versions;
  for (const auto& e : flaky->handled()) versions[e.stream_id].push_back(e.version);
  ASSERT_EQ(versions.size(), static_cast<std::size_t>(kStreams));
  for (const auto& [stream, v] : versions) {
    ASSERT_EQ(v.size(), static_cast<std::size_t>(kPerStream)) << stream;
    for (int i = 0; i < kPerStream; ++i) EXPECT_EQ(v[static_cast<std::size_t>(i)], i) << stream;
  }
  auto report = bus.stop(std::chrono::steady_clock::now() + 5s);
  EXPECT_TRUE(report.clean);
  EXPECT_EQ(report.pending_events, 0);
}

TEST(FaultInjection, EveryEventIsHandledOrDeadLetteredAndRedriveClearsThem) {
  run_fault_injection(testing::memory_store(), 4);
}

TEST(FaultInjection, SingleLaneOnSqlite) {
  testing::TempDir dir;
  auto store = testing::sqlite_store(dir.path() / "events.db");
  ASSERT_NE(store, nullptr);
  run_fault_injection(store, 1);
}

}  // namespace
}  // namespace herald
