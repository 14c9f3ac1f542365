// herald/http.h — a small JSON-over-HTTP router and server that modules use without seeing the
// HTTP library underneath (Boost.Beast parses, Boost.Asio multiplexes; see docs/http-server.md).
//
//   router.add(herald::http::Method::get, "/api/users/{id}", [&](const herald::http::Request& req) {
//     auto user = users.find(req.param("id"));
//     if (!user) return herald::http::Response::from_status(user.status());  // 404, 400, 409, …
//     return herald::http::Response::ok(to_json(*user));
//   });
//   router.add(herald::http::Method::post, "/api/users", [&](const herald::http::Request& req) {
//     auto body = req.json_object();                 // 400 {"error":"invalid_argument",…} if not
//     if (!body) return herald::http::Response::from_status(body.status());
//     auto email = herald::http::get_string(*body, "email");
//     if (!email) return herald::http::Response::from_status(email.status());
//     …
//     return herald::http::Response::created({{"user_id", id}});
//   });
//
// Every error body has the shape {"error":"<code>","message":"…"} where <code> is a StatusCode name
// (see herald/status.h) or one of the transport codes "route_not_found", "method_not_allowed",
// "payload_too_large", "unauthorized", "bad_request" (400, malformed framing), "request_timeout"
// (408), "length_required" (411), "uri_too_long" (414), "header_too_large" (431),
// "not_implemented" (501, a transfer coding other than chunked), "http_version_not_supported"
// (505). A wrong_expected_version body also has "actual_version". Overload is 503 "unavailable"
// with Retry-After; a handler over ServerOptions::handler_timeout is 503 "timeout".
//
// The server wraps every handler: an exception becomes 500 {"error":"internal",…}; a body over the
// limit is 413; an unknown path 404; a known path with another method 405 (with an Allow header).
// Before routing, every request passes the checks of docs/security.md: the path is decoded and
// normalised once (normalize_path), the Host header is checked against an allow-list, a body must
// be application/json (415), a state-changing request from a foreign Origin is refused (403), and
// conflicting Content-Length headers are refused (400). When an admin token is set, a route
// registered with Access::admin needs "Authorization: Bearer <token>" (401), and a route
// registered with Access::user needs the Authenticator the app installed to name a principal
// (401): the route actually matched decides, never a prefix of the raw path. Each request is logged (method, path, status,
// duration) through spdlog.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "herald/status.h"

namespace herald::http {

enum class Method : std::uint8_t { get, post, put, patch, del };

// Who may call a route. Decided by the route the normalised path matched.
enum class Access : std::uint8_t {
  public_route,  // anyone who can reach the port
  admin,         // needs the admin token when one is configured (ServerOptions::admin_token)
  // Needs a principal: the router's Authenticator (Router::set_authenticator) must name one for
  // the request, which it then finds in Request::principal. The admin token alone is not one.
  user,
};

// "GET", "POST", "PUT", "PATCH", "DELETE".
std::string_view to_string(Method m) noexcept;
// Parses an upper-case method name; nullopt for anything else (HEAD, OPTIONS, …).
std::optional<Method> parse_method(std::string_view name) noexcept;

// The HTTP status a Status maps to: ok 200, invalid_argument 400, not_found 404,
// already_exists 409, wrong_expected_version 409, failed_precondition 409, unavailable 503,
// timeout 504, cancelled 503, permanent 422, corruption 500, internal 500.
int http_status_for(StatusCode code) noexcept;

// An incoming request, already routed. A value type; handlers get it by const reference and may
// call it from their thread only for the duration of the call.
struct Request {
  Method method = Method::get;
  std::string path;                                  // without the query string, percent-decoded
  std::map<std::string, std::string> path_params;    // from {name} segments of the route pattern
  std::multimap<std::string, std::string> query;     // every ?k=v, in order; a key may repeat
  std::map<std::string, std::string> headers;        // names lower-cased; repeated ones joined ", "
  std::string body;
  std::string remote_addr;
  // The X-Request-Id header when it is 1 to 128 characters of [A-Za-z0-9._:-], else a fresh
  // UUIDv7; echoed in the response's X-Request-Id header. Use it as the correlation id of events
  // the request causes.
  std::string request_id;
  // Set by the server: the request carried the admin token, or none is configured. The router
  // refuses Access::admin routes (401) when it is false.
  bool is_admin = false;
  // Set by the router for an Access::user route: who the Authenticator says is calling (e.g. a
  // user id). Empty on every other route.
  std::string principal;

