// Health aggregation, Prometheus metrics (checked by promtool when installed) and lifecycle.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "system_fixture.h"

namespace herald::testing {
namespace {

using nlohmann::json;

class HealthTest : public SystemFixture {};

TEST_F(HealthTest, UpOverHttpWithEveryCheck) {
  start_system(true);
  auto r = client_->Get("/health");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  auto body = parse(r);
  EXPECT_EQ(body["status"], "up");
  EXPECT_EQ(body["checks"]["store"]["status"], "up");
  EXPECT_EQ(body["checks"]["bus"]["status"], "up");
  EXPECT_EQ(body["checks"]["test.flag"]["status"], "up");
}

TEST_F(HealthTest, ModuleCheckDownMakes503) {
  start_system(true);
  *healthy_ = false;
  auto r = client_->Get("/health");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  auto body = parse(r);
  EXPECT_EQ(body["status"], "down");
  EXPECT_EQ(body["checks"]["test.flag"]["status"], "down");
  EXPECT_NE(body["checks"]["test.flag"]["detail"].get<std::string>().find("flag is down"), std::string::npos);
  EXPECT_EQ(body["checks"]["store"]["status"], "up");
}

TEST_F(HealthTest, AHandlerFallingBehindShowsAsDownUntilItCatchesUp) {
  start_system(false, {}, /*max_handler_lag=*/10);
  handler_->stall = true;
  std::vector<EventData> events(30);
  for (auto& e : events) {
    e.type = "Good";
    e.payload = "{}";
  }
  ASSERT_TRUE(system_->bus().publish("lagging-1", ExpectedVersion::any(), std::move(events)));
  auto bus_check = [&] {
    auto report = system_->health();
    auto it = std::find_if(report.checks.begin(), report.checks.end(), [](const auto& c) { return c.name == "bus"; });
    return it == report.checks.end() ? HealthCheckResult{} : *it;
  };
  ASSERT_TRUE(eventually([&] { return !bus_check().up; }));
  EXPECT_NE(bus_check().detail.find("test.recorder"), std::string::npos) << bus_check().detail;
  EXPECT_NE(bus_check().detail.find("not keeping up"), std::string::npos) << bus_check().detail;
  EXPECT_FALSE(system_->health().up);
  handler_->stall = false;
  EXPECT_TRUE(eventually([&] { return bus_check().up; }));
  EXPECT_EQ(handler_->handled.load(), 30);
}

TEST_F(HealthTest, ClosedStoreIsDown) {
  start_system(false);
  EXPECT_TRUE(system_->health().up);
  system_->store().close();
  auto report = system_->health();
  EXPECT_FALSE(report.up);
  auto store = std::find_if(report.checks.begin(), report.checks.end(), [](const auto& c) { return c.name == "store"; });
  ASSERT_NE(store, report.checks.end());
  EXPECT_FALSE(store->up);
  EXPECT_EQ(report.to_json()["checks"]["store"]["status"], "down");
}

class MetricsTest : public SystemFixture {};

TEST_F(MetricsTest, ExpositionHasHandlerCountersAndPassesPromtool) {
  start_system(true);
  auto w = system_->bus().publish("thing-1", ExpectedVersion::any(),
                                  {EventData{"", "Good", "{}", {}}, EventData{"", "Good", "{}", {}}});
  ASSERT_TRUE(w);
  ASSERT_TRUE(eventually([&] { return handler_->handled.load() == 2; }));
  ASSERT_TRUE(eventually([&] {
    auto s = system_->bus().handler_status("test.recorder");
    return s && s->processed == 2;
  }));

  auto r = client_->Get("/metrics");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  const std::string& text = r->body;
  EXPECT_NE(text.find("herald_handler_processed_total{handler=\"test.recorder\"} 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("herald_bus_published_events_total 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("herald_store_events 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("herald_handler_latency_seconds_bucket{handler=\"test.recorder\",le=\"+Inf\"} 2\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("herald_handler_latency_seconds_count{handler=\"test.recorder\"} 2\n"), std::string::npos);

  std::string out;
  int rc = promtool_check(text, out);
  if (rc == -2) GTEST_SKIP() << "promtool not installed";
  EXPECT_EQ(rc, 0) << out << "\n" << text;
}

TEST(PrometheusTest, HistogramIsCumulativeAndLabelsAreEscaped) {
  HandlerStatus h;
  h.name = "odd\"name\\with\nnewline";
  h.latency.counts[0] = 1;   // <= 50 us
  h.latency.counts[2] = 3;   // <= 250 us
  h.latency.counts[LatencyHistogram::kBuckets - 1] = 2;  // > 10 s
  h.latency.count = 6;
  h.latency.sum_us = 30'000'000;
  BusStats bus;
  StoreStats stats;
  stats.events_by_type["A"] = 1;
  auto text = prometheus_metrics(bus, {h}, &stats);
  const std::string label = "handler=\"odd\\\"name\\\\with\\nnewline\"";
  EXPECT_NE(text.find("herald_handler_latency_seconds_bucket{" + label + ",le=\"5e-05\"} 1\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("herald_handler_latency_seconds_bucket{" + label + ",le=\"0.0001\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("herald_handler_latency_seconds_bucket{" + label + ",le=\"0.00025\"} 4\n"), std::string::npos);
  EXPECT_NE(text.find("herald_handler_latency_seconds_bucket{" + label + ",le=\"10\"} 4\n"), std::string::npos);
  EXPECT_NE(text.find("herald_handler_latency_seconds_bucket{" + label + ",le=\"+Inf\"} 6\n"), std::string::npos);
  EXPECT_NE(text.find("herald_handler_latency_seconds_sum{" + label + "} 30\n"), std::string::npos);
  EXPECT_NE(text.find("herald_store_up 1\n"), std::string::npos);

  std::string out;
  int rc = promtool_check(text, out);
  if (rc == -2) GTEST_SKIP() << "promtool not installed";
  EXPECT_EQ(rc, 0) << out << "\n" << text;

  auto no_store = prometheus_metrics(bus, {}, nullptr);
  EXPECT_NE(no_store.find("herald_store_up 0\n"), std::string::npos);
  EXPECT_EQ(no_store.find("herald_store_events "), std::string::npos);
  EXPECT_EQ(promtool_check(no_store, out), 0) << out;
}

class LifecycleTest : public SystemFixture {};

TEST_F(LifecycleTest, ModulesAreCheckedAndLifecycleIsOrdered) {
  SystemConfig c;
  c.store_url = "memory:";
  c.http_enabled = false;
  EventSystem sys(c);
  EXPECT_EQ(sys.add_module(nullptr).code(), StatusCode::invalid_argument);
  ASSERT_TRUE(sys.add_module(std::make_unique<TestModule>(handler_, healthy_)));
  EXPECT_EQ(sys.add_module(std::make_unique<TestModule>(handler_, healthy_)).code(), StatusCode::already_exists);
  ASSERT_TRUE(sys.initialize());
  EXPECT_EQ(sys.initialize().code(), StatusCode::failed_precondition);
  EXPECT_EQ(sys.add_module(std::make_unique<TestModule>(handler_, healthy_)).code(),
            StatusCode::failed_precondition);
  EXPECT_EQ(sys.bus().handler_names(), std::vector<std::string>{"test.recorder"});
  auto report = sys.shutdown(std::chrono::steady_clock::now() + std::chrono::seconds(2));
  EXPECT_TRUE(report.clean);
  auto again = sys.shutdown(std::chrono::steady_clock::now());
  EXPECT_EQ(again.clean, report.clean);
  EXPECT_FALSE(sys.health().up);
}

TEST_F(LifecycleTest, BadStoreUrlFailsInitialize) {
  SystemConfig c;
  c.store_url = "mongodb://nowhere";
  c.http_enabled = false;
  EventSystem sys(c);
  auto s = sys.initialize();
  EXPECT_EQ(s.code(), StatusCode::invalid_argument) << s.to_string();
  EXPECT_NE(s.message().find("mongodb://nowhere"), std::string::npos);
}

TEST_F(LifecycleTest, PortInUseFailsInitialize) {
  start_system(true);
  SystemConfig c;
  c.store_url = "memory:";
  c.http.port = system_->http_port();
  EventSystem second(c);
  auto s = second.initialize();
  EXPECT_EQ(s.code(), StatusCode::unavailable) << s.to_string();
}

TEST_F(LifecycleTest, SqliteStoreIsCreatedUnderTheDataDir) {
  auto dir = std::filesystem::temp_directory_path() / ("herald-system-sqlite-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  SystemConfig c;
  c.data_dir = (dir / "nested").string();
  c.http_enabled = false;
  {
    EventSystem sys(c);
    auto s = sys.initialize();
    ASSERT_TRUE(s) << s.to_string();
    EXPECT_EQ(sys.store().url(), "sqlite://" + (dir / "nested" / "events.db").string());
    ASSERT_TRUE(sys.bus().publish("a-1", ExpectedVersion::no_stream(), {EventData{"", "A", "{}", {}}}));
  }
  EXPECT_TRUE(std::filesystem::exists(dir / "nested" / "events.db"));
  std::filesystem::remove_all(dir);
}

TEST_F(LifecycleTest, RunUntilSignalStopsOnRequest) {
  start_system(false);
  std::thread waker([] { request_shutdown(); });
  int rc = system_->run_until_signal();
  waker.join();
  EXPECT_EQ(rc, 0);
  EXPECT_FALSE(system_->health().up);
}

TEST_F(LifecycleTest, SigtermStopsGracefully) {
  start_system(false);
  std::thread sender([] {
    // Send only once run_until_signal() has installed its handler, or SIGTERM would kill the test.
    eventually([] {
      struct sigaction current {};
      sigaction(SIGTERM, nullptr, &current);
      return current.sa_handler != SIG_DFL && current.sa_handler != SIG_IGN;
    });
    ::kill(::getpid(), SIGTERM);
  });
  int rc = system_->run_until_signal();
  sender.join();
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(system_->store().head_position(), -1);
  EXPECT_FALSE(system_->health().up);
}

class FailingModule final : public Module {
 public:
  std::string name() const override { return "broken"; }
  Status register_routes(http::Router& router, ModuleContext&) override {
    // A route the system already owns: registration must fail and initialize() with it.
    return router.get("/health", [](const http::Request&) { return http::Response::ok({}); });
  }
};

TEST_F(LifecycleTest, FailingModuleAbortsInitializeAndNamesTheModule) {
  SystemConfig c;
  c.store_url = "memory:";
  c.http.port = 0;
  EventSystem sys(c);
  ASSERT_TRUE(sys.add_module(std::make_unique<FailingModule>()));
  auto s = sys.initialize();
  EXPECT_EQ(s.code(), StatusCode::already_exists) << s.to_string();
  EXPECT_NE(s.message().find("module broken"), std::string::npos) << s.message();
  EXPECT_EQ(sys.http_port(), 0);  // the server was never started
  EXPECT_FALSE(sys.health().up);  // the store was closed again
}

TEST_F(LifecycleTest, ConfigOverridesApplyPerHandler) {
  SystemConfig c;
  c.store_url = "memory:";
  c.http_enabled = false;
  HandlerOverride o;
  o.lanes = 3;
  c.handler_overrides["test.recorder"] = o;
  EventSystem sys(c);
  ASSERT_TRUE(sys.add_module(std::make_unique<TestModule>(handler_, healthy_)));
  ASSERT_TRUE(sys.initialize());
  auto status = sys.bus().handler_status("test.recorder");
  ASSERT_TRUE(status);
  EXPECT_EQ(status->lanes, 3);
}

}  // namespace
}  // namespace herald::testing
