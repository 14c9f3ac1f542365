// The admin API over a running EventSystem (memory store, real bus, HTTP on 127.0.0.1:0).
#include "system_fixture.h"

namespace herald::testing {
namespace {

using nlohmann::json;

class AdminRoutesTest : public SystemFixture {
 protected:
  void SetUp() override { start_system(true); }

  httplib::Result append(const std::string& stream, const json& body) {
    return client_->Post(("/admin/streams/" + stream).c_str(), body.dump(), "application/json");
  }
  static json event(const std::string& type, json data = json::object()) {
    return {{"type", type}, {"data", std::move(data)}};
  }
};

TEST_F(AdminRoutesTest, AppendThenReadTheStream) {
  auto r = append("order-1", {{"expected_version", "no_stream"},
                              {"events", {event("OrderCreated", {{"total", 42}}), event("OrderPaid")}}});
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 201) << r->body;
  EXPECT_EQ(parse(r), (json{{"first_position", 0}, {"last_position", 1}, {"next_version", 2}}));

  auto read = client_->Get("/admin/streams/order-1");
  ASSERT_TRUE(read);
  ASSERT_EQ(read->status, 200);
  auto events = parse(read)["events"];
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0]["type"], "OrderCreated");
  EXPECT_EQ(events[0]["data"], (json{{"total", 42}}));
  EXPECT_EQ(events[0]["stream"], "order-1");
  EXPECT_EQ(events[0]["version"], 0);
  EXPECT_EQ(events[1]["position"], 1);
  EXPECT_TRUE(events[1]["recorded_at"].is_string());
  EXPECT_TRUE(events[1]["id"].is_string());

  auto back = client_->Get("/admin/streams/order-1?direction=backwards&limit=1");
  ASSERT_TRUE(back);
  ASSERT_EQ(back->status, 200);
  EXPECT_EQ(parse(back)["events"][0]["type"], "OrderPaid");
  EXPECT_EQ(parse(back)["next"], 0);
}

TEST_F(AdminRoutesTest, ConflictCarriesActualVersion) {
  ASSERT_EQ(append("cart-1", {{"expected_version", "no_stream"}, {"events", {event("A")}}})->status, 201);
  auto r = append("cart-1", {{"expected_version", "no_stream"}, {"events", {event("B")}}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 409);
  EXPECT_EQ(parse(r)["error"], "wrong_expected_version");
  EXPECT_EQ(parse(r)["actual_version"], 0);
  auto exact = append("cart-1", {{"expected_version", 0}, {"events", {event("B")}}});
  ASSERT_TRUE(exact);
  EXPECT_EQ(exact->status, 201);
  EXPECT_EQ(parse(exact)["next_version"], 2);
}

TEST_F(AdminRoutesTest, BadAppendsAreRejectedAndWriteNothing) {
  const std::vector<std::string> bodies = {
      "",
      "{",
      "[]",
      R"({"events": []})",
      R"({"events": "x"})",
      R"({"events": [{"data": {}}]})",
      R"({"events": [{"type": "", "data": {}}]})",
      R"({"events": [{"type": 5, "data": {}}]})",
      R"({"events": [{"type": "A"}]})",
      R"({"events": [{"type": "A", "data": {}, "metadata": {"actor": 1}}]})",
      R"({"events": [{"type": "A", "data": {}, "id": "not-a-uuid"}]})",
      R"({"expected_version": -1, "events": [{"type": "A", "data": {}}]})",
      R"({"expected_version": "sometimes", "events": [{"type": "A", "data": {}}]})",
      R"({"expected_version": 1.5, "events": [{"type": "A", "data": {}}]})",
  };
  for (const auto& b : bodies) {
    auto r = client_->Post("/admin/streams/s-1", b, "application/json");
    ASSERT_TRUE(r) << b;
    EXPECT_EQ(r->status, 400) << b << " -> " << r->body;
    EXPECT_EQ(parse(r)["error"], "invalid_argument") << b;
    EXPECT_TRUE(parse(r)["message"].is_string());
  }
  EXPECT_EQ(system_->store().head_position(), -1);
}

TEST_F(AdminRoutesTest, StreamReadErrors) {
  auto missing = client_->Get("/admin/streams/nobody-1");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  EXPECT_EQ(parse(missing)["error"], "not_found");
  for (const char* q : {"?direction=sideways", "?limit=0", "?limit=1001", "?from=-1", "?from=abc"}) {
    auto r = client_->Get((std::string("/admin/streams/nobody-1") + q).c_str());
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400) << q;
    EXPECT_EQ(parse(r)["error"], "invalid_argument") << q;
  }
}