  // The {name} path parameter; empty when the route has no such segment.
  const std::string& param(const std::string& name) const;
  // The first value of query parameter `name`, or nullopt when absent.
  std::optional<std::string> query_param(const std::string& name) const;
  // Every value of `name`; comma-separated values are split ("type=A,B&type=C" gives A, B, C) and
  // empty pieces dropped.
  std::vector<std::string> query_list(const std::string& name) const;
  // Header by case-insensitive name; nullopt when absent.
  std::optional<std::string> header(std::string_view name) const;

  // The body parsed as JSON. invalid_argument ("body is not valid JSON: …", or "body is empty").
  Result<nlohmann::json> json() const;
  // As json(), and additionally invalid_argument when the body is not a JSON object.
  Result<nlohmann::json> json_object() const;
};

// What a handler returns. A value type.
struct Response {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::map<std::string, std::string> headers;  // extra headers (e.g. Location, Allow)

  // `status` with body.dump().
  static Response json(int status, const nlohmann::json& body);
  static Response ok(const nlohmann::json& body) { return json(200, body); }
  static Response created(const nlohmann::json& body) { return json(201, body); }
  static Response accepted(const nlohmann::json& body) { return json(202, body); }
  static Response no_content();  // 204, empty body
  // Any content type, e.g. text/plain for /metrics.
  static Response text(int status, std::string body, std::string content_type);
  // {"error": code, "message": message} with `status`.
  static Response error(int status, std::string_view code, std::string_view message);
  // The error body for a non-ok Status, with http_status_for(code); adds "actual_version" for
  // wrong_expected_version. REQUIRES: !s.is_ok() (an ok Status yields 500 internal, as a bug).
  static Response from_status(const Status& s);
};

// A route handler. May throw: the server turns an escaping exception into 500.
// Called concurrently from the server's worker threads: it must be thread-safe.
using Handler = std::function<Response(const Request&)>;

// The one form of a request path that routing and authorisation both see. `raw_path` is the
// request-target up to '?', as sent. It is percent-decoded exactly once (so "%2F" is a '/' and
// "%252F" the three characters "%2F"), then split on '/'; empty segments and "." are dropped, ".."
// removes the segment before it (never above the root), and the result is "/seg/seg" ("/" when
// nothing is left). A trailing slash is dropped like any empty segment. invalid_argument when
// `raw_path` does not start with '/', holds a malformed %-escape, or decodes to a NUL or another
// control character (C0 or DEL). Pure and non-recursive: safe on any bytes.
Result<std::string> normalize_path(std::string_view raw_path);

// What Router::dispatch reports about each request it answered (for request metrics). Valid only
// during the observer's call.
struct RouteObservation {
  Method method = Method::get;
  // The matched route's pattern ("/api/users/{id}": one label per route, not per id); empty when no
  // route matched (404, 405, a path refused by normalize_path, 401 for an unknown /admin path).
  std::string_view pattern;
  int status = 0;
  std::chrono::nanoseconds duration{0};  // routing and the handler, not reading or writing the socket
};
// Called on the dispatching thread, concurrently from several: must be thread-safe and quick. An
// exception it throws is dropped.
using RouteObserver = std::function<void(const RouteObservation&)>;

// Who calls an Access::user route, from the request (its Authorization header, say): the
// principal, nullopt when the request carries no valid credential (the router answers 401), or an
// error Status when it cannot tell (the store is down: the router answers that Status). Called on
// the dispatching thread, concurrently from several, and only for routes that need it: must be
// thread-safe; an exception it throws is answered 500.
using Authenticator = std::function<Result<std::optional<std::string>>(const Request&)>;

// Routes: (method, pattern) -> handler. Patterns are absolute paths whose segments are literals or
// {name} (one whole segment, matched non-empty, into Request::path_params), e.g.
// "/api/users/{id}/cart". A literal segment wins over a {name} segment at the same place. Paths
// given to dispatch() are normalised first (normalize_path), so "//admin/./events" is matched,
// and authorised, exactly as "/admin/events".
// Thread-safety: add() must finish before the server starts; dispatch() is then safe from any
// number of threads (the table is read-only while serving).
class Router {
 public:
  // invalid_argument for a pattern that does not start with '/', has an empty or malformed {…}
  // segment, a null handler, or a pattern under /admin registered as public (admin routes are
  // protected by construction); already_exists when (method, pattern) is taken.
  Status add(Method method, std::string_view pattern, Handler handler, Access access = Access::public_route);
  Status get(std::string_view pattern, Handler h, Access a = Access::public_route) {
    return add(Method::get, pattern, std::move(h), a);
  }
  Status post(std::string_view pattern, Handler h, Access a = Access::public_route) {
    return add(Method::post, pattern, std::move(h), a);
  }
  Status put(std::string_view pattern, Handler h, Access a = Access::public_route) {
    return add(Method::put, pattern, std::move(h), a);
  }
  Status patch(std::string_view pattern, Handler h, Access a = Access::public_route) {
    return add(Method::patch, pattern, std::move(h), a);
  }
  Status del(std::string_view pattern, Handler h, Access a = Access::public_route) {
    return add(Method::del, pattern, std::move(h), a);
  }

