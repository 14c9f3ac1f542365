// What an operator relies on: /livez and /readyz, HTTP request metrics by route, process and build
// metrics (checked by promtool when installed), JSON log lines, --version and --log-format.
#include <fcntl.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <stdlib.h>  // mkdtemp
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <sstream>

#include "core/log_context.h"
#include "herald/id.h"
#include "herald/version.h"
#include "system/escaping_log_sink.h"
#include "system/http_metrics.h"
#include "system/log_format.h"
#include "system/prometheus_text.h"
#include "system_fixture.h"

namespace herald::testing {
namespace {

using nlohmann::json;

class ProbesTest : public SystemFixture {};

TEST_F(ProbesTest, LivezAndReadyzArePublicAndUpOnceStarted) {
  start_system(true, "tok");  // with an admin token: the probes must not need it
  auto live = client_->Get("/livez");
  ASSERT_TRUE(live);
  EXPECT_EQ(live->status, 200);
  EXPECT_EQ(parse(live)["status"], "alive");
  auto ready = client_->Get("/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200) << ready->body;
  auto body = parse(ready);
  EXPECT_EQ(body["status"], "up");
  for (const char* check : {"store", "bus", "shutdown"}) EXPECT_EQ(body["checks"][check]["status"], "up") << check;
  // Module checks are /health's: a module down leaves the instance ready.
  *healthy_ = false;
  EXPECT_EQ(client_->Get("/readyz")->status, 200);
  EXPECT_EQ(client_->Get("/health")->status, 503);
}

TEST_F(ProbesTest, ReadyzIsDownForAClosedStoreAndAfterShutdownBegins) {
  start_system(false);
  EXPECT_TRUE(system_->readiness().up);
  system_->store().close();
  auto closed = system_->readiness();
  EXPECT_FALSE(closed.up);
  EXPECT_EQ(closed.to_json()["checks"]["store"]["status"], "down");

  (void)system_->shutdown(std::chrono::steady_clock::now() + std::chrono::seconds(2));
  auto stopped = system_->readiness().to_json();
  EXPECT_EQ(stopped["status"], "down");
  EXPECT_EQ(stopped["checks"]["shutdown"]["status"], "down");
  EXPECT_EQ(stopped["checks"]["bus"]["status"], "down");
}

// The value of the sample `name{labels}` in `text`, or -1 when absent.
double sample(const std::string& text, const std::string& series) {
  const std::string key = series + " ";
  for (std::size_t at = text.find(key); at != std::string::npos; at = text.find(key, at + 1)) {
    if (at == 0 || text[at - 1] == '\n') return std::stod(text.substr(at + key.size()));
  }
  return -1;
}

class RequestMetricsTest : public SystemFixture {};

TEST_F(RequestMetricsTest, CountedByRoutePatternAndStatusClassWithAHistogram) {
  start_system(true, "tok");
  for (int i = 0; i < 3; ++i) ASSERT_EQ(client_->Get("/api/ping")->status, 200);
  ASSERT_EQ(client_->Get("/admin/streams/order-1")->status, 401);  // no token
  ASSERT_EQ(client_->Get("/admin/streams/order-2", {{"Authorization", "Bearer tok"}})->status, 404);
  ASSERT_EQ(client_->Get("/no/such/route")->status, 404);

  auto r = client_->Get("/metrics");
  ASSERT_TRUE(r);
  const std::string& text = r->body;
  const std::string ping = "method=\"GET\",route=\"/api/ping\",status=\"2xx\"";
  EXPECT_EQ(sample(text, "herald_http_requests_total{" + ping + "}"), 3) << text;
  EXPECT_EQ(sample(text, "herald_http_request_duration_seconds_count{" + ping + "}"), 3);
  EXPECT_EQ(sample(text, "herald_http_request_duration_seconds_bucket{" + ping + ",le=\"+Inf\"}"), 3);
  EXPECT_GE(sample(text, "herald_http_request_duration_seconds_sum{" + ping + "}"), 0);
  // One series per pattern, not per stream id; 401 and 404 on the same route are separate classes.
  const std::string streams = "method=\"GET\",route=\"/admin/streams/{stream}\",status=\"4xx\"";
  EXPECT_EQ(sample(text, "herald_http_requests_total{" + streams + "}"), 2) << text;
  EXPECT_EQ(text.find("order-1"), std::string::npos);
  EXPECT_EQ(sample(text, "herald_http_requests_total{method=\"GET\",route=\"unmatched\",status=\"4xx\"}"), 1) << text;

  // The histogram's buckets are cumulative and end at the count.
  double previous = 0;
  for (double le : detail::HttpMetrics::kBuckets) {
    double v = sample(text, "herald_http_request_duration_seconds_bucket{" + ping + ",le=\"" + detail::format_number(le) + "\"}");
    ASSERT_GE(v, previous) << le;
    previous = v;
  }
  EXPECT_LE(previous, 3);

  std::string out;
  int rc = promtool_check(text, out);
  if (rc == -2) GTEST_SKIP() << "promtool not installed";
  EXPECT_EQ(rc, 0) << out << "\n" << text;
}

TEST_F(RequestMetricsTest, BuildInfoAndProcessMetricsAreExposed) {
  start_system(false);
  const std::string text = system_->metrics();
  const auto b = build_info();
  EXPECT_EQ(sample(text, "herald_build_info{version=\"" HERALD_VERSION_STRING "\",compiler=\"" + std::string(b.compiler) +
                             "\",build_type=\"" + std::string(b.build_type) + "\"}"),
            1)
      << text;
  EXPECT_GT(sample(text, "process_resident_memory_bytes"), 0) << text;
  EXPECT_GT(sample(text, "process_open_fds"), 0);
  EXPECT_GE(sample(text, "process_cpu_seconds_total"), 0);
  const double start = sample(text, "process_start_time_seconds");
  const double now = static_cast<double>(std::time(nullptr));
  EXPECT_LE(start, now + 1);
  EXPECT_GT(start, now - 24 * 3600.0);  // this test process started today
  std::string out;
  int rc = promtool_check(text, out);
  if (rc == -2) GTEST_SKIP() << "promtool not installed";
  EXPECT_EQ(rc, 0) << out << "\n" << text;
}

TEST(ProcessStatsTest, FollowTheProcess) {
  auto before = detail::read_process_stats();
  ASSERT_TRUE(before) << before.status().to_string();
  int fds[3];
  for (int& fd : fds) fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  auto opened = detail::read_process_stats();
  for (int fd : fds) ::close(fd);
  ASSERT_TRUE(opened);
  EXPECT_GE(opened->open_fds, before->open_fds + 3);

  // Burn CPU until getrusage sees 50 ms more, then /proc must too (it has 10 ms ticks).
  auto cpu = [] {
    rusage u{};
    ::getrusage(RUSAGE_SELF, &u);
    return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
  };
  const double target = cpu() + 0.05;
  volatile std::uint64_t sink = 0;
  while (cpu() < target) {
    for (int i = 0; i < 100000; ++i) sink = sink + static_cast<std::uint64_t>(i);
  }
  auto burnt = detail::read_process_stats();
  ASSERT_TRUE(burnt);
  EXPECT_GE(burnt->cpu_seconds, before->cpu_seconds + 0.03);
  EXPECT_EQ(burnt->start_time_seconds, before->start_time_seconds);
}

TEST(BackupRouteTest, AdminBacksUpTheSqliteStoreIntoANewFile) {
  std::string tmpl = (std::filesystem::temp_directory_path() / "herald-backup-route-XXXXXX").string();
  ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
  const std::filesystem::path dir = tmpl;
  SystemConfig c;
  c.data_dir = (dir / "data").string();
  c.http.port = 0;
  c.http.admin_token = "tok";
  c.log_level = "warn";
  EventSystem sys(c);
  ASSERT_TRUE(sys.initialize());
  ASSERT_TRUE(sys.bus().publish("a-1", ExpectedVersion::no_stream(), {EventData{"", "A", "{}", {}}, EventData{"", "A", "{}", {}}}));
  httplib::Client client("127.0.0.1", sys.http_port());
  const httplib::Headers admin{{"Authorization", "Bearer tok"}};
  const std::string target = (dir / "copies" / "events.db").string();
  const std::string body = json{{"path", target}}.dump();

  EXPECT_EQ(client.Post("/admin/backup", body, "application/json")->status, 401);
  EXPECT_FALSE(std::filesystem::exists(target));
  EXPECT_EQ(client.Post("/admin/backup", admin, R"({"path":"relative.db"})", "application/json")->status, 400);
  EXPECT_EQ(client.Post("/admin/backup", admin, R"({})", "application/json")->status, 400);

  auto r = client.Post("/admin/backup", admin, body, "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 201) << r->body;
  auto answer = json::parse(r->body);
  EXPECT_EQ(answer["path"], target);
  EXPECT_EQ(answer["head_position"], 1);
  EXPECT_EQ(answer["bytes"].get<std::int64_t>(), static_cast<std::int64_t>(std::filesystem::file_size(target)));
  // Once there, a backup is never overwritten.
  EXPECT_EQ(client.Post("/admin/backup", admin, body, "application/json")->status, 409);
  (void)sys.shutdown(std::chrono::steady_clock::now() + std::chrono::seconds(2));

  // The copy is a store: restoring is opening it.
  auto copy = open_store("sqlite://" + target);
  ASSERT_TRUE(copy) << copy.status().to_string();
  EXPECT_EQ((*copy)->head_position(), 1);
  (*copy)->close();
  std::filesystem::remove_all(dir);
}

TEST_F(ProbesTest, BackupOfAStoreThatIsNotSqliteIsAPreconditionFailure) {
  start_system(true);
  auto r = client_->Post("/admin/backup", R"({"path":"/tmp/herald-never-written.db"})", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 409) << r->body;
  EXPECT_EQ(parse(r)["error"], "failed_precondition");
  EXPECT_FALSE(std::filesystem::exists("/tmp/herald-never-written.db"));
}

TEST(VersionTest, OnePlaceForTheVersion) {
  EXPECT_EQ(version(), HERALD_VERSION_STRING);
  EXPECT_EQ(HERALD_VERSION_NUMBER, HERALD_VERSION_MAJOR * 10000 + HERALD_VERSION_MINOR * 100 + HERALD_VERSION_PATCH);
  EXPECT_FALSE(build_info().compiler.empty());
  auto v = parse_config({"--version", "--port", "1"}, {}, "herald_shop");
  ASSERT_TRUE(v);
  ASSERT_TRUE(v->version);
  EXPECT_EQ(v->version->rfind("herald_shop " HERALD_VERSION_STRING " (", 0), 0u) << *v->version;
  EXPECT_FALSE(v->help);
}

TEST(LogFormatConfigTest, FlagEnvAndFileValues) {
  auto d = parse_config({}, {});
  ASSERT_TRUE(d);
  EXPECT_EQ(d->config.log_format, "text");
  auto flag = parse_config({"--log-format", "json"}, {});
  ASSERT_TRUE(flag);
  EXPECT_EQ(flag->config.log_format, "json");
  auto env = parse_config({}, {{"HERALD_LOG_FORMAT", "json"}});
  ASSERT_TRUE(env);
  EXPECT_EQ(env->config.log_format, "json");
  auto bad = parse_config({"--log-format", "yaml"}, {});
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.status().code(), StatusCode::invalid_argument);
  EXPECT_NE(bad.status().message().find("--log-format"), std::string::npos) << bad.status().message();

  const auto file = std::filesystem::temp_directory_path() / ("herald-log-format-" + std::to_string(::getpid()) + ".toml");
  std::ofstream(file) << "log_format = \"json\"\n";
  auto from_file = parse_config({"--config", file.string()}, {});
  ASSERT_TRUE(from_file) << from_file.status().to_string();
  EXPECT_EQ(from_file->config.log_format, "json");
  auto flag_wins = parse_config({"--config", file.string(), "--log-format", "text"}, {});
  ASSERT_TRUE(flag_wins);
  EXPECT_EQ(flag_wins->config.log_format, "text");
  std::filesystem::remove(file);
}

// Lines logged through a logger with the JSON formatter, parsed.
std::vector<json> json_lines(const std::string& text) {
  std::vector<json> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    auto j = json::parse(line, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << "not one JSON object: " << line;
    if (!j.is_discarded()) out.push_back(std::move(j));
  }
  return out;
}

TEST(JsonLogTest, OneObjectPerLineWithContextAndEscaping) {
  std::ostringstream os;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(os);
  sink->set_formatter(detail::make_json_log_formatter());
  spdlog::logger logger("shop", sink);
  logger.set_level(spdlog::level::trace);

  logger.info("plain");
  RecordedEvent e;
  e.id = "0190-event";
  e.stream_id = "order-\"7\"";
  const std::string handler = "orders.saga";
  {
    const detail::ScopedLogContext request("req-1");
    logger.warn("in a request");
    {
      const detail::ScopedLogContext call(&handler, &e);
      logger.error("line\nbreak \x1b[31m \xff\xfe tab\t quote\" back\\slash \xc2\x85 ok: caf\xc3\xa9");
    }
    logger.debug("request again");
  }
  logger.info("after");

  auto lines = json_lines(os.str());
  ASSERT_EQ(lines.size(), 5u) << os.str();
  for (const auto& l : lines) {
    ASSERT_TRUE(l["time"].is_string());
    Timestamp t{};
    EXPECT_TRUE(parse_rfc3339(l["time"].get<std::string>(), t)) << l["time"];
    EXPECT_EQ(l["time"].get<std::string>().back(), 'Z');  // UTC
    EXPECT_EQ(l["logger"], "shop");
  }
  EXPECT_EQ(lines[0]["level"], "info");
  EXPECT_EQ(lines[0]["message"], "plain");
  EXPECT_FALSE(lines[0].contains("request_id"));
  EXPECT_EQ(lines[1]["request_id"], "req-1");
  EXPECT_FALSE(lines[1].contains("handler"));
  EXPECT_EQ(lines[2]["level"], "error");
  EXPECT_EQ(lines[2]["request_id"], "req-1");
  EXPECT_EQ(lines[2]["handler"], "orders.saga");
  EXPECT_EQ(lines[2]["event_id"], "0190-event");
  EXPECT_EQ(lines[2]["stream"], "order-\"7\"");
  // The text comes back as logged, except bytes that are not UTF-8 (U+FFFD each).
  EXPECT_EQ(lines[2]["message"], "line\nbreak \x1b[31m \xef\xbf\xbd\xef\xbf\xbd tab\t quote\" back\\slash \xc2\x85 ok: caf\xc3\xa9");
  EXPECT_EQ(lines[3]["level"], "debug");
  EXPECT_EQ(lines[3]["request_id"], "req-1");
  EXPECT_FALSE(lines[3].contains("event_id"));
  EXPECT_FALSE(lines[4].contains("request_id"));
  // Nothing that drives a terminal or splits a line reaches the output raw.
  const std::string raw = os.str();
  EXPECT_EQ(raw.find('\x1b'), std::string::npos);
  EXPECT_EQ(raw.find("\xc2\x85"), std::string::npos);
  EXPECT_EQ(std::count(raw.begin(), raw.end(), '\n'), 5);
}

// Logs once per event from inside the handler.
class LoggingHandler final : public EventHandler {
 public:
  std::string name() const override { return "test.logger"; }
  std::vector<std::string> event_types() const override { return {"Logged"}; }
  Status handle(const RecordedEvent&, HandlerContext&) override {
    spdlog::info("handling it");
    handled.fetch_add(1);
    return Status::ok();
  }
  std::atomic_int handled{0};
};

class LoggingModule final : public Module {
 public:
  explicit LoggingModule(std::shared_ptr<LoggingHandler> h) : handler_(std::move(h)) {}
  std::string name() const override { return "logging"; }
  Status register_handlers(HandlerRegistrar& r, ModuleContext&) override { return r.add(handler_); }
  Status register_routes(http::Router& router, ModuleContext&) override {
    return router.get("/api/log", [](const http::Request&) {
      spdlog::info("in the route\nsecond line \x1b[2J");
      return http::Response::ok({});
    });
  }

 private:
  std::shared_ptr<LoggingHandler> handler_;
};

TEST(JsonLogTest, TheSystemsLinesCarryRequestAndHandlerContext) {
  std::ostringstream os;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(os);
  // The first install replaces the default logger; take its sinks only after that.
  detail::install_escaping_log_sinks();
  auto& sinks = spdlog::default_logger()->sinks();
  sinks.push_back(sink);  // before initialize(): it gets the JSON formatter with the others
  auto handler = std::make_shared<LoggingHandler>();
  const std::string event_id = new_uuid_v7();
  {
    SystemConfig c;
    c.store_url = "memory:";
    c.http.port = 0;
    c.log_format = "json";
    c.log_level = "info";
    EventSystem sys(c);
    ASSERT_TRUE(sys.add_module(std::make_unique<LoggingModule>(handler)));
    ASSERT_TRUE(sys.initialize());
    httplib::Client client("127.0.0.1", sys.http_port());
    ASSERT_EQ(client.Get("/api/log", {{"X-Request-Id", "rid-42"}})->status, 200);
    auto w = sys.bus().publish("log-1", ExpectedVersion::no_stream(), {EventData{event_id, "Logged", "{}", {}}});
    ASSERT_TRUE(w);
    ASSERT_TRUE(eventually([&] { return handler->handled.load() == 1; }));
    (void)sys.shutdown(std::chrono::steady_clock::now() + std::chrono::seconds(2));
  }
  sinks.erase(std::find(sinks.begin(), sinks.end(), sink));
  detail::apply_log_format(detail::LogFormat::text);

  bool route_line = false;
  bool access_line = false;
  bool handler_line = false;
  for (const auto& l : json_lines(os.str())) {
    const auto msg = l["message"].get<std::string>();
    // Escaped once, by JSON: the escaping sinks stand aside in JSON mode.
    if (msg == "in the route\nsecond line \x1b[2J") route_line = l.value("request_id", "") == "rid-42";
    if (msg.starts_with("http GET /api/log")) access_line = l.value("request_id", "") == "rid-42";
    if (msg == "handling it") {
      handler_line = l.value("handler", "") == "test.logger" && l.value("stream", "") == "log-1" &&
                     l.value("event_id", "") == event_id;
    }
  }
  EXPECT_TRUE(route_line) << os.str();
  EXPECT_TRUE(access_line) << os.str();
  EXPECT_TRUE(handler_line) << os.str();
}

}  // namespace
}  // namespace herald::testing
