// A running EventSystem over a memory store with one test module, for the admin/health/metrics
// tests.
#pragma once

#include <gtest/gtest.h>
#include <httplib.h>

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "herald/system.h"

namespace herald::testing {

// Handles "Good" and "Poison" events; Poison fails permanently while `poison_fails` is set.
class RecordingHandler final : public EventHandler {
 public:
  std::string name() const override { return "test.recorder"; }
  std::vector<std::string> event_types() const override { return {"Good", "Poison"}; }
  Status handle(const RecordedEvent& e, HandlerContext&) override {
    // A handler that cannot keep up, for the lag checks: it holds its lane while `stall` is set.
    while (stall.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    if (e.type == "Poison" && poison_fails.load()) return Status::permanent("poison event " + e.id);
    handled.fetch_add(1);
    return Status::ok();
  }
  std::atomic_bool poison_fails{true};
  std::atomic_bool stall{false};
  std::atomic_int handled{0};
};

// A module with a handler, a route and a health check whose outcome the test controls.
class TestModule final : public Module {
 public:
  explicit TestModule(std::shared_ptr<RecordingHandler> h, std::shared_ptr<std::atomic_bool> healthy)
      : handler_(std::move(h)), healthy_(std::move(healthy)) {}
  std::string name() const override { return "test"; }
  Status register_handlers(HandlerRegistrar& r, ModuleContext&) override {
    auto options = r.defaults();
    options.retry = RetryPolicy::no_retry();
    return r.add(handler_, options);
  }
  Status register_routes(http::Router& router, ModuleContext& ctx) override {
    return router.get("/api/ping", [&ctx](const http::Request&) {
      return http::Response::ok({{"pong", true}, {"head", ctx.store().head_position()}});
    });
  }
  std::vector<HealthCheck> health_checks(ModuleContext&) override {
    auto flag = healthy_;
    return {{"flag", [flag] { return flag->load() ? Status::ok() : Status::unavailable("flag is down"); }}};
  }

 private:
  std::shared_ptr<RecordingHandler> handler_;
  std::shared_ptr<std::atomic_bool> healthy_;
};

// Runs `promtool check metrics` on `text`; returns its exit code and output, or -2 when the build
// found no promtool (HERALD_PROMTOOL).
inline int promtool_check(const std::string& text, std::string& output) {
#ifdef HERALD_PROMTOOL
  auto dir = std::filesystem::temp_directory_path();
  auto in = dir / ("herald-metrics-" + std::to_string(::getpid()) + ".txt");
  auto out = dir / ("herald-promtool-" + std::to_string(::getpid()) + ".txt");
  std::ofstream(in) << text;
  std::string cmd = std::string(HERALD_PROMTOOL) + " check metrics < " + in.string() + " > " + out.string() + " 2>&1";
  int rc = std::system(cmd.c_str());
  std::ifstream f(out);
  output.assign(std::istreambuf_iterator<char>(f), {});
  std::filesystem::remove(in);
  std::filesystem::remove(out);
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
#else
  (void)text;
  (void)output;
  return -2;
#endif
}

// Polls `pred` until it holds or 10 s pass (a liveness bound, not a timing assertion).
template <class Pred>
bool eventually(Pred pred) {
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < until) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return pred();
}

class SystemFixture : public ::testing::Test {
 protected:
  void start_system(bool http, std::string admin_token = {}, std::int64_t max_handler_lag = 100'000) {
    SystemConfig c;
    c.health_max_handler_lag = max_handler_lag;
    c.store_url = "memory:";
    c.http_enabled = http;
    c.http.port = 0;
    c.http.admin_token = std::move(admin_token);
    c.log_level = "warn";
    c.bus.poll_interval = std::chrono::milliseconds(20);
    c.shutdown_timeout = std::chrono::milliseconds(2000);
    system_ = std::make_unique<EventSystem>(c);
    ASSERT_TRUE(system_->add_module(std::make_unique<TestModule>(handler_, healthy_)));
    auto s = system_->initialize();
    ASSERT_TRUE(s) << s.to_string();
    if (http) {
      ASSERT_GT(system_->http_port(), 0);
      client_ = std::make_unique<httplib::Client>("127.0.0.1", system_->http_port());
    }
  }

  void TearDown() override {
    handler_->stall = false;
    client_.reset();
    if (system_) (void)system_->shutdown(std::chrono::steady_clock::now() + std::chrono::seconds(2));
  }

  static nlohmann::json parse(const httplib::Result& r) { return nlohmann::json::parse(r->body); }

  std::shared_ptr<RecordingHandler> handler_ = std::make_shared<RecordingHandler>();
  std::shared_ptr<std::atomic_bool> healthy_ = std::make_shared<std::atomic_bool>(true);
  std::unique_ptr<EventSystem> system_;
  std::unique_ptr<httplib::Client> client_;
};

}  // namespace herald::testing