  // Installs the one Authenticator that Access::user routes are decided by. Like add(), only
  // before serving. invalid_argument for a null one; already_exists when one is installed.
  Status set_authenticator(Authenticator authenticator);

  // Normalises request.path (400 invalid_argument when normalize_path refuses it), routes it
  // (fills path_params) and calls the handler. Never throws: an exception from the handler is 500
  // internal; an Access::admin route with !request.is_admin is 401 unauthorized (with
  // WWW-Authenticate); an Access::user route is 401 unless the Authenticator names a principal
  // (always 401 when none is installed), and the Authenticator's error Status is answered as such; and so is an unknown path whose first segment is "admin" in any case, so
  // that admin routes cannot be probed; another unknown path is 404 route_not_found; a path known
  // for other methods only is 405 method_not_allowed with an Allow header.
  Response dispatch(Request& request) const;

  // Calls `observer` after every dispatch() with the route, status and duration; null: none (the
  // default). Like add(), only before serving.
  void set_observer(RouteObserver observer) { observer_ = std::move(observer); }

  struct RouteInfo {
    Method method;
    std::string pattern;
    Access access;
  };
  // Every route, in registration order (for logs, docs and the route-variant tests).
  std::vector<RouteInfo> routes() const;
  // "METHOD pattern" of every route, in registration order (for logs and docs).
  std::vector<std::string> describe() const;

 private:
  struct Route {
    Method method;
    std::string pattern;
    std::vector<std::string> segments;  // "{name}" marks a parameter
    Handler handler;
    Access access;
  };
  // dispatch() without the observer; sets *matched to the route that answered, if any.
  Response route(Request& request, const Route** matched) const;

