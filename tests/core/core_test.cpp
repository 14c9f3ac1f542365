#include <gtest/gtest.h>

#include <set>
#include <thread>

#include "core/json_codec.h"
#include "herald/clock.h"
#include "herald/event.h"
#include "herald/event_store.h"
#include "herald/id.h"
#include "herald/status.h"
#include "store/validation.h"

namespace herald {
namespace {

TEST(Status, OkCarriesNothing) {
  Status s;
  EXPECT_TRUE(s.is_ok());
  EXPECT_EQ(s.to_string(), "ok");
  EXPECT_FALSE(s.actual_version().has_value());
}

TEST(Status, WrongExpectedVersionCarriesActual) {
  Status s = Status::wrong_expected_version(7, "stream order-1 is at 7");
  EXPECT_EQ(s.code(), StatusCode::wrong_expected_version);
  EXPECT_EQ(s.actual_version(), 7);
  EXPECT_EQ(s.to_string(), "wrong_expected_version: stream order-1 is at 7");
}

TEST(Result, HoldsValueOrError) {
  Result<int> good = 42;
  ASSERT_TRUE(good);
  EXPECT_EQ(*good, 42);
  Result<int> bad = Status::not_found("nope");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.status().code(), StatusCode::not_found);
  EXPECT_EQ(bad.value_or(3), 3);
  Result<int> misuse = Status::ok();
  EXPECT_EQ(misuse.status().code(), StatusCode::internal);
}

TEST(Uuid, V7IsCanonicalAndIncreasing) {
  std::string prev;
  for (int i = 0; i < 10'000; ++i) {
    std::string id = new_uuid_v7();
    ASSERT_TRUE(is_uuid(id)) << id;
    EXPECT_EQ(id[14], '7');
    EXPECT_TRUE(id[19] == '8' || id[19] == '9' || id[19] == 'a' || id[19] == 'b') << id;
    EXPECT_LT(prev, id);
    prev = id;
  }
}

TEST(Uuid, V7UniqueAcrossThreads) {
  std::vector<std::vector<std::string>> per(4);
  std::vector<std::thread> threads;
  for (auto& v : per) {
    threads.emplace_back([&v] {
      for (int i = 0; i < 5'000; ++i) v.push_back(new_uuid_v7());
    });
  }
  for (auto& t : threads) t.join();
  std::set<std::string> all;
  for (auto& v : per) all.insert(v.begin(), v.end());
  EXPECT_EQ(all.size(), 20'000u);
}

TEST(Uuid, DerivedIsDeterministic) {
  EXPECT_EQ(derived_uuid("email", "evt-1"), derived_uuid("email", "evt-1"));
  EXPECT_NE(derived_uuid("email", "evt-1"), derived_uuid("email", "evt-2"));
  EXPECT_NE(derived_uuid("a", "bc"), derived_uuid("ab", "c"));
  EXPECT_TRUE(is_uuid(derived_uuid("x", "y")));
  EXPECT_FALSE(is_uuid("not-a-uuid"));
  EXPECT_FALSE(is_uuid("0192f0c1-5d7e-7a3b-8c4d-5e6f7a8b9c0g"));
}

TEST(Time, Rfc3339RoundTrip) {
  Timestamp t = timestamp_from_micros(1'764'072'000'123'456);
  std::string text = format_rfc3339(t);
  EXPECT_EQ(text, "2025-11-25T12:00:00.123456Z");
  Timestamp back;
  ASSERT_TRUE(parse_rfc3339(text, back));
  EXPECT_EQ(back, t);
  ASSERT_TRUE(parse_rfc3339("2025-11-25T13:00:00+01:00", back));
  EXPECT_EQ(to_micros(back), 1'764'072'000'000'000);
  EXPECT_FALSE(parse_rfc3339("2025-13-25T13:00:00Z", back));
  EXPECT_FALSE(parse_rfc3339("2025-11-25T13:00:00", back));
  EXPECT_FALSE(parse_rfc3339("yesterday", back));
}

TEST(ManualClock, MovesOnlyWhenTold) {
  ManualClock c(timestamp_from_micros(1000));
  EXPECT_EQ(to_micros(c.now()), 1000);
  c.advance(std::chrono::microseconds(5));
  EXPECT_EQ(to_micros(c.now()), 1005);
}

TEST(ExpectedVersion, Matches) {
  EXPECT_TRUE(ExpectedVersion::any().matches(kNoStreamVersion));
  EXPECT_TRUE(ExpectedVersion::no_stream().matches(kNoStreamVersion));
  EXPECT_FALSE(ExpectedVersion::no_stream().matches(0));
  EXPECT_TRUE(ExpectedVersion::stream_exists().matches(3));
  EXPECT_FALSE(ExpectedVersion::stream_exists().matches(kNoStreamVersion));
  EXPECT_TRUE(ExpectedVersion::exact(3).matches(3));
  EXPECT_FALSE(ExpectedVersion::exact(3).matches(4));
  EXPECT_EQ(ExpectedVersion::exact(3).to_string(), "3");
}

TEST(Category, PrefixBeforeFirstDash) {
  EXPECT_EQ(stream_category("order-42"), "order");
  EXPECT_EQ(stream_category("order-42-x"), "order");
  EXPECT_EQ(stream_category("orders"), "orders");
}

TEST(Metadata, JsonRoundTrip) {
  EventMetadata m;
  m.correlation_id = "c";
  m.actor = "u1";
  m.extra["ip"] = "127.0.0.1";
  EventMetadata back;
  ASSERT_TRUE(detail::metadata_from_json(detail::metadata_to_json(m), back));
  EXPECT_EQ(back, m);
  EXPECT_FALSE(detail::metadata_from_json(nlohmann::json::array(), back));
}

TEST(Validation, RejectsBadInput) {
  StoreOptions o;
  o.max_payload_bytes = 16;
  o.max_events_per_append = 2;
  auto ev = [](std::string type, std::string payload) {
    EventData e;
    e.type = std::move(type);
    e.payload = std::move(payload);
    return e;
  };
  std::vector<EventData> v{ev("T", "{}")};
  EXPECT_TRUE(detail::prepare_append("s-1", ExpectedVersion::any(), v, o).is_ok());
  EXPECT_TRUE(is_uuid(v[0].id));
  auto code = [&](std::string_view stream, std::vector<EventData> events) {
    return detail::prepare_append(stream, ExpectedVersion::any(), events, o).code();
  };
  EXPECT_EQ(code("", {ev("T", "{}")}), StatusCode::invalid_argument);
  EXPECT_EQ(code(std::string(257, 's'), {ev("T", "{}")}), StatusCode::invalid_argument);
  EXPECT_EQ(code("s", {}), StatusCode::invalid_argument);
  EXPECT_EQ(code("s", {ev("", "{}")}), StatusCode::invalid_argument);
  EXPECT_EQ(code("s", {ev("T", "{nope")}), StatusCode::invalid_argument);
  EXPECT_EQ(code("s", {ev("T", R"({"a":"0123456789abcdef"})")}), StatusCode::invalid_argument);
  EXPECT_EQ(code("s", {ev("T", "1"), ev("T", "2"), ev("T", "3")}), StatusCode::invalid_argument);
  EventData a = ev("T", "{}");
  a.id = new_uuid_v7();
  EXPECT_EQ(code("s", {a, a}), StatusCode::invalid_argument);
  a.id = "x";
  EXPECT_EQ(code("s", {a}), StatusCode::invalid_argument);
  std::vector<EventData> one{ev("T", "{}")};
  EXPECT_EQ(detail::prepare_append("s", ExpectedVersion::exact(-2), one, o).code(),
            StatusCode::invalid_argument);
}

}  // namespace
}  // namespace herald

namespace herald {
namespace {

TEST(Json, ValidatesWholeDocuments) {
  EXPECT_TRUE(detail::is_valid_json(R"({"a":[1,2.5,"x",null,true]})"));
  EXPECT_TRUE(detail::is_valid_json("42"));
  EXPECT_TRUE(detail::is_valid_json("\"text\""));
  EXPECT_TRUE(detail::is_valid_json("  {}  "));
  EXPECT_FALSE(detail::is_valid_json(""));
  EXPECT_FALSE(detail::is_valid_json("{"));
  EXPECT_FALSE(detail::is_valid_json("{} {}"));
  EXPECT_FALSE(detail::is_valid_json("{'a':1}"));
  EXPECT_FALSE(detail::is_valid_json("[1,]"));
  EXPECT_FALSE(detail::is_valid_json("{\"a\":\"\xff\"}"));  // not UTF-8
  std::string deep(100, '[');
  deep += std::string(100, ']');
  EXPECT_TRUE(detail::is_valid_json(deep));
}

}  // namespace
}  // namespace herald
