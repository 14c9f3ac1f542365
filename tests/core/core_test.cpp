#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <condition_variable>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "core/json_codec.h"
#include "core/log_text.h"
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

// RFC 9562 6.9: ids must not be guessable from one another. Within one millisecond the counter
// (rand_a) orders them, and rand_b is fresh randomness for every id, so two ids of the same
// millisecond differ far above their low bits.
TEST(Uuid, V7SameMillisecondIdsDifferInTheirRandomBits) {
  auto rand_b = [](const std::string& id) {
    std::string hex = id.substr(19, 4) + id.substr(24);  // variant + 62 random bits
    return std::stoull(hex, nullptr, 16) & 0x3FFFFFFFFFFFFFFFULL;
  };
  int same_ms_pairs = 0;
  std::string previous = new_uuid_v7();
  for (int i = 0; i < 20'000; ++i) {
    std::string id = new_uuid_v7();
    ASSERT_LT(previous, id);
    if (id.substr(0, 13) == previous.substr(0, 13)) {  // the same 48-bit millisecond
      ++same_ms_pairs;
      const std::uint64_t diff = rand_b(id) ^ rand_b(previous);
      EXPECT_NE(diff >> 16, 0u) << previous << " and " << id << " differ only in their low bits";
    }
    previous = std::move(id);
  }
  EXPECT_GT(same_ms_pairs, 100);  // the loop makes many ids per millisecond
}

TEST(Uuid, V7ParentAndForkedChildDrawDifferentBits) {
  (void)new_uuid_v7();  // fill this thread's buffer of OS randomness before forking
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    std::string id = new_uuid_v7();
    (void)!::write(fds[1], id.data(), id.size());
    ::_exit(0);
  }
  std::string mine = new_uuid_v7();
  char buf[36];
  ASSERT_EQ(::read(fds[0], buf, sizeof buf), 36);
  ::waitpid(pid, nullptr, 0);
  ::close(fds[0]);
  ::close(fds[1]);
  EXPECT_NE(std::string(buf, 36).substr(19), mine.substr(19));
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

// A thread waiting on a ManualTimeSource wakes when advance() reaches its deadline, not before,
// and a notification of its condition variable ends the wait at once, with no real time passing.
TEST(ManualTimeSource, AdvanceWakesAWaiterWhoseDeadlineHasCome) {
  ManualTimeSource time;
  const auto start = time.now();
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;  // guarded by mu
  bool result = true;
  std::thread waiter([&] {
    std::unique_lock lock(mu);
    result = time.wait_until(lock, cv, start + std::chrono::seconds(10), [&] { return done; });
  });
  while (time.waiting() != 1) std::this_thread::yield();
  time.advance(std::chrono::seconds(9));
  EXPECT_EQ(time.now(), start + std::chrono::seconds(9));
  EXPECT_EQ(time.waiting(), 1) << "woken before its deadline, it must wait again";
  time.advance(std::chrono::seconds(1));
  waiter.join();
  EXPECT_FALSE(result) << "the deadline passed; done() is still false";
  EXPECT_EQ(time.waiting(), 0);
  time.advance(std::chrono::seconds(-5));
  EXPECT_EQ(time.now(), start + std::chrono::seconds(10)) << "time never goes back";
}

TEST(ManualTimeSource, ANotificationEndsTheWaitWithoutTimeMoving) {
  ManualTimeSource time;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;  // guarded by mu
  bool result = false;
  std::thread waiter([&] {
    std::unique_lock lock(mu);
    result = time.wait_until(lock, cv, time.now() + std::chrono::hours(1), [&] { return done; });
  });
  while (time.waiting() != 1) std::this_thread::yield();
  {
    std::lock_guard lock(mu);
    done = true;
  }
  cv.notify_all();
  waiter.join();
  EXPECT_TRUE(result);
  // Already done or already past the deadline: no wait at all.
  std::unique_lock lock(mu);
  EXPECT_TRUE(time.wait_until(lock, cv, time.now() + std::chrono::hours(1), [&] { return done; }));
  done = false;
  EXPECT_FALSE(time.wait_until(lock, cv, time.now(), [&] { return done; }));
}

TEST(SteadyTimeSource, WaitsOnTheRealClock) {
  auto time = steady_time_source();
  std::mutex mu;
  std::condition_variable cv;
  std::unique_lock lock(mu);
  const auto before = std::chrono::steady_clock::now();
  EXPECT_FALSE(time->wait_until(lock, cv, time->now() + std::chrono::milliseconds(5), [] { return false; }));
  EXPECT_GE(std::chrono::steady_clock::now() - before, std::chrono::milliseconds(5));
  EXPECT_GE(time->uninterruptible_slice(), std::chrono::hours(1));
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

TEST(LogText, ControlCharactersAreEscaped) {
  EXPECT_EQ(detail::escape_for_log("plain /path?q=1"), "plain /path?q=1");
  EXPECT_EQ(detail::escape_for_log("caf\xC3\xA9"), "caf\xC3\xA9");  // UTF-8 kept
  EXPECT_EQ(detail::escape_for_log("a\x1b[2Jb"), "a\\x1b[2Jb");
  EXPECT_EQ(detail::escape_for_log("l1\r\nl2"), "l1\\x0d\\x0al2");
  EXPECT_EQ(detail::escape_for_log("back\\slash"), "back\\x5cslash");
  EXPECT_EQ(detail::escape_for_log("\x7f"), "\\x7f");
  EXPECT_EQ(detail::escape_for_log("\xC2\x9B"), "\\xc2\\x9b");                  // C1 CSI
  EXPECT_EQ(detail::escape_for_log("\xE2\x80\xA8"), "\\xe2\\x80\\xa8");        // U+2028
  EXPECT_EQ(detail::escape_for_log("\xff\xC3"), "\\xff\\xc3");                  // not UTF-8
  EXPECT_EQ(detail::escape_for_log("\xC0\xAF"), "\\xc0\\xaf");                  // overlong '/'
  EXPECT_TRUE(detail::is_log_safe("caf\xC3\xA9"));
  EXPECT_FALSE(detail::is_log_safe("a\nb"));
}

TEST(Json, DepthIsBoundedWithoutRecursion) {
  auto nested = [](std::size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); };
  EXPECT_TRUE(detail::is_valid_json(nested(kMaxJsonDepth)));
  EXPECT_FALSE(detail::is_valid_json(nested(kMaxJsonDepth + 1)));
  EXPECT_FALSE(detail::is_valid_json(nested(1'000'000)));
  EXPECT_TRUE(detail::json_depth_within(nested(kMaxJsonDepth), kMaxJsonDepth));
  EXPECT_FALSE(detail::json_depth_within(nested(kMaxJsonDepth + 1), kMaxJsonDepth));
  EXPECT_FALSE(detail::json_depth_within(std::string(1'000'000, '{'), kMaxJsonDepth));  // unclosed
  // Brackets inside strings, escaped quotes included, do not count.
  std::string in_string = "[\"" + std::string(500, '[') + "\\\"" + std::string(500, '{') + "\"]";
  EXPECT_TRUE(detail::json_depth_within(in_string, 1));
  EXPECT_TRUE(detail::is_valid_json(in_string));
}

}  // namespace
}  // namespace herald