TEST_F(AdminRoutesTest, EventsAreFilteredAndPaged) {
  ASSERT_EQ(append("order-1", {{"events", {event("OrderCreated"), event("OrderPaid")}}})->status, 201);
  json with_corr = event("UserRegistered");
  with_corr["metadata"] = {{"correlation_id", "req-7"}};
  ASSERT_EQ(append("user-1", {{"events", {with_corr}}})->status, 201);
  ASSERT_EQ(append("order-2", {{"events", {event("OrderCreated")}}})->status, 201);

  auto all = client_->Get("/admin/events");
  ASSERT_TRUE(all);
  ASSERT_EQ(all->status, 200);
  EXPECT_EQ(parse(all)["events"].size(), 4u);
  EXPECT_EQ(parse(all)["next"], 4);

  auto types = client_->Get("/admin/events?type=OrderPaid,UserRegistered");
  ASSERT_EQ(types->status, 200);
  ASSERT_EQ(parse(types)["events"].size(), 2u);
  EXPECT_EQ(parse(types)["events"][0]["type"], "OrderPaid");
  auto repeated = client_->Get("/admin/events?type=OrderPaid&type=UserRegistered");
  EXPECT_EQ(parse(repeated)["events"].size(), 2u);

  auto category = client_->Get("/admin/events?category=order");
  EXPECT_EQ(parse(category)["events"].size(), 3u);
  auto stream = client_->Get("/admin/events?stream=order-2");
  ASSERT_EQ(parse(stream)["events"].size(), 1u);
  EXPECT_EQ(parse(stream)["events"][0]["position"], 3);
  auto corr = client_->Get("/admin/events?correlation_id=req-7");
  ASSERT_EQ(parse(corr)["events"].size(), 1u);
  EXPECT_EQ(parse(corr)["events"][0]["metadata"]["correlation_id"], "req-7");

  auto page = client_->Get("/admin/events?limit=2");
  ASSERT_EQ(parse(page)["events"].size(), 2u);
  auto next = parse(page)["next"].get<std::int64_t>();
  auto page2 = client_->Get(("/admin/events?limit=2&from=" + std::to_string(next)).c_str());
  ASSERT_EQ(parse(page2)["events"].size(), 2u);
  EXPECT_EQ(parse(page2)["events"][0]["position"], 2);

  auto future = client_->Get("/admin/events?since=2999-01-01T00:00:00Z");
  EXPECT_EQ(parse(future)["events"].size(), 0u);
  auto past = client_->Get("/admin/events?until=2000-01-01T00:00:00Z");
  EXPECT_EQ(parse(past)["events"].size(), 0u);
  auto window = client_->Get("/admin/events?since=2000-01-01T00:00:00Z&until=2999-01-01T00:00:00%2B02:00");
  EXPECT_EQ(parse(window)["events"].size(), 4u);

  for (const char* q : {"?since=yesterday", "?until=2026-13-01T00:00:00Z", "?limit=0", "?limit=5000",
                        "?from=-3", "?limit=ten"}) {
    auto r = client_->Get((std::string("/admin/events") + q).c_str());
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400) << q;
    EXPECT_EQ(parse(r)["error"], "invalid_argument") << q;
  }
}

TEST_F(AdminRoutesTest, StatsCountEventsAndStreams) {
  ASSERT_EQ(append("order-1", {{"events", {event("OrderCreated"), event("OrderPaid")}}})->status, 201);
  ASSERT_EQ(append("order-2", {{"events", {event("OrderCreated")}}})->status, 201);
  auto r = client_->Get("/admin/stats");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200);
  auto s = parse(r);
  EXPECT_EQ(s["store"]["total_events"], 3);
  EXPECT_EQ(s["store"]["stream_count"], 2);
  EXPECT_EQ(s["store"]["events_by_type"]["OrderCreated"], 2);
  EXPECT_EQ(s["bus"]["published_events"], 3);
}

