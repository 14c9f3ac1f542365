// Router (no sockets) and Server (on 127.0.0.1, port 0, driven by httplib::Client).
#include <gtest/gtest.h>
#include <httplib.h>

#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>
#include <stdexcept>

#include "herald/http.h"
#include "herald/id.h"
#include "system/escaping_log_sink.h"

namespace {

using herald::StatusCode;
using herald::http::Method;
using herald::http::Request;
using herald::http::Response;
using herald::http::Router;
using nlohmann::json;

Request make(Method m, std::string path) {
  Request r;
  r.method = m;
  r.path = std::move(path);
  return r;
}

json body_of(const Response& r) { return json::parse(r.body); }

TEST(RouterTest, PathParametersAreExtracted) {
  Router router;
  ASSERT_TRUE(router.get("/api/users/{id}/orders/{order}", [](const Request& req) {
    return Response::ok({{"id", req.param("id")}, {"order", req.param("order")}});
  }));
  auto req = make(Method::get, "/api/users/u-1/orders/o-9");
  auto resp = router.dispatch(req);
  EXPECT_EQ(resp.status, 200);
  EXPECT_EQ(body_of(resp), (json{{"id", "u-1"}, {"order", "o-9"}}));
}

TEST(RouterTest, LiteralSegmentWinsOverParameter) {
  Router router;
  ASSERT_TRUE(router.get("/items/{id}", [](const Request&) { return Response::ok({{"route", "param"}}); }));
  ASSERT_TRUE(router.get("/items/special", [](const Request&) { return Response::ok({{"route", "literal"}}); }));
  auto special = make(Method::get, "/items/special");
  EXPECT_EQ(body_of(router.dispatch(special))["route"], "literal");
  auto other = make(Method::get, "/items/42");
  EXPECT_EQ(body_of(router.dispatch(other))["route"], "param");
}

TEST(RouterTest, UnknownPathIs404AndWrongMethodIs405WithAllow) {
  Router router;
  ASSERT_TRUE(router.get("/things", [](const Request&) { return Response::ok(json::array()); }));
  ASSERT_TRUE(router.post("/things", [](const Request&) { return Response::created({}); }));
  auto missing = make(Method::get, "/nothing");
  auto r404 = router.dispatch(missing);
  EXPECT_EQ(r404.status, 404);
  EXPECT_EQ(body_of(r404)["error"], "route_not_found");
  auto wrong = make(Method::del, "/things");
  auto r405 = router.dispatch(wrong);
  EXPECT_EQ(r405.status, 405);
  EXPECT_EQ(body_of(r405)["error"], "method_not_allowed");
  EXPECT_EQ(r405.headers["Allow"], "GET, POST");
}

TEST(RouterTest, PathsAreNormalisedOnce) {
  using herald::http::normalize_path;
  const std::pair<const char*, const char*> cases[] = {
      {"/", "/"},
      {"/a/b", "/a/b"},
      {"//a///b//", "/a/b"},
      {"/a/./b/.", "/a/b"},
      {"/a/../b", "/b"},
      {"/../../a", "/a"},
      {"/%2fadmin/x", "/admin/x"},
      {"/%2Fadmin%2Fx", "/admin/x"},
      {"/%2e%2e/admin", "/admin"},
      {"/a%252fb", "/a%2fb"},  // decoded once only
      {"/caf%C3%A9", "/caf\xC3\xA9"},
      {"/a;p=1", "/a;p=1"},
  };
  for (const auto& [raw, want] : cases) {
    auto got = normalize_path(raw);
    ASSERT_TRUE(got) << raw << ": " << got.status().to_string();
    EXPECT_EQ(*got, want) << raw;
  }
  for (const char* bad : {"", "a/b", "/a%", "/a%2", "/a%zz", "/a%00b", "/a%0d%0a", "/a\x1b", "/a%7f"}) {
    auto got = normalize_path(bad);
    EXPECT_EQ(got.status().code(), StatusCode::invalid_argument) << bad;
  }
}

TEST(RouterTest, AdminRoutesNeedAdminAndCannotBeRegisteredPublic) {
  Router router;
  auto h = [](const Request&) { return Response::ok({}); };
  EXPECT_EQ(router.get("/admin/x", h).code(), StatusCode::invalid_argument);
  EXPECT_EQ(router.get("/Admin/x", h).code(), StatusCode::invalid_argument);
  ASSERT_TRUE(router.get("/admin/x", h, herald::http::Access::admin));
  for (const char* path : {"/admin/x", "//admin/x", "/admin/missing", "/ADMIN/x"}) {
    auto anonymous = make(Method::get, path);
    EXPECT_EQ(router.dispatch(anonymous).status, 401) << path;
  }
  auto admin = make(Method::get, "//admin/./x/");
  admin.is_admin = true;
  EXPECT_EQ(router.dispatch(admin).status, 200);
  auto bad = make(Method::get, "/admin/%00");
  EXPECT_EQ(router.dispatch(bad).status, 400);
}

TEST(RouterTest, UserRoutesAreDecidedByTheAuthenticatorOnTheMatchedRoute) {
  Router router;
  ASSERT_TRUE(router.get("/mine/{id}", [](const Request& req) {
    return Response::ok({{"principal", req.principal}, {"id", req.param("id")}});
  }, herald::http::Access::user));
  ASSERT_TRUE(router.get("/open", [](const Request& req) { return Response::ok({{"principal", req.principal}}); }));
  // No authenticator installed: user routes are closed, not open.
  auto early = make(Method::get, "/mine/1");
  EXPECT_EQ(router.dispatch(early).status, 401);
  int calls = 0;
  ASSERT_TRUE(router.set_authenticator([&calls](const Request& req) -> herald::Result<std::optional<std::string>> {
    ++calls;
    auto auth = req.header("authorization");
    if (!auth) return std::optional<std::string>{};
    if (*auth == "Bearer down") return herald::Status::unavailable("session store down");
    if (*auth == "Bearer ann") return std::optional<std::string>("user-ann");
    return std::optional<std::string>{};
  }));
  EXPECT_EQ(router.set_authenticator([](const Request&) { return herald::Result<std::optional<std::string>>(
                                         std::optional<std::string>{}); }).code(),
            StatusCode::already_exists);
  auto none = make(Method::get, "/mine/1");
  auto r401 = router.dispatch(none);
  EXPECT_EQ(r401.status, 401);
  EXPECT_EQ(r401.headers["WWW-Authenticate"], "Bearer");
  auto down = make(Method::get, "/mine/1");
  down.headers["authorization"] = "Bearer down";
  EXPECT_EQ(router.dispatch(down).status, 503);
  // The admin flag is no principal.
  auto admin = make(Method::get, "/mine/1");
  admin.is_admin = true;
  EXPECT_EQ(router.dispatch(admin).status, 401);
  auto ann = make(Method::get, "//x/../mine/./7");
  ann.headers["authorization"] = "Bearer ann";
  ann.principal = "forged-by-the-caller";
  auto ok = router.dispatch(ann);
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(body_of(ok), (json{{"principal", "user-ann"}, {"id", "7"}}));
  // A public route never asks, and never shows a principal the caller set.
  const int before = calls;
  auto open = make(Method::get, "/open");
  open.headers["authorization"] = "Bearer ann";
  open.principal = "forged";
  EXPECT_EQ(body_of(router.dispatch(open))["principal"], "");
  EXPECT_EQ(calls, before);
  auto routes = router.routes();
  ASSERT_EQ(routes.size(), 2u);
  EXPECT_EQ(routes[0].access, herald::http::Access::user);
}

TEST(RouterTest, ExceptionBecomes500) {
  Router router;
  ASSERT_TRUE(router.get("/boom", [](const Request&) -> Response { throw std::runtime_error("kaput"); }));
  auto req = make(Method::get, "/boom");
  auto resp = router.dispatch(req);
  EXPECT_EQ(resp.status, 500);
  EXPECT_EQ(body_of(resp)["error"], "internal");
  EXPECT_NE(body_of(resp)["message"].get<std::string>().find("kaput"), std::string::npos);
}

TEST(RouterTest, BadPatternsAndDuplicatesAreRejected) {
  Router router;
  auto h = [](const Request&) { return Response::ok({}); };
  EXPECT_EQ(router.get("no-slash", h).code(), StatusCode::invalid_argument);
  EXPECT_EQ(router.get("/a/{}", h).code(), StatusCode::invalid_argument);
  EXPECT_EQ(router.get("/a/{x", h).code(), StatusCode::invalid_argument);
  EXPECT_EQ(router.get("/a", nullptr).code(), StatusCode::invalid_argument);
  ASSERT_TRUE(router.get("/a/{x}", h));
  EXPECT_EQ(router.get("/a/{y}", h).code(), StatusCode::already_exists);
  EXPECT_TRUE(router.post("/a/{x}", h));
}

TEST(ResponseTest, StatusMapping) {
  using herald::Status;
  EXPECT_EQ(Response::from_status(Status::invalid_argument("x")).status, 400);
  EXPECT_EQ(Response::from_status(Status::not_found("x")).status, 404);
  EXPECT_EQ(Response::from_status(Status::already_exists("x")).status, 409);
  EXPECT_EQ(Response::from_status(Status::unavailable("x")).status, 503);
  EXPECT_EQ(Response::from_status(Status::timeout("x")).status, 504);
  EXPECT_EQ(Response::from_status(Status::internal("x")).status, 500);
  auto conflict = Response::from_status(Status::wrong_expected_version(4, "stream is at 4"));
  EXPECT_EQ(conflict.status, 409);
  EXPECT_EQ(body_of(conflict), (json{{"error", "wrong_expected_version"}, {"message", "stream is at 4"},
                                     {"actual_version", 4}}));
}

TEST(RequestTest, QueryListsAndJsonHelpers) {
  Request req;
  req.query = {{"type", "A,B"}, {"type", "C"}, {"limit", "12"}, {"bad", "1x"}};
  EXPECT_EQ(req.query_list("type"), (std::vector<std::string>{"A", "B", "C"}));
  EXPECT_EQ(*herald::http::query_int(req, "limit", 100, 1, 1000), 12);
  EXPECT_EQ(*herald::http::query_int(req, "absent", 100, 1, 1000), 100);
  EXPECT_EQ(herald::http::query_int(req, "bad", 0).status().code(), StatusCode::invalid_argument);
  EXPECT_EQ(herald::http::query_int(req, "limit", 0, 1, 10).status().code(), StatusCode::invalid_argument);

  json obj = {{"name", "x"}, {"qty", 2}, {"price", 1.5}, {"neg", -3}};
  EXPECT_EQ(*herald::http::get_string(obj, "name"), "x");
  EXPECT_EQ(herald::http::get_string(obj, "qty").status().code(), StatusCode::invalid_argument);
  EXPECT_EQ(herald::http::get_string(obj, "missing").status().code(), StatusCode::invalid_argument);
  EXPECT_EQ(*herald::http::get_int(obj, "qty", 1), 2);
  EXPECT_EQ(herald::http::get_int(obj, "price").status().code(), StatusCode::invalid_argument);
  EXPECT_EQ(herald::http::get_int(obj, "neg", 0).status().code(), StatusCode::invalid_argument);
  EXPECT_EQ(*herald::http::get_optional_int(obj, "absent", 7), 7);

  req.body = "{not json";
  EXPECT_EQ(req.json().status().code(), StatusCode::invalid_argument);
  for (std::size_t depth : {std::size_t{1'000}, std::size_t{100'000}, std::size_t{1'000'000}}) {
    req.body = "{\"a\":" + std::string(depth, '[') + std::string(depth, ']') + "}";
    EXPECT_EQ(req.json().status().code(), StatusCode::invalid_argument) << depth;
  }
  req.body = "[1,2]";
  EXPECT_TRUE(req.json());
  EXPECT_EQ(req.json_object().status().code(), StatusCode::invalid_argument);
}

class ServerTest : public ::testing::Test {
 protected:
  void start(herald::http::ServerOptions options = {}) {
    auto router = std::make_shared<Router>();
    ASSERT_TRUE(router->get("/hello/{name}", [](const Request& req) {
      return Response::ok({{"hello", req.param("name")}, {"request_id", req.request_id}});
    }));
    ASSERT_TRUE(router->post("/echo", [](const Request& req) {
      auto body = req.json_object();
      if (!body) return Response::from_status(body.status());
      return Response::ok(*body);
    }));
    ASSERT_TRUE(router->get("/boom", [](const Request&) -> Response { throw std::logic_error("bug"); }));
    ASSERT_TRUE(router->get("/admin/secret", [](const Request&) { return Response::ok({{"secret", 42}}); },
                            herald::http::Access::admin));
    options.host = "127.0.0.1";
    options.port = 0;
    server_ = std::make_unique<herald::http::Server>(router, options);
    ASSERT_TRUE(server_->start());
    ASSERT_GT(server_->port(), 0);
    client_ = std::make_unique<httplib::Client>("127.0.0.1", server_->port());
  }

