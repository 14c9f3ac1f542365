// herald::http::Server's deadlines and limits, the connection limit, a full worker queue, the
// handler deadline, graceful shutdown, and the configuration keys of all of them (raw sockets, short
// deadlines).
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <thread>
#include <vector>

#include "herald/system.h"
#include "http_server_fixture.h"

namespace {

using namespace herald::testing;  // NOLINT: the fixture's helpers and types

TEST_F(HttpServerTest, HeaderIdleAndBodyRateDeadlines) {
  ServerOptions o;
  o.header_timeout = milliseconds(500);
  o.idle_timeout = milliseconds(400);
  o.body_timeout = milliseconds(20'000);
  o.body_min_bytes_per_s = 1024;
  start(o);

  auto half = connect();
  auto silent = connect();  // sends nothing: closed without an answer
  auto t0 = Clock::now();
  ASSERT_TRUE(half.send("GET /health HTTP/1.1\r\nHost: 1"));
  auto r = half.read_response(milliseconds(5000));
  const double header_ms = ms_since(t0);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 408);
  EXPECT_TRUE(half.wait_closed(milliseconds(2000)));
  EXPECT_TRUE(silent.wait_closed(milliseconds(2000)));
  EXPECT_TRUE(silent.received().empty());
  EXPECT_GE(header_ms, 450.0);
  EXPECT_LT(header_ms, 2000.0);

  // Idle keep-alive: closed, silently, idle_timeout after the last response.
  auto idle = connect();
  ASSERT_TRUE(idle.send(get("/health")));
  ASSERT_TRUE(idle.read_response(milliseconds(2000)));
  t0 = Clock::now();
  EXPECT_TRUE(idle.wait_closed(milliseconds(5000)));
  const double idle_ms = ms_since(t0);
  EXPECT_TRUE(idle.received().empty());
  EXPECT_GE(idle_ms, 350.0);
  EXPECT_LT(idle_ms, 2000.0);

  // A body trickling at 10 bytes/s is under the 1 KiB/s minimum: 408 about a second after the
  // header, long before body_timeout (20 s).
  auto trickle = connect();
  t0 = Clock::now();
  ASSERT_TRUE(trickle.send(
      "POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n{"));
  std::optional<RawResponse> answer;
  while (!answer && ms_since(t0) < 10'000) {
    (void)trickle.send(" ");
    answer = trickle.read_response(milliseconds(100));  // also paces the trickle
  }
  const double rate_ms = ms_since(t0);
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->status, 408);
  EXPECT_GE(rate_ms, 900.0);
  EXPECT_LT(rate_ms, 4000.0);
  std::printf("[ deadline ] header 408 after %.0f ms, idle close after %.0f ms, slow body 408 after %.0f ms\n",
              header_ms, idle_ms, rate_ms);
}

TEST_F(HttpServerTest, ConfiguredHeaderAndUriLimits) {
  ServerOptions o;
  o.max_header_bytes = 1024;
  o.max_uri_bytes = 100;
  start(o);
  auto ok = once(get("/health", "X-A: " + std::string(800, 'a') + "\r\n"));
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
  auto big = once(get("/health", "X-A: " + std::string(1100, 'a') + "\r\n"));
  ASSERT_TRUE(big);
  EXPECT_EQ(big->status, 431);
  auto uri_ok = once(get("/health?q=" + std::string(80, 'q')));
  ASSERT_TRUE(uri_ok);
  EXPECT_EQ(uri_ok->status, 200);
  auto uri = once(get("/health?q=" + std::string(120, 'q')));
  ASSERT_TRUE(uri);
  EXPECT_EQ(uri->status, 414);
}

