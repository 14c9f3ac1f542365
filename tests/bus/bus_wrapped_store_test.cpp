// Tests that need a store misbehaving on purpose: a wrapper around the memory store that can
// deny leases (as if another instance held them) or fail reads (a database outage).
#include <gtest/gtest.h>

#include <atomic>

#include "bus_test_util.h"

namespace herald {
namespace {

using namespace std::chrono_literals;
using testing::ev;
using testing::eventually;
using testing::fast_bus;
using testing::FnHandler;

class FaultyStore final : public EventStore {
 public:
  explicit FaultyStore(std::shared_ptr<EventStore> inner) : inner_(std::move(inner)) {}

  std::atomic_bool deny_leases{false};
  std::atomic_bool fail_reads{false};

  std::string url() const override { return inner_->url(); }
  Result<AppendResult> append(std::string_view s, ExpectedVersion e, std::vector<EventData> ev) override {
    return inner_->append(s, e, std::move(ev));
  }
  Result<std::vector<RecordedEvent>> read_stream(std::string_view s, std::int64_t v, std::size_t n,
                                                 ReadDirection d) override {
    return inner_->read_stream(s, v, n, d);
  }
  Result<AllSlice> read_all(std::int64_t from, std::size_t n, const ReadFilter& f) override {
    if (fail_reads.load()) return Status::unavailable("injected: database unreachable");
    return inner_->read_all(from, n, f);
  }
  Result<std::int64_t> stream_version(std::string_view s) override { return inner_->stream_version(s); }
  std::int64_t head_position() const override { return inner_->head_position(); }
  Result<StoreStats> stats() override { return inner_->stats(); }
  Status wait_for(std::int64_t after, std::chrono::milliseconds t) override { return inner_->wait_for(after, t); }
  Status transact(const std::function<Status(StoreTransaction&)>& work) override { return inner_->transact(work); }
  Result<std::int64_t> load_checkpoint(std::string_view s) override { return inner_->load_checkpoint(s); }
  Status save_checkpoint(std::string_view s, std::int64_t p) override { return inner_->save_checkpoint(s, p); }
  Result<std::int64_t> add_dead_letter(const DeadLetter& d) override { return inner_->add_dead_letter(d); }
  Result<DeadLetter> get_dead_letter(std::int64_t id) override { return inner_->get_dead_letter(id); }
  Result<std::vector<DeadLetter>> list_dead_letters(std::string_view h) override { return inner_->list_dead_letters(h); }
  Status update_dead_letter(const DeadLetter& d) override { return inner_->update_dead_letter(d); }
  Status remove_dead_letter(std::int64_t id) override { return inner_->remove_dead_letter(id); }
  Result<bool> try_acquire_lease(std::string_view n, std::string_view o, std::chrono::milliseconds ttl) override {
    if (deny_leases.load()) return false;
    return inner_->try_acquire_lease(n, o, ttl);
  }
  Status release_lease(std::string_view n, std::string_view o) override { return inner_->release_lease(n, o); }
  void close() override { inner_->close(); }

 private:
  std::shared_ptr<EventStore> inner_;
};

TEST(EventBusLeases, ALaneThatLosesItsLeaseStopsAndRereadsTheCheckpointWhenItGetsItBack) {
  auto inner = testing::memory_store();
  auto store = std::make_shared<FaultyStore>(inner);
  BusOptions o = fast_bus();
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
  ASSERT_TRUE(eventually([&] { return bus.handler_status("leased")->state == HandlerState::stopped; }));
  ASSERT_TRUE(bus.publish("s-1", ExpectedVersion::any(), {ev("A"), ev("A"), ev("A")}).is_ok());
  // "The other instance" handles positions 2 and 3 and saves its checkpoint.
  ASSERT_TRUE(inner->save_checkpoint("leased", 4).is_ok());
  EXPECT_EQ(h->handled_count(), 2u);

  store->deny_leases = false;
  ASSERT_TRUE(eventually([&] { return h->handled_count() == 3; }));
  EXPECT_EQ(h->handled().back().position, 4);  // resumed from the stored checkpoint, not its own
  ASSERT_TRUE(eventually([&] { return bus.handler_status("leased")->checkpoint == 5; }));
}

TEST(EventBusFailures, AStoreOutageShowsAsFailedAndTheHandlerRecovers) {
  auto store = std::make_shared<FaultyStore>(testing::memory_store());
  EventBus bus(store, fast_bus());
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
  ASSERT_TRUE(eventually([&] { return h->handled_count() == 1; }));
  ASSERT_TRUE(eventually([&] { return bus.handler_status("h")->state == HandlerState::running; }));
}

}  // namespace
}  // namespace herald
