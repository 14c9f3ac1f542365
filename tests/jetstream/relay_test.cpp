// The relay against a real nats-server started on loopback: stream creation and verification,
// order and headers, an outage mid-load, and leases between two relays.
#include <gtest/gtest.h>
#include <nats/nats.h>

#include <atomic>
#include <thread>

#include "herald/jetstream.h"
#include "jetstream/event_message.h"
#include "nats_test_server.h"
#include "stream_reader.h"

namespace herald::jetstream {
namespace {

using namespace std::chrono_literals;
using herald::testing::NatsTestServer;

EventData event(std::string type, std::string payload) {
  EventData e;
  e.type = std::move(type);
  e.payload = std::move(payload);
  return e;
}

class RelayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (herald::testing::nats_server_binary().empty()) GTEST_SKIP() << "nats-server is not installed (scripts/setup)";
    dir_ = herald::testing::make_temp_dir("herald-relay-test");
    server_ = NatsTestServer::start(dir_ + "/js");
    ASSERT_NE(server_, nullptr) << "nats-server did not start";
    auto s = open_store("memory:");
    ASSERT_TRUE(s) << s.status().to_string();
    store_ = std::move(*s);
  }
  void TearDown() override {
    server_.reset();
    herald::testing::remove_tree(dir_);
  }

  RelayOptions options() {
    RelayOptions o;
    o.nats_url = server_->url();
    o.stream.name = "TEST";
    o.stream.subject_prefix = "test.events";
    o.stream.partitions = 4;
    o.ack_timeout = 2s;
    o.retry_max = 500ms;
    o.lease_ttl = 1s;
    return o;
  }

  void append(int streams, int per_stream) {
    for (int v = 0; v < per_stream; ++v) {
      for (int s = 0; s < streams; ++s) {
        EventData e = event(v % 2 == 0 ? "ThingHappened" : "Other.Thing", R"({"n":)" + std::to_string(v) + "}");
        e.metadata.correlation_id = "corr\r\nX-Injected: 1";
        e.metadata.extra["k"] = "v";
        auto r = store_->append("thing-" + std::to_string(s), ExpectedVersion::any(), {e});
        ASSERT_TRUE(r) << r.status().to_string();
      }
    }
  }

  std::vector<herald::testing::StreamMessage> read_back() {
    std::string error;
    auto m = herald::testing::read_stream(server_->url(), "TEST", "test.events.>", error);
    EXPECT_EQ(error, "");
    return m;
  }

  std::string dir_;
  std::unique_ptr<NatsTestServer> server_;
  std::unique_ptr<EventStore> store_;
};