TEST_F(HttpServerTest, ConnectionsOverTheLimitGet503AndTheOthersAreStillServed) {
  ServerOptions o;
  o.max_connections = 5;
  start(o);
  std::vector<RawConnection> open;
  for (int i = 0; i < 5; ++i) {
    open.emplace_back(port_);
    ASSERT_TRUE(open.back().send(get("/health")));
    auto r = open.back().read_response(milliseconds(2000));
    ASSERT_TRUE(r) << i;
    EXPECT_EQ(r->status, 200);
  }
  auto extra = connect();
  ASSERT_TRUE(extra.connected());
  auto refused = extra.read_response(milliseconds(2000));
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 503);
  EXPECT_EQ(refused->header("retry-after"), "1");
  EXPECT_EQ(json::parse(refused->body)["error"], "unavailable");
  EXPECT_TRUE(extra.wait_closed(milliseconds(3000)));
  for (auto& c : open) {
    ASSERT_TRUE(c.send(get("/health")));
    auto r = c.read_response(milliseconds(2000));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
  }
  // A freed slot is usable again (once the server has seen the close).
  open.front().close();
  std::optional<RawResponse> again;
  const auto t0 = Clock::now();
  while (ms_since(t0) < 5000) {
    again = once(get("/health"));
    if (again && again->status == 200) break;
  }
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 200);
}

TEST_F(HttpServerTest, AFullWorkerQueueIsAnswered503AtOnce) {
  ServerOptions o;
  o.worker_threads = 1;
  o.max_queued_requests = 1;
  start(o);
  auto running = connect();
  ASSERT_TRUE(running.send(get("/block")));
  ASSERT_TRUE(gate_.wait_entered(1));
  // One of these two is queued behind the blocked handler, the other finds the queue full.
  auto b = connect(), c = connect();
  ASSERT_TRUE(b.send(get("/health")));
  ASSERT_TRUE(c.send(get("/health")));
  std::optional<RawResponse> first;
  RawConnection* other = nullptr;
  const auto t0 = Clock::now();
  while (!first && ms_since(t0) < 5000) {
    if ((first = b.read_response(milliseconds(20)))) other = &c;
    else if ((first = c.read_response(milliseconds(20)))) other = &b;
  }
  ASSERT_TRUE(first);
  EXPECT_EQ(first->status, 503);
  EXPECT_EQ(first->header("retry-after"), "1");
  EXPECT_EQ(json::parse(first->body)["error"], "unavailable");
  gate_.open();
  auto blocked = running.read_response(milliseconds(5000));
  ASSERT_TRUE(blocked);
  EXPECT_EQ(blocked->status, 200);
  auto queued = other->read_response(milliseconds(5000));
  ASSERT_TRUE(queued);
  EXPECT_EQ(queued->status, 200);
}

TEST_F(HttpServerTest, AHandlerOverItsDeadlineIsAnswered503AndTheConnectionGoesOn) {
  ServerOptions o;
  o.handler_timeout = milliseconds(200);
  start(o);
  auto c = connect();
  const auto t0 = Clock::now();
  ASSERT_TRUE(c.send(get("/block", "X-Request-Id: slow-1\r\n")));
  auto r = c.read_response(milliseconds(5000));
  const double took = ms_since(t0);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(json::parse(r->body)["error"], "timeout");
  EXPECT_EQ(r->header("x-request-id"), "slow-1");
  EXPECT_GE(took, 180.0);
  EXPECT_LT(took, 2000.0);
  gate_.open();  // the handler returns now; its late answer must not reach the client
  ASSERT_TRUE(c.send(get("/health")));
  auto next = c.read_response(milliseconds(2000));
  ASSERT_TRUE(next);
  EXPECT_EQ(next->status, 200);
  EXPECT_EQ(json::parse(next->body)["status"], "up");
}

