// Remote handlers against a real nats-server: a relay from one store, handlers in "another
// process" (their own store): order per stream with 4 partitions, retries with the policy's
// delays, dead letters for permanent errors and for messages that are not Herald events, and
// exactly-once counts through the inbox across a restart of the consumer.
#include <gtest/gtest.h>
#include <nats/nats.h>

#include <map>
#include <mutex>
#include <thread>

#include "herald/jetstream.h"
#include "nats_test_server.h"

namespace herald::jetstream {
namespace {

using namespace std::chrono_literals;

EventData event(std::string type, std::string payload) {
  EventData e;
  e.type = std::move(type);
  e.payload = std::move(payload);
  return e;
}

// Records the versions it sees per stream, and counts each event once through the inbox.
class OrderedCounter final : public EventHandler {
 public:
  std::string name() const override { return "test.ordered_counter"; }
  std::vector<std::string> event_types() const override { return {"Counted"}; }
  Status handle(const RecordedEvent& e, HandlerContext& ctx) override {
    {
      std::lock_guard g(mu);
      // A redelivery repeats the last version; an earlier one would break the stream's order.
      auto it = last_version.find(e.stream_id);
      if (it != last_version.end() && e.version < it->second) ++out_of_order;
      if (it != last_version.end() && e.version > it->second + 1) ++out_of_order;  // a gap
      last_version[e.stream_id] = e.version;
      ++calls;
    }
    return ctx.exactly_once(e, [&](StoreTransaction& tx) -> Status {
      std::int64_t n = 0;
      auto doc = tx.get_document("counts", "total");
      if (doc) n = std::stoll(*doc);
      return tx.put_document("counts", "total", std::to_string(n + 1));
    });
  }
  std::mutex mu;
  std::map<std::string, std::int64_t> last_version;
  int out_of_order = 0;
  int calls = 0;
};

// Fails `failures` times (unavailable), then succeeds; records when each attempt came.
class Flaky final : public EventHandler {
 public:
  explicit Flaky(int failures) : failures_(failures) {}
  std::string name() const override { return "test.flaky"; }
  std::vector<std::string> event_types() const override { return {"Flaky"}; }
  Status handle(const RecordedEvent&, HandlerContext& ctx) override {
    std::lock_guard g(mu);
    attempts.push_back({ctx.attempt(), std::chrono::steady_clock::now()});
    if (ctx.attempt() <= failures_) return Status::unavailable("not yet");
    return Status::ok();
  }
  std::mutex mu;
  std::vector<std::pair<int, std::chrono::steady_clock::time_point>> attempts;

 private:
  int failures_;
};

class Refuser final : public EventHandler {
 public:
  std::string name() const override { return "test.refuser"; }
  std::vector<std::string> event_types() const override { return {}; }  // every type
  Status handle(const RecordedEvent& e, HandlerContext&) override {
    if (e.type == "Poison") return Status::permanent("poison refused");
    return Status::ok();
  }
};

class RemoteHandlersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (herald::testing::nats_server_binary().empty()) GTEST_SKIP() << "nats-server is not installed (scripts/setup)";
    dir_ = herald::testing::make_temp_dir("herald-remote-test");
    server_ = herald::testing::NatsTestServer::start(dir_ + "/js");
    ASSERT_NE(server_, nullptr);
    source_ = std::move(*open_store("memory:"));
    consumer_store_ = std::move(*open_store("memory:"));
    stream_.name = "REMOTE";
    stream_.subject_prefix = "remote";
    stream_.partitions = 4;
    RelayOptions ro;
    ro.nats_url = server_->url();
    ro.stream = stream_;
    auto relay = Relay::create(*source_, ro);
    ASSERT_TRUE(relay);
    relay_ = std::move(*relay);
    ASSERT_TRUE(relay_->start().is_ok());
  }
  void TearDown() override {
    if (relay_) relay_->stop();
    server_.reset();
    herald::testing::remove_tree(dir_);
  }

  std::unique_ptr<RemoteHandlers> make_consumer() {
    RemoteHandlerOptions o;
    o.nats_url = server_->url();
    o.stream = stream_;
    o.fetch_wait = 1s;
    auto c = RemoteHandlers::create(*consumer_store_, o);
    EXPECT_TRUE(c);
    return std::move(*c);
  }

  template <class F>
  bool eventually(F done, std::chrono::milliseconds limit = 20s) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < until) {
      if (done()) return true;
      std::this_thread::sleep_for(10ms);
    }
    return done();
  }

  std::int64_t total() {
    auto d = consumer_store_->read_document("counts", "total");
    return d ? std::stoll(*d) : 0;
  }

  std::string dir_;
  std::unique_ptr<herald::testing::NatsTestServer> server_;
  std::unique_ptr<EventStore> source_, consumer_store_;
  StreamSettings stream_;
  std::unique_ptr<Relay> relay_;
};