TEST_F(AdminRoutesTest, HandlersDeadLettersRedriveAndDiscard) {
  ASSERT_EQ(append("thing-1", {{"events", {event("Good"), event("Poison")}}})->status, 201);
  ASSERT_EQ(append("thing-2", {{"events", {event("Poison")}}})->status, 201);

  json letters;
  ASSERT_TRUE(eventually([&] {
    auto r = client_->Get("/admin/dead-letters?handler=test.recorder");
    if (!r || r->status != 200) return false;
    letters = parse(r)["dead_letters"];
    return letters.size() == 2;
  })) << letters.dump();
  EXPECT_EQ(letters[0]["handler"], "test.recorder");
  EXPECT_EQ(letters[0]["event_type"], "Poison");
  EXPECT_EQ(letters[0]["stream"], "thing-1");

  auto handlers = client_->Get("/admin/handlers");
  ASSERT_TRUE(handlers);
  ASSERT_EQ(handlers->status, 200);
  auto list = parse(handlers);
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0]["name"], "test.recorder");
  EXPECT_EQ(list[0]["dead_lettered"], 2);
  for (const char* key : {"status", "checkpoint", "lag", "processed", "failed", "retried"}) {
    EXPECT_TRUE(list[0].contains(key)) << key;
  }

  // Unknown or malformed ids.
  auto bad_id = client_->Post("/admin/dead-letters/abc/redrive", "", "application/json");
  EXPECT_EQ(bad_id->status, 400);
  auto unknown = client_->Post("/admin/dead-letters/99999/redrive", "", "application/json");
  EXPECT_EQ(unknown->status, 404);
  EXPECT_EQ(parse(unknown)["error"], "not_found");
  EXPECT_EQ(client_->Delete("/admin/dead-letters/-1")->status, 400);
  EXPECT_EQ(client_->Delete("/admin/dead-letters/99999")->status, 404);

  // Redrive while still failing keeps the entry; after the fix it goes away.
  auto first_id = letters[0]["id"].get<std::int64_t>();
  auto still = client_->Post(("/admin/dead-letters/" + std::to_string(first_id) + "/redrive").c_str(), "",
                             "application/json");
  EXPECT_EQ(still->status, 422);
  EXPECT_EQ(parse(still)["error"], "permanent");
  handler_->poison_fails = false;
  auto fixed = client_->Post(("/admin/dead-letters/" + std::to_string(first_id) + "/redrive").c_str(), "",
                             "application/json");
  EXPECT_EQ(fixed->status, 200) << fixed->body;

  auto second_id = letters[1]["id"].get<std::int64_t>();
  auto discard = client_->Delete(("/admin/dead-letters/" + std::to_string(second_id)).c_str());
  EXPECT_EQ(discard->status, 200);
  auto after = client_->Get("/admin/dead-letters");
  EXPECT_EQ(parse(after)["dead_letters"].size(), 0u);
}

TEST_F(AdminRoutesTest, ReplayValidatesItsInput) {
  auto unknown = client_->Post("/admin/handlers/nope/replay", R"({"from_position":0})", "application/json");
  EXPECT_EQ(unknown->status, 404);
  for (const char* b : {"", "{", R"({})", R"({"from_position":-1})", R"({"from_position":"0"})",
                        R"({"from_time":"noon"})"}) {
    auto r = client_->Post("/admin/handlers/test.recorder/replay", b, "application/json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400) << b << " -> " << r->body;
  }
  ASSERT_EQ(append("thing-1", {{"events", {event("Good"), event("Good")}}})->status, 201);
  ASSERT_TRUE(eventually([&] { return handler_->handled.load() == 2; }));
  auto ok = client_->Post("/admin/handlers/test.recorder/replay", R"({"from_position":0})", "application/json");
  EXPECT_EQ(ok->status, 202) << ok->body;
  ASSERT_TRUE(eventually([&] { return handler_->handled.load() == 4; })) << handler_->handled.load();
}

TEST_F(AdminRoutesTest, ModuleRoutesAreServed) {
  auto r = client_->Get("/api/ping");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(parse(r)["pong"], true);
}

class AdminTokenTest : public SystemFixture {
 protected:
  void SetUp() override { start_system(true, "tok"); }
};

TEST_F(AdminTokenTest, AdminNeedsTokenButHealthDoesNot) {
  EXPECT_EQ(client_->Get("/admin/stats")->status, 401);
  EXPECT_EQ(client_->Post("/admin/streams/x-1", R"({"events":[{"type":"A","data":{}}]})", "application/json")->status,
            401);
  EXPECT_EQ(system_->store().head_position(), -1);
  EXPECT_EQ(client_->Get("/admin/stats", {{"Authorization", "Bearer tok"}})->status, 200);
  EXPECT_EQ(client_->Get("/health")->status, 200);
  EXPECT_EQ(client_->Get("/metrics")->status, 200);
}

}  // namespace
}  // namespace herald::testing