TEST_F(HttpServerTest, StopLetsInFlightRequestsFinishAndRefusesNewConnections) {
  ServerOptions o;
  o.shutdown_timeout = milliseconds(10'000);
  start(o);
  auto idle = connect();  // an idle keep-alive connection is closed at once
  ASSERT_TRUE(idle.send(get("/health")));
  ASSERT_TRUE(idle.read_response(milliseconds(2000)));
  auto busy = connect();
  ASSERT_TRUE(busy.send(get("/block")));
  ASSERT_TRUE(gate_.wait_entered(1));

  std::atomic_bool stopped{false};
  std::thread stopper([&] {
    server_->stop();
    stopped = true;
  });
  EXPECT_TRUE(idle.wait_closed(milliseconds(5000)));
  EXPECT_TRUE(idle.received().empty());
  bool refused = false;
  for (const auto t0 = Clock::now(); !refused && ms_since(t0) < 5000;) {
    RawConnection fresh(port_);
    refused = !fresh.connected() && fresh.connect_errno() == ECONNREFUSED;
  }
  EXPECT_TRUE(refused) << "new connections are still accepted while stopping";
  EXPECT_FALSE(stopped.load()) << "stop() returned with a request in flight";
  gate_.open();
  auto r = busy.read_response(milliseconds(5000));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->header("connection"), "close");
  EXPECT_TRUE(busy.wait_closed(milliseconds(5000)));
  stopper.join();
  EXPECT_TRUE(stopped.load());
  server_->stop();  // idempotent
  EXPECT_EQ(server_->start().code(), herald::StatusCode::failed_precondition);
}

TEST_F(HttpServerTest, StopClosesWhatIsStillBusyAtTheShutdownDeadline) {
  ServerOptions o;
  o.shutdown_timeout = milliseconds(300);
  start(o);
  auto busy = connect();
  ASSERT_TRUE(busy.send(get("/block")));
  ASSERT_TRUE(gate_.wait_entered(1));
  const auto t0 = Clock::now();
  std::thread stopper([&] { server_->stop(); });
  EXPECT_TRUE(busy.wait_closed(milliseconds(5000)));
  const double closed_ms = ms_since(t0);
  EXPECT_GE(closed_ms, 250.0);
  EXPECT_FALSE(busy.read_response(milliseconds(0)));
  gate_.open();  // stop() waits for the handler itself: it may use what the owner frees next
  stopper.join();
}

TEST(HttpServerConfigTest, EveryDeadlineAndLimitIsAConfigKey) {
  auto defaults = herald::parse_config({}, {});
  ASSERT_TRUE(defaults);
  const ServerOptions d = defaults->config.http;
  EXPECT_EQ(d.io_threads, 2);
  EXPECT_EQ(d.worker_threads, 8);
  EXPECT_EQ(d.max_connections, 10'000u);
  EXPECT_EQ(d.header_timeout, milliseconds(10'000));

  auto r = herald::parse_config(
      {"--http-io-threads", "3", "--http-max-queued-requests", "50", "--http-max-connections", "70",
       "--http-max-header-bytes", "4096", "--http-max-uri-bytes", "2048", "--http-header-timeout-ms", "1500",
       "--http-body-timeout-ms", "2500", "--http-body-min-bytes-per-s", "0", "--http-write-timeout-ms", "3500",
       "--http-handler-timeout-ms", "4500", "--http-shutdown-timeout-ms", "5500", "--http-threads", "4"},
      {{"HERALD_HTTP_IDLE_TIMEOUT_MS", "6500"}});
  ASSERT_TRUE(r) << r.status().to_string();
  const ServerOptions& o = r->config.http;
  EXPECT_EQ(o.io_threads, 3);
  EXPECT_EQ(o.worker_threads, 4);
  EXPECT_EQ(o.max_queued_requests, 50u);
  EXPECT_EQ(o.max_connections, 70u);
  EXPECT_EQ(o.max_header_bytes, 4096u);
  EXPECT_EQ(o.max_uri_bytes, 2048u);
  EXPECT_EQ(o.header_timeout, milliseconds(1500));
  EXPECT_EQ(o.body_timeout, milliseconds(2500));
  EXPECT_EQ(o.body_min_bytes_per_s, 0u);
  EXPECT_EQ(o.idle_timeout, milliseconds(6500));
  EXPECT_EQ(o.write_timeout, milliseconds(3500));
  EXPECT_EQ(o.handler_timeout, milliseconds(4500));
  EXPECT_EQ(o.shutdown_timeout, milliseconds(5500));
  EXPECT_EQ(herald::parse_config({"--http-header-timeout-ms", "0"}, {}).status().code(),
            herald::StatusCode::invalid_argument);
  EXPECT_EQ(herald::parse_config({"--http-max-connections", "x"}, {}).status().code(),
            herald::StatusCode::invalid_argument);
}

}  // namespace