  static json parse(const httplib::Result& r) { return json::parse(r->body); }

  std::unique_ptr<herald::http::Server> server_;
  std::unique_ptr<httplib::Client> client_;
};

TEST_F(ServerTest, RoutesAndEchoesRequestId) {
  start();
  auto r = client_->Get("/hello/ann", {{"X-Request-Id", "req-123"}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(parse(r)["hello"], "ann");
  EXPECT_EQ(parse(r)["request_id"], "req-123");
  EXPECT_EQ(r->get_header_value("X-Request-Id"), "req-123");
  EXPECT_EQ(r->get_header_value("Content-Type"), "application/json");
}

TEST_F(ServerTest, ErrorBodies) {
  start();
  auto missing = client_->Get("/nope");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  EXPECT_EQ(parse(missing)["error"], "route_not_found");

  auto wrong_method = client_->Delete("/echo");
  ASSERT_TRUE(wrong_method);
  EXPECT_EQ(wrong_method->status, 405);
  EXPECT_EQ(parse(wrong_method)["error"], "method_not_allowed");
  EXPECT_EQ(wrong_method->get_header_value("Allow"), "POST");

  auto malformed = client_->Post("/echo", "{\"a\":", "application/json");
  ASSERT_TRUE(malformed);
  EXPECT_EQ(malformed->status, 400);
  EXPECT_EQ(parse(malformed)["error"], "invalid_argument");

  auto boom = client_->Get("/boom");
  ASSERT_TRUE(boom);
  EXPECT_EQ(boom->status, 500);
  EXPECT_EQ(parse(boom)["error"], "internal");

  auto ok = client_->Post("/echo", R"({"a":1})", "application/json");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
  EXPECT_EQ(parse(ok), (json{{"a", 1}}));
}

TEST_F(ServerTest, BodyOverTheLimitIs413) {
  herald::http::ServerOptions o;
  o.body_limit_bytes = 1024;
  start(o);
  std::string big = "{\"pad\":\"" + std::string(4096, 'x') + "\"}";
  auto r = client_->Post("/echo", big, "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  EXPECT_EQ(parse(r)["error"], "payload_too_large");
  auto small = client_->Post("/echo", R"({"a":1})", "application/json");
  ASSERT_TRUE(small);
  EXPECT_EQ(small->status, 200);
}

TEST_F(ServerTest, AdminRoutesNeedTheBearerToken) {
  herald::http::ServerOptions o;
  o.admin_token = "s3cret";
  start(o);
  auto none = client_->Get("/admin/secret");
  ASSERT_TRUE(none);
  EXPECT_EQ(none->status, 401);
  EXPECT_EQ(parse(none)["error"], "unauthorized");
  auto wrong = client_->Get("/admin/secret", {{"Authorization", "Bearer nope"}});
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->status, 401);
  auto unknown_admin = client_->Get("/admin/unknown");  // auth first: do not reveal which routes exist
  ASSERT_TRUE(unknown_admin);
  EXPECT_EQ(unknown_admin->status, 401);
  auto right = client_->Get("/admin/secret", {{"Authorization", "Bearer s3cret"}});
  ASSERT_TRUE(right);
  EXPECT_EQ(right->status, 200);
  EXPECT_EQ(parse(right)["secret"], 42);
  auto public_route = client_->Get("/hello/x");
  ASSERT_TRUE(public_route);
  EXPECT_EQ(public_route->status, 200);
}

TEST_F(ServerTest, AdminIsDecidedByTheMatchedRouteNotTheRawPath) {
  herald::http::ServerOptions o;
  o.admin_token = "s3cret";
  start(o);
  for (const char* path : {"//admin/secret", "/%2fadmin/secret", "/admin/./secret", "/x/../admin/secret",
                           "/admin/secret/", "/admin/secret;p=1", "/ADMIN/secret", "///admin//secret"}) {
    SCOPED_TRACE(path);
    auto none = client_->Get(path);
    ASSERT_TRUE(none);
    EXPECT_EQ(none->status, 401);
    auto with = client_->Get(path, {{"Authorization", "Bearer s3cret"}});
    ASSERT_TRUE(with);
    EXPECT_NE(with->status, 401);
    EXPECT_LT(with->status, 500);
  }
}

TEST_F(ServerTest, RequestsABrowserCouldForgeAreRefused) {
  start();
  auto form = client_->Post("/echo", "a=1", "application/x-www-form-urlencoded");
  ASSERT_TRUE(form);
  EXPECT_EQ(form->status, 415);
  EXPECT_EQ(parse(form)["error"], "unsupported_media_type");
  auto rebound = client_->Get("/hello/x", {{"Host", "evil.test:8080"}});
  ASSERT_TRUE(rebound);
  EXPECT_EQ(rebound->status, 400);
  EXPECT_EQ(parse(rebound)["error"], "host_not_allowed");
  auto local = client_->Get("/hello/x", {{"Host", "localhost"}});
  ASSERT_TRUE(local);
  EXPECT_EQ(local->status, 200);
  auto cross = client_->Post("/echo", {{"Origin", "https://evil.test"}}, R"({"a":1})", "application/json");
  ASSERT_TRUE(cross);
  EXPECT_EQ(cross->status, 403);
  EXPECT_EQ(parse(cross)["error"], "origin_not_allowed");
  auto same = client_->Post("/echo", {{"Origin", "http://127.0.0.1:" + std::to_string(server_->port())}},
                            R"({"a":1})", "application/json");
  ASSERT_TRUE(same);
  EXPECT_EQ(same->status, 200);
  auto deep = client_->Post("/echo", std::string(100'000, '['), "application/json");
  ASSERT_TRUE(deep);
  EXPECT_EQ(deep->status, 400);
  auto evil_id = client_->Get("/hello/x", {{"X-Request-Id", "a b\x1b[31m"}});
  ASSERT_TRUE(evil_id);
  EXPECT_TRUE(herald::is_uuid(evil_id->get_header_value("X-Request-Id"))) << "replaced by a fresh id";
}

// Every log line passes the escaping sinks, whichever code logged it: neither the access log nor a
// handler's message can carry a raw control character to the log or the terminal.
TEST_F(ServerTest, LogLinesCarryNoControlCharacters) {
  auto ring = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(64);
  ring->set_pattern("%v");
  spdlog::set_default_logger(std::make_shared<spdlog::logger>("", ring));
  herald::detail::install_escaping_log_sinks();
  start();
  auto r = client_->Get("/hello/%1b%5b2J");
  ASSERT_TRUE(r);
  spdlog::info("user said {}", "\x1b]0;owned\x07 and\nFORGED");
  bool saw_access_line = false;
  for (const auto& line : ring->last_formatted()) {
    EXPECT_EQ(line.find('\x1b'), std::string::npos) << line;
    EXPECT_EQ(line.find("\nFORGED"), std::string::npos) << line;
    if (line.find("/hello/") != std::string::npos) saw_access_line = true;
  }
  EXPECT_TRUE(saw_access_line);
  auto last = ring->last_formatted(1);
  ASSERT_EQ(last.size(), 1u);
  EXPECT_NE(last[0].find("\\x1b]0;owned\\x07 and\\x0aFORGED"), std::string::npos) << last[0];
}

TEST_F(ServerTest, ANonLoopbackBindNeedsAnAdminToken) {
  herald::http::ServerOptions o;
  o.host = "0.0.0.0";
  o.port = 0;
  herald::http::Server exposed(std::make_shared<Router>(), o);
  auto s = exposed.start();
  EXPECT_EQ(s.code(), StatusCode::invalid_argument);
  EXPECT_NE(s.message().find("--admin-token"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("--insecure-admin"), std::string::npos) << s.message();
  o.insecure_admin = true;
  herald::http::Server accepted(std::make_shared<Router>(), o);
  EXPECT_TRUE(accepted.start());
}

TEST_F(ServerTest, WithoutTokenAdminRoutesAreOpen) {
  start();
  auto r = client_->Get("/admin/secret");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST_F(ServerTest, PortInUseIsUnavailableAndStopIsIdempotent) {
  start();
  herald::http::ServerOptions o;
  o.port = server_->port();
  herald::http::Server second(std::make_shared<Router>(), o);
  auto s = second.start();
  EXPECT_EQ(s.code(), StatusCode::unavailable) << s.to_string();
  server_->stop();
  server_->stop();
  EXPECT_EQ(server_->start().code(), StatusCode::failed_precondition);
}

}  // namespace