TEST_F(RemoteHandlersTest, FourPartitionsKeepEachStreamInOrderAndCountEachEventOnceAcrossRestarts) {
  auto counter = std::make_shared<OrderedCounter>();
  constexpr int kStreams = 40, kPerStream = 50;
  std::thread appender([&] {
    for (int v = 0; v < kPerStream; ++v) {
      for (int s = 0; s < kStreams; ++s) {
        (void)source_->append("counter-" + std::to_string(s), ExpectedVersion::any(), {event("Counted", "{}")});
      }
    }
  });
  // The consumer stopped and started again five times mid-load: each event still counts once.
  for (int round = 0; round < 5; ++round) {
    auto c = make_consumer();
    ASSERT_TRUE(c->add(counter).is_ok());
    ASSERT_TRUE(c->start().is_ok());
    std::this_thread::sleep_for(150ms);
    c->stop();
  }
  appender.join();
  auto c = make_consumer();
  ASSERT_TRUE(c->add(counter).is_ok());
  ASSERT_TRUE(c->start().is_ok());
  EXPECT_TRUE(eventually([&] { return total() == kStreams * kPerStream; })) << total();
  c->stop();
  EXPECT_EQ(total(), kStreams * kPerStream);
  std::lock_guard g(counter->mu);
  EXPECT_EQ(counter->out_of_order, 0);
  EXPECT_GE(counter->calls, kStreams * kPerStream);
}

TEST_F(RemoteHandlersTest, RetriesWithThePolicysDelaysThenSucceeds) {
  auto flaky = std::make_shared<Flaky>(2);
  auto c = make_consumer();
  ASSERT_TRUE(c->add(flaky, RetryPolicy::fixed_delays({300ms, 600ms}, 5)).is_ok());
  ASSERT_TRUE(c->start().is_ok());
  ASSERT_TRUE(source_->append("flaky-1", ExpectedVersion::any(), {event("Flaky", "{}")}));
  EXPECT_TRUE(eventually([&] { return c->stats()[0].processed == 1; }));
  std::lock_guard g(flaky->mu);
  ASSERT_EQ(flaky->attempts.size(), 3u);
  EXPECT_EQ(flaky->attempts[0].first, 1);
  EXPECT_EQ(flaky->attempts[2].first, 3);
  // The naks carried the policy's delays (the redelivery comes no earlier than asked).
  EXPECT_GE(flaky->attempts[1].second - flaky->attempts[0].second, 300ms);
  EXPECT_GE(flaky->attempts[2].second - flaky->attempts[1].second, 600ms);
  EXPECT_EQ(c->stats()[0].retried, 2);
  EXPECT_EQ(c->stats()[0].dead_lettered, 0);
}

TEST_F(RemoteHandlersTest, PermanentErrorsAndForeignMessagesAreDeadLetteredAndDoNotBlockThePartition) {
  auto c = make_consumer();
  ASSERT_TRUE(c->add(std::make_shared<Refuser>(), RetryPolicy::no_retry()).is_ok());
  ASSERT_TRUE(c->start().is_ok());
  // Messages that are not Herald events, on subjects the handler's consumers read. Published
  // before the relay's first event: the relay owns its subjects (a foreign message in the middle
  // breaks its expected-last-id chain and makes it fall back to the checkpoint and dedupe).
  natsConnection* nc = nullptr;
  ASSERT_EQ(natsConnection_ConnectTo(&nc, server_->url().c_str()), NATS_OK);
  jsCtx* js = nullptr;
  ASSERT_EQ(natsConnection_JetStream(&js, nc, nullptr), NATS_OK);
  for (int p = 0; p < 4; ++p) {
    const std::string subject = "remote.x.p" + std::to_string(p) + ".Foreign";
    ASSERT_EQ(js_Publish(nullptr, js, subject.c_str(), "garbage", 7, nullptr, nullptr), NATS_OK);
  }
  jsCtx_Destroy(js);
  natsConnection_Destroy(nc);
  ASSERT_TRUE(source_->append("poison-1", ExpectedVersion::any(), {event("Poison", "{}")}));
  // Later events of the poisoned stream and of the foreign messages' partitions still arrive.
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(source_->append("poison-" + std::to_string(i % 5), ExpectedVersion::any(), {event("Fine", "{}")}));
  EXPECT_TRUE(eventually([&] { return c->stats()[0].processed == 20 && c->stats()[0].dead_lettered == 5; }))
      << c->stats()[0].processed << " " << c->stats()[0].dead_lettered;
  auto dead = consumer_store_->list_dead_letters("test.refuser");
  ASSERT_TRUE(dead);
  ASSERT_EQ(dead->size(), 5u);
  int foreign = 0, poison = 0;
  for (const auto& d : *dead) {
    if (d.event_type == "Poison") {
      ++poison;
      EXPECT_NE(d.last_error.find("poison refused"), std::string::npos);
    } else {
      ++foreign;
      EXPECT_NE(d.last_error.find("not a Herald event"), std::string::npos) << d.last_error;
    }
  }
  EXPECT_EQ(poison, 1);
  EXPECT_EQ(foreign, 4);
  c->stop();
}

}  // namespace
}  // namespace herald::jetstream