TEST(EventMessageTest, HeadersRoundTripAndHostileMessagesAreRefused) {
  std::string out;
  EXPECT_EQ(detail::header_encode("a b%\r\n\xff"), "a b%25%0D%0A%FF");
  ASSERT_TRUE(detail::header_decode("a b%25%0D%0A%FF", out));
  EXPECT_EQ(out, "a b%\r\n\xff");
  EXPECT_FALSE(detail::header_decode("%4", out));
  EXPECT_FALSE(detail::header_decode("%zz", out));
  EXPECT_EQ(detail::subject_token("a.b*c>d e"), "a_b_c_d_e");
  EXPECT_EQ(detail::subject_token(""), "_");

  RecordedEvent e;
  e.stream_id = "order-42\n";
  e.version = 3;
  e.position = 17;
  e.recorded_at = timestamp_from_micros(1'700'000'000'123'456);
  e.id = "0190c6b4-52a8-7cc4-8a53-0d0f6e0b7a11";
  e.type = "OrderPlaced";
  e.payload = R"({"total":12})";
  e.metadata.correlation_id = "c1";
  e.metadata.causation_id = "c2";
  e.metadata.actor = "u 1";
  e.metadata.extra["a"] = "b";
  auto m = detail::make_event_message("x.order.p0.OrderPlaced", e);
  ASSERT_TRUE(m);
  auto back = detail::decode_event_message(*m);
  ASSERT_TRUE(back) << back.status().to_string();
  EXPECT_EQ(back->stream_id, e.stream_id);
  EXPECT_EQ(back->version, 3);
  EXPECT_EQ(back->position, 17);
  EXPECT_EQ(back->recorded_at, e.recorded_at);
  EXPECT_EQ(back->id, e.id);
  EXPECT_EQ(back->type, e.type);
  EXPECT_EQ(back->payload, e.payload);
  EXPECT_EQ(back->metadata, e.metadata);
  natsMsgHeader_Set(*m, "Herald-Position", "-4");
  EXPECT_EQ(detail::decode_event_message(*m).status().code(), StatusCode::invalid_argument);
  natsMsg_Destroy(*m);

  natsMsg* plain = nullptr;  // the library is open: make_event_message opened it
  ASSERT_EQ(natsMsg_Create(&plain, "x.y", nullptr, "not json", 8), NATS_OK);
  auto bad = detail::decode_event_message(plain);
  EXPECT_EQ(bad.status().code(), StatusCode::invalid_argument);
  EXPECT_NE(bad.status().message().find("not a Herald event"), std::string::npos);
  natsMsg_Destroy(plain);
}

TEST(StreamSettingsTest, RefusesBadValues) {
  StreamSettings s;
  EXPECT_TRUE(validate(s).is_ok());
  s.duplicate_window = 1min;
  EXPECT_EQ(validate(s).code(), StatusCode::invalid_argument);
  s = {};
  s.name = "a.b";
  EXPECT_EQ(validate(s).code(), StatusCode::invalid_argument);
  s = {};
  s.subject_prefix = "a..b";
  EXPECT_EQ(validate(s).code(), StatusCode::invalid_argument);
  s = {};
  s.partitions = 0;
  EXPECT_EQ(validate(s).code(), StatusCode::invalid_argument);
  EXPECT_EQ(partition_of("order-1", 16), partition_of("order-1", 16));
}

TEST_F(RelayTest, EnsureStreamCreatesThenVerifiesAndNamesAMismatch) {
  auto o = options();
  ASSERT_TRUE(ensure_stream(o.nats_url, o.stream).is_ok());
  ASSERT_TRUE(ensure_stream(o.nats_url, o.stream).is_ok());
  o.stream.duplicate_window = 5min;
  Status st = ensure_stream(o.nats_url, o.stream);
  EXPECT_EQ(st.code(), StatusCode::failed_precondition);
  EXPECT_NE(st.message().find("duplicate window"), std::string::npos) << st.to_string();

  // The relay reports the same mismatch through its health and relays nothing.
  auto relay = Relay::create(*store_, o);
  ASSERT_TRUE(relay);
  ASSERT_TRUE((*relay)->start().is_ok());
  for (int i = 0; i < 100 && (*relay)->health().reason.find("duplicate window") == std::string::npos; ++i) {
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_FALSE((*relay)->health().healthy);
  EXPECT_NE((*relay)->health().reason.find("duplicate window"), std::string::npos) << (*relay)->health().reason;
}

TEST_F(RelayTest, RelaysEveryEventOnceInPositionOrderWithItsHeaders) {
  append(20, 50);
  auto relay = Relay::create(*store_, options());
  ASSERT_TRUE(relay);
  ASSERT_TRUE((*relay)->start().is_ok());
  ASSERT_TRUE((*relay)->wait_relayed(store_->head_position(), 20s).is_ok()) << (*relay)->health().reason;
  EXPECT_TRUE((*relay)->health().healthy) << (*relay)->health().reason;
  (*relay)->stop();
  auto msgs = read_back();
  EXPECT_EQ(herald::testing::check_exactly_once_in_order(msgs, 1000), "");
  auto all = store_->read_all(0, 1000);
  ASSERT_TRUE(all);
  for (std::size_t i = 0; i < msgs.size() && i < all->events.size(); ++i) {
    const auto& e = all->events[i];
    ASSERT_EQ(msgs[i].id, e.id);
    ASSERT_EQ(msgs[i].payload, e.payload);
    ASSERT_EQ(msgs[i].subject, subject_for(options().stream, e));
  }
  EXPECT_EQ(msgs[1].subject.substr(0, 18), "test.events.thing.");
  EXPECT_NE(msgs[20].subject.find(".Other_Thing"), std::string::npos);
  // The checkpoint in the store says everything was relayed.
  auto cp = store_->load_checkpoint(relay_checkpoint_name("TEST"));
  ASSERT_TRUE(cp);
  EXPECT_EQ(*cp, 1000);

  // A restart publishes nothing again, and then relays what came since.
  append(1, 10);
  auto again = Relay::create(*store_, options());
  ASSERT_TRUE(again);
  ASSERT_TRUE((*again)->start().is_ok());
  ASSERT_TRUE((*again)->wait_relayed(store_->head_position(), 20s).is_ok());
  (*again)->stop();
  EXPECT_EQ(herald::testing::check_exactly_once_in_order(read_back(), 1010), "");
}

TEST_F(RelayTest, AStoppedServerDelaysButSkipsNothing) {
  auto relay = Relay::create(*store_, options());
  ASSERT_TRUE(relay);
  ASSERT_TRUE((*relay)->start().is_ok());
  std::atomic_bool done{false};
  std::atomic_int appended{0};
  std::thread appender([&] {
    for (int i = 0; i < 2000 && !done; ++i) {
      std::vector<EventData> batch;
      for (int k = 0; k < 10; ++k) {
        batch.push_back(event("Tick", "{}"));
      }
      if (store_->append("tick-" + std::to_string(i % 37), ExpectedVersion::any(), batch)) appended += 10;
      std::this_thread::sleep_for(1ms);
    }
  });
  while (appended < 5000) std::this_thread::sleep_for(5ms);
  server_->stop();
  bool reported_down = false;
  std::string reason;
  const auto until = std::chrono::steady_clock::now() + 3s;
  while (std::chrono::steady_clock::now() < until) {
    auto h = (*relay)->health();
    if (!h.healthy && !h.reason.empty()) {
      reported_down = true;
      reason = h.reason;
    }
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_TRUE(reported_down);
  EXPECT_FALSE(reason.empty());
  const std::int64_t during = (*relay)->health().checkpoint;
  ASSERT_TRUE(server_->restart());
  appender.join();
  ASSERT_TRUE((*relay)->wait_relayed(store_->head_position(), 30s).is_ok()) << (*relay)->health().reason;
  EXPECT_TRUE((*relay)->health().healthy);
  EXPECT_GT((*relay)->health().failures, 0);
  EXPECT_LT(during, store_->head_position());
  (*relay)->stop();
  EXPECT_EQ(herald::testing::check_exactly_once_in_order(read_back(), store_->head_position() + 1), "");
}

TEST_F(RelayTest, OneRelayAtATimeAndTheOtherTakesOver) {
  append(5, 100);
  auto o1 = options();
  o1.instance_id = "one";
  auto o2 = options();
  o2.instance_id = "two";
  auto r1 = Relay::create(*store_, o1);
  auto r2 = Relay::create(*store_, o2);
  ASSERT_TRUE(r1 && r2);
  ASSERT_TRUE((*r1)->start().is_ok());
  ASSERT_TRUE((*r1)->wait_relayed(store_->head_position(), 20s).is_ok());
  ASSERT_TRUE((*r2)->start().is_ok());
  std::this_thread::sleep_for(300ms);
  EXPECT_TRUE((*r1)->health().leader);
  EXPECT_FALSE((*r2)->health().leader);
  EXPECT_TRUE((*r2)->health().healthy) << "a standby is healthy";
  EXPECT_NE((*r2)->health().reason.find("standby"), std::string::npos);
  (*r1)->stop();  // releases the lease
  append(5, 100);
  ASSERT_TRUE((*r2)->wait_relayed(store_->head_position(), 20s).is_ok()) << (*r2)->health().reason;
  EXPECT_TRUE((*r2)->health().leader);
  (*r2)->stop();
  EXPECT_EQ(herald::testing::check_exactly_once_in_order(read_back(), 1000), "");
}

TEST_F(RelayTest, RefusesAStreamThatAnotherStoreFeeds) {
  append(1, 5);
  auto relay = Relay::create(*store_, options());
  ASSERT_TRUE(relay);
  ASSERT_TRUE((*relay)->start().is_ok());
  ASSERT_TRUE((*relay)->wait_relayed(store_->head_position(), 20s).is_ok());
  (*relay)->stop();
  auto other = open_store("memory:");
  ASSERT_TRUE(other);
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE((*other)->append("x-1", ExpectedVersion::any(), {event("X", "{}")}));
  }
  auto wrong = Relay::create(**other, options());
  ASSERT_TRUE(wrong);
  ASSERT_TRUE((*wrong)->start().is_ok());
  for (int i = 0; i < 200 && (*wrong)->health().reason.find("another store") == std::string::npos; ++i) {
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_NE((*wrong)->health().reason.find("another store"), std::string::npos) << (*wrong)->health().reason;
  (*wrong)->stop();
  EXPECT_EQ(read_back().size(), 5u);
}

}  // namespace
}  // namespace herald::jetstream