  std::vector<Route> routes_;  // written only before serving
  RouteObserver observer_;     // written only before serving
  Authenticator authenticator_;  // written only before serving
};

// Server settings. Default: values shown.
struct ServerOptions {
  std::string host = "127.0.0.1";            // bind address; 0.0.0.0 exposes it to the network
  int port = 8080;                           // 0: the OS picks a free port (see Server::port())
  std::size_t body_limit_bytes = 1 << 20;    // larger bodies: 413 payload_too_large
  std::string admin_token;                   // non-empty: Access::admin routes need "Bearer <token>"
  // Binding an address other than loopback without an admin token is refused by start() unless
  // this is set: it would open the admin API to the network.
  bool insecure_admin = false;
  // Host header values (names, case-insensitive, without the port) accepted besides the defaults:
  // "localhost", 127.0.0.1, [::1], the bound address, and, when the bound address is a wildcard
  // (0.0.0.0 or ::), any IP literal (DNS rebinding needs a name). "*" accepts any Host. Another
  // Host is answered 400 host_not_allowed, so a rebound name cannot reach the API.
  std::vector<std::string> allowed_hosts;
  // Origins ("https://shop.example.com") whose browsers may call the API cross-site (CORS): their
  // state-changing requests are served and answered with Access-Control-Allow-Origin, and their
  // preflights (OPTIONS) answered. Empty (the default): CORS is off, and a POST, PUT, PATCH or
  // DELETE whose Origin is neither same-origin nor listed is refused 403 origin_not_allowed.
  std::vector<std::string> allowed_origins;
  // Route handlers run on these threads, never on an I/O thread, so a handler that blocks on the
  // store delays only the requests queued behind it.
  int worker_threads = 8;
  int io_threads = 2;                         // threads multiplexing every connection's socket
  // Requests parsed and waiting for a worker; one more is answered 503 with Retry-After at once.
  std::size_t max_queued_requests = 1024;
  // Open connections; a connection beyond it is answered 503 with Retry-After and closed (the
  // open ones are unaffected).
  std::size_t max_connections = 10'000;
  std::size_t max_header_bytes = 16 * 1024;  // request line + header fields: 431 above
  std::size_t max_uri_bytes = 8 * 1024;      // the request-target: 414 above
  // The whole request header must arrive within this, counted from the connection's accept (first
  // request) or the request's first byte (later ones): 408 and closed otherwise (slowloris).
  std::chrono::milliseconds header_timeout{10'000};
  // The whole body must arrive within this after the header ...
  std::chrono::milliseconds body_timeout{30'000};
  // ... and, from one second after the header on, at a mean rate of at least this many bytes per
  // second (0: no minimum): 408 and closed otherwise.
  std::size_t body_min_bytes_per_s = 1024;
  // A keep-alive connection with no request in progress is closed after this.
  std::chrono::milliseconds idle_timeout{30'000};
  std::chrono::milliseconds write_timeout{10'000};  // one response; the connection is dropped after
  // A handler that has not returned within this is answered 503 "timeout"; it keeps running on its
  // worker (threads cannot be interrupted) and its late result is discarded.
  std::chrono::milliseconds handler_timeout{30'000};
  // stop() lets in-flight requests finish for this long, then closes every connection.
  std::chrono::milliseconds shutdown_timeout{5'000};
};

// An HTTP/1.1 server over a Router: options.io_threads threads multiplex every connection, route
// handlers run on options.worker_threads others (docs/http-server.md).
// Thread-safety: start/stop/port may be called from any thread; stop() is idempotent.
class Server {
 public:
  // The router is shared: it must outlive nothing but must not be changed once start() ran.
  Server(std::shared_ptr<const Router> router, ServerOptions options);
  ~Server();  // stop()
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and starts serving in the background; returns once the socket listens.
  // invalid_argument for a bad port/host, or a non-loopback host with no admin token and not
  // insecure_admin (the message names --admin-token and --insecure-admin); unavailable when the
  // address cannot be bound (in use); failed_precondition when already started or stopped.
  Status start();
  // The port actually bound (useful with port 0); 0 before start().
  int port() const;
  // Stops accepting (new connections are refused), closes idle keep-alive connections, lets
  // in-flight requests finish until options.shutdown_timeout, then closes every connection and
  // joins the threads. A handler still running past the deadline is waited for: threads cannot be
  // interrupted, and the handler may use objects its owner destroys after stop(). Idempotent.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// ---- helpers for validating JSON bodies and query strings ----
// Each returns invalid_argument with a message naming the field, e.g.
// "field 'quantity' must be an integer >= 1", so a handler can answer
// Response::from_status(result.status()) directly.

// A required string member of object `obj`. `allow_empty` false rejects "".
Result<std::string> get_string(const nlohmann::json& obj, std::string_view key, bool allow_empty = false);
// An optional string member: nullopt when absent or null; error when present with another type.
Result<std::optional<std::string>> get_optional_string(const nlohmann::json& obj, std::string_view key);
// A required integer member within [min, max] (floats such as 1.5 and strings are rejected).
Result<std::int64_t> get_int(const nlohmann::json& obj, std::string_view key,
                             std::int64_t min = INT64_MIN, std::int64_t max = INT64_MAX);
// An optional integer member: `fallback` when absent or null.
Result<std::int64_t> get_optional_int(const nlohmann::json& obj, std::string_view key, std::int64_t fallback,
                                      std::int64_t min = INT64_MIN, std::int64_t max = INT64_MAX);
// Query parameter `name` as a decimal integer within [min, max]; `fallback` when absent.
Result<std::int64_t> query_int(const Request& req, const std::string& name, std::int64_t fallback,
                               std::int64_t min = INT64_MIN, std::int64_t max = INT64_MAX);

}  // namespace herald::http
