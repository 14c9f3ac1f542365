// Tests that need a store misbehaving on purpose: a wrapper around the memory store that can
// deny leases (as if another instance held them) or fail reads (a database outage).
#include <gtest/gtest.h>

#include <atomic>

#include "bus_test_util.h"
#include "herald/event_store_wrapper.h"

namespace herald {
namespace {

using namespace std::chrono_literals;
using testing::ev;
using testing::eventually;
using testing::fast_bus;
using testing::FnHandler;

// Forwards everything (EventStoreWrapper) except the two calls it can make fail.
class FaultyStore final : public EventStoreWrapper {
 public:
  using EventStoreWrapper::EventStoreWrapper;

  std::atomic_bool deny_leases{false};
  std::atomic_bool fail_reads{false};

  Result<AllSlice> read_all(std::int64_t from, std::size_t n, const ReadFilter& f) override {
    if (fail_reads.load()) return Status::unavailable("injected: database unreachable");
    return EventStoreWrapper::read_all(from, n, f);
  }
  Result<SharedSlice> read_all_shared(std::int64_t from, std::size_t n, const ReadFilter& f) override {
    if (fail_reads.load()) return Status::unavailable("injected: database unreachable");
    return EventStoreWrapper::read_all_shared(from, n, f);
  }
  Result<LeaseGrant> try_acquire_lease(std::string_view n, std::string_view o, std::chrono::milliseconds ttl) override {
    if (deny_leases.load()) return LeaseGrant{LeaseOutcome::held_by_another, 0};
    return EventStoreWrapper::try_acquire_lease(n, o, ttl);
  }
};

TEST(EventBusLeases, ALaneThatLosesItsLeaseStopsAndRereadsTheCheckpointWhenItGetsItBack) {
  testing::ManualTime time;  // renewals and the standby's retries happen when the test says
  auto inner = time.memory_store();
  auto store = std::make_shared<FaultyStore>(inner);
  BusOptions o = time.bus();
  o.use_leases = true;
  o.lease_ttl = 200ms;
  o.instance_id = "me";
  EventBus bus(store, o);
  auto h = std::make_shared<FnHandler>("leased", std::vector<std::string>{});
  ASSERT_TRUE(bus.register_handler(h).is_ok());
  ASSERT_TRUE(bus.start().is_ok());
  ASSERT_TRUE(bus.publish("s-1", ExpectedVersion::any(), {ev("A"), ev("A")}).is_ok());
  ASSERT_TRUE(eventually([&] { return h->handled_count() == 2; }));

  store->deny_leases = true;  // another instance takes over at the next renewal
  time.advance(o.poll_interval);  // which is due now
  ASSERT_TRUE(eventually([&] { return bus.handler_status("leased")->state == HandlerState::stopped; }));
  ASSERT_TRUE(bus.publish("s-1", ExpectedVersion::any(), {ev("A"), ev("A"), ev("A")}).is_ok());
  // "The other instance" handles positions 2 and 3 and saves its checkpoint.
  ASSERT_TRUE(inner->save_checkpoint("leased", 4).is_ok());
  EXPECT_EQ(h->handled_count(), 2u);

  store->deny_leases = false;
  ASSERT_TRUE(eventually([&] { return time.mono->waiting() == 1; }));  // standing by until its next try
  EXPECT_EQ(bus.handler_status("leased")->active_lanes, 0);
  time.advance(o.poll_interval);
  ASSERT_TRUE(eventually([&] { return h->handled_count() == 3; }));
  EXPECT_EQ(h->handled().back().position, 4);  // resumed from the stored checkpoint, not its own
  ASSERT_TRUE(eventually([&] { return bus.handler_status("leased")->checkpoint == 5; }));
}

TEST(EventBusFailures, AStoreOutageShowsAsFailedAndTheHandlerRecovers) {
  testing::ManualTime time;
  auto store = std::make_shared<FaultyStore>(testing::memory_store());
  EventBus bus(store, time.bus());
  auto h = std::make_shared<FnHandler>("h", std::vector<std::string>{});
  ASSERT_TRUE(bus.register_handler(h).is_ok());
  // The outage begins before the lane's first read: set after start(), a read that checked the
  // flag just before it was set could still reach the store and see the event published next.
  store->fail_reads = true;
  ASSERT_TRUE(bus.start().is_ok());
  ASSERT_TRUE(bus.publish("s-1", ExpectedVersion::any(), {ev("A")}).is_ok());
  ASSERT_TRUE(eventually([&] { return bus.handler_status("h")->state == HandlerState::failed; }));
  EXPECT_EQ(h->handled_count(), 0u);
  store->fail_reads = false;
  ASSERT_TRUE(eventually([&] { return time.mono->waiting() == 1; }));  // backing off after the error
  EXPECT_EQ(h->handled_count(), 0u);
  time.advance(std::chrono::milliseconds(200));  // the lane's store-error back-off
  ASSERT_TRUE(eventually([&] { return h->handled_count() == 1; }));
  ASSERT_TRUE(eventually([&] { return bus.handler_status("h")->state == HandlerState::running; }));
}

}  // namespace
}  // namespace herald
