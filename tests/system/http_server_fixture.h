// The fixture of the server tests (http_server_test.cpp, http_server_limits_test.cpp): a server on
// a free loopback port with a few routes, and the helpers the tests share.
#pragma once

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <fstream>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "herald/http.h"
#include "raw_http.h"

namespace herald::testing {

using herald::http::Request;
using herald::http::Response;
using herald::http::Router;
using herald::http::ServerOptions;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using nlohmann::json;

inline double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

inline std::string get(const std::string& path, const std::string& extra = "") {
  return "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + extra + "\r\n";
}
inline std::string post(const std::string& path, const std::string& body, const std::string& extra = "") {
  return "POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n" + extra + "\r\n" + body;
}

// Nearest-rank percentile.
inline double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  auto idx = static_cast<std::size_t>(std::max(0.0, std::ceil(p * static_cast<double>(v.size())) - 1));
  return v[std::min(idx, v.size() - 1)];
}

inline std::size_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::size_t pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
}

// Lets a test hold handlers inside /block until it releases them.
class Gate {
 public:
  void pass() {
    std::unique_lock lock(mu_);
    ++entered_;
    cv_.notify_all();
    cv_.wait_for(lock, std::chrono::seconds(30), [&] { return open_; });  // liveness bound only
  }
  bool wait_entered(int n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(10), [&] { return entered_ >= n; });
  }
  void open() {
    std::lock_guard lock(mu_);
    open_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;  // guards entered_, open_
  std::condition_variable cv_;
  int entered_ = 0;
  bool open_ = false;
};

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    herald::testing::raise_fd_limit();
    saved_level_ = spdlog::get_level();
    spdlog::set_level(spdlog::level::warn);  // thousands of access-log lines would drown the output
  }
  void TearDown() override {
    gate_.open();
    if (server_) server_->stop();
    spdlog::set_level(saved_level_);
  }

  void start(ServerOptions o = {}) {
    auto router = std::make_shared<Router>();
    ASSERT_TRUE(router->get("/health", [](const Request&) { return Response::ok({{"status", "up"}}); }));
    ASSERT_TRUE(router->post("/echo", [](const Request& req) {
      auto body = req.json_object();
      return body ? Response::ok(*body) : Response::from_status(body.status());
    }));
    // Earlier requests sleep longer, so answers computed in parallel would come back reversed.
    ASSERT_TRUE(router->get("/n/{n}", [](const Request& req) {
      int n = std::stoi(req.param("n"));
      std::this_thread::sleep_for(milliseconds(std::max(0, 3 - n) * 20));
      return Response::ok({{"n", n}});
    }));
    ASSERT_TRUE(router->get("/block", [this](const Request&) {
      gate_.pass();
      return Response::ok({{"blocked", true}});
    }));
    o.host = "127.0.0.1";
    o.port = 0;
    server_ = std::make_unique<herald::http::Server>(router, o);
    ASSERT_TRUE(server_->start());
    port_ = server_->port();
  }

  RawConnection connect() { return RawConnection(port_); }

  // One request on a fresh connection.
  std::optional<RawResponse> once(const std::string& bytes, milliseconds timeout = milliseconds(5000)) {
    auto c = connect();
    if (!c.connected() || !c.send(bytes)) return std::nullopt;
    return c.read_response(timeout);
  }

  Gate gate_;
  std::unique_ptr<herald::http::Server> server_;
  int port_ = 0;
  spdlog::level::level_enum saved_level_ = spdlog::level::info;
};

// The acceptance test: 1,000 connections holding half-sent headers and 100 clients sending
// a body one byte a second do not slow down a health check or a POST on fresh connections (p99 of

}  // namespace herald::testing
