// Router, Request/Response and the JSON validation helpers of herald/http.h. Nothing here knows
// about sockets: the server (server.cpp) reads the wire and hands RequestPipeline a RawRequest.
#include <algorithm>
#include <cctype>
#include <charconv>
#include <exception>

#include "core/json_codec.h"
#include "herald/http.h"
#include "http/percent_decode.h"

namespace herald::http {

std::string_view to_string(Method m) noexcept {
  switch (m) {
    case Method::get: return "GET";
    case Method::post: return "POST";
    case Method::put: return "PUT";
    case Method::patch: return "PATCH";
    case Method::del: return "DELETE";
  }
  return "?";
}

std::optional<Method> parse_method(std::string_view name) noexcept {
  if (name == "GET") return Method::get;
  if (name == "POST") return Method::post;
  if (name == "PUT") return Method::put;
  if (name == "PATCH") return Method::patch;
  if (name == "DELETE") return Method::del;
  return std::nullopt;
}

int http_status_for(StatusCode code) noexcept {
  switch (code) {
    case StatusCode::ok: return 200;
    case StatusCode::invalid_argument: return 400;
    case StatusCode::not_found: return 404;
    case StatusCode::already_exists: return 409;
    case StatusCode::wrong_expected_version: return 409;
    case StatusCode::failed_precondition: return 409;
    case StatusCode::unavailable: return 503;
    case StatusCode::timeout: return 504;
    case StatusCode::cancelled: return 503;
    case StatusCode::permanent: return 422;
    case StatusCode::corruption: return 500;
    case StatusCode::internal: return 500;
    case StatusCode::lease_lost: return 409;
  }
  return 500;
}

// ---- Request ----

const std::string& Request::param(const std::string& name) const {
  static const std::string kEmpty;
  auto it = path_params.find(name);
  return it == path_params.end() ? kEmpty : it->second;
}

std::optional<std::string> Request::query_param(const std::string& name) const {
  auto it = query.find(name);
  if (it == query.end()) return std::nullopt;
  return it->second;
}

std::vector<std::string> Request::query_list(const std::string& name) const {
  std::vector<std::string> out;
  auto [lo, hi] = query.equal_range(name);
  for (auto it = lo; it != hi; ++it) {
    std::string_view rest = it->second;
    while (true) {
      auto comma = rest.find(',');
      std::string_view piece = rest.substr(0, comma);
      if (!piece.empty()) out.emplace_back(piece);
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
  }
  return out;
}

std::optional<std::string> Request::header(std::string_view name) const {
  std::string lower(name);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  auto it = headers.find(lower);
  if (it == headers.end()) return std::nullopt;
  return it->second;
}

Result<nlohmann::json> Request::json() const {
  if (body.empty()) return Status::invalid_argument("body is empty; a JSON document is required");
  // nlohmann parses iteratively but serialises, compares and copies recursively: refuse depth
  // before it builds anything.
  if (!herald::detail::json_depth_within(body, kMaxJsonDepth)) {
    return Status::invalid_argument("body nests arrays or objects deeper than " + std::to_string(kMaxJsonDepth) +
                                    " levels");
  }
  try {
    return nlohmann::json::parse(body);
  } catch (const nlohmann::json::exception& ex) {
    return Status::invalid_argument(std::string("body is not valid JSON: ") + ex.what());
  }
}

Result<nlohmann::json> Request::json_object() const {
  auto j = json();
  if (!j) return j;
  if (!j->is_object()) return Status::invalid_argument("body must be a JSON object");
  return j;
}

// ---- Response ----

Response Response::json(int status, const nlohmann::json& body) {
  Response r;
  r.status = status;
  // Replace invalid UTF-8 rather than throw: a handler echoing user bytes must not turn into 500.
  r.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return r;
}

Response Response::no_content() {
  Response r;
  r.status = 204;
  r.content_type.clear();
  return r;
}

Response Response::text(int status, std::string body, std::string content_type) {
  Response r;
  r.status = status;
  r.body = std::move(body);
  r.content_type = std::move(content_type);
  return r;
}

Response Response::error(int status, std::string_view code, std::string_view message) {
  return json(status, nlohmann::json{{"error", code}, {"message", message}});
}

Response Response::from_status(const Status& s) {
  if (s.is_ok()) return error(500, "internal", "an ok status was reported as an error");
  nlohmann::json body{{"error", to_string(s.code())}, {"message", s.message()}};
  if (auto v = s.actual_version()) body["actual_version"] = *v;
  return json(http_status_for(s.code()), body);
}

// ---- Router ----

namespace {

std::vector<std::string> split_path(std::string_view path) {
  std::vector<std::string> out;
  // Leading '/' is required by add() and always present in server paths; a trailing '/' yields no
  // empty segment so "/health/" routes like "/health".
  std::size_t i = 0;
  while (i < path.size()) {
    if (path[i] == '/') {
      ++i;
      continue;
    }
    auto end = path.find('/', i);
    if (end == std::string_view::npos) end = path.size();
    out.emplace_back(path.substr(i, end - i));
    i = end;
  }
  return out;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::optional<std::string> detail::percent_decode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '+' && plus_is_space) {
      c = ' ';
    } else if (c == '%') {
      const int hi = i + 2 < text.size() ? hex_value(text[i + 1]) : -1;
      const int lo = hi < 0 ? -1 : hex_value(text[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      c = static_cast<char>(hi * 16 + lo);
      i += 2;
    }
    out.push_back(c);
  }
  return out;
}

namespace {

bool is_param(const std::string& seg) { return seg.size() >= 2 && seg.front() == '{' && seg.back() == '}'; }

// How well `segments` match `route`: -1 no match, else the number of literal segments (the more
// literals the more specific, so "/admin/handlers/stats" beats "/admin/handlers/{name}").
int match(const std::vector<std::string>& route, const std::vector<std::string>& segments,
          std::map<std::string, std::string>* params) {
  if (route.size() != segments.size()) return -1;
  int literals = 0;
  for (std::size_t i = 0; i < route.size(); ++i) {
    if (is_param(route[i])) {
      if (segments[i].empty()) return -1;
      if (params) (*params)[route[i].substr(1, route[i].size() - 2)] = segments[i];
    } else if (route[i] == segments[i]) {
      ++literals;
    } else {
      return -1;
    }
  }
  return literals;
}

bool equals_ignoring_case(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

Response unauthorized(std::string_view message = "admin routes need 'Authorization: Bearer <token>'") {
  auto r = Response::error(401, "unauthorized", message);
  r.headers["WWW-Authenticate"] = "Bearer";
  return r;
}

}  // namespace

Result<std::string> normalize_path(std::string_view raw_path) {
  if (raw_path.empty() || raw_path.front() != '/') {
    return Status::invalid_argument("request path must start with '/'");
  }
  auto decoded = detail::percent_decode(raw_path, /*plus_is_space=*/false);
  if (!decoded) return Status::invalid_argument("request path has a malformed %-escape");
  for (char c : *decoded) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7F) return Status::invalid_argument("request path holds a control character");
  }
  std::vector<std::string_view> kept;
  std::string_view rest = *decoded;
  while (!rest.empty()) {
    auto slash = rest.find('/');
    std::string_view seg = rest.substr(0, slash);
    rest = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash + 1);
    if (seg.empty() || seg == ".") continue;
    if (seg == "..") {
      if (!kept.empty()) kept.pop_back();
      continue;
    }
    kept.push_back(seg);
  }
  std::string out;
  for (auto seg : kept) {
    out.push_back('/');
    out.append(seg);
  }
  if (out.empty()) out = "/";
  return out;
}

Status Router::add(Method method, std::string_view pattern, Handler handler, Access access) {
  if (!handler) return Status::invalid_argument("route " + std::string(pattern) + ": null handler");
  if (pattern.empty() || pattern.front() != '/') {
    return Status::invalid_argument("route pattern must start with '/': " + std::string(pattern));
  }
  auto segments = split_path(pattern);
  for (const auto& seg : segments) {
    bool has_brace = seg.find_first_of("{}") != std::string::npos;
    if (has_brace && (!is_param(seg) || seg.size() == 2 ||
                      seg.substr(1, seg.size() - 2).find_first_of("{}") != std::string::npos)) {
      return Status::invalid_argument("route pattern has a malformed {name} segment: " +
                                      std::string(pattern));
    }
  }
  // Two patterns that differ only in parameter names match the same paths: a duplicate.
  auto shape = [](const std::vector<std::string>& segs) {
    std::vector<std::string> out;
    for (const auto& s : segs) out.push_back(is_param(s) ? std::string("{}") : s);
    return out;
  };
  for (const auto& r : routes_) {
    if (r.method == method && shape(r.segments) == shape(segments)) {
      return Status::already_exists("route " + std::string(to_string(method)) + " " +
                                    std::string(pattern) + " is already registered");
    }
  }
  if (access != Access::admin && !segments.empty() && equals_ignoring_case(segments.front(), "admin")) {
    return Status::invalid_argument("route " + std::string(pattern) + " is under /admin and must be Access::admin");
  }
  routes_.push_back(Route{method, std::string(pattern), std::move(segments), std::move(handler), access});
  return Status::ok();
}

Status Router::set_authenticator(Authenticator authenticator) {
  if (!authenticator) return Status::invalid_argument("null authenticator");
  if (authenticator_) return Status::already_exists("an authenticator is already installed");
  authenticator_ = std::move(authenticator);
  return Status::ok();
}

Response Router::dispatch(Request& request) const {
  if (!observer_) return route(request, nullptr);
  const auto started = std::chrono::steady_clock::now();
  const Route* matched = nullptr;
  Response response = route(request, &matched);
  try {
    observer_(RouteObservation{request.method, matched != nullptr ? std::string_view(matched->pattern) : std::string_view(),
                               response.status, std::chrono::steady_clock::now() - started});
  } catch (...) {
    // Metrics must never change an answer.
  }
  return response;
}

Response Router::route(Request& request, const Route** matched) const {
  auto normalized = normalize_path(request.path);
  if (!normalized) return Response::from_status(normalized.status());
  request.path = std::move(*normalized);
  auto segments = split_path(request.path);
  const Route* best = nullptr;
  int best_score = -1;
  std::vector<std::string> allowed;
  for (const auto& r : routes_) {
    int score = match(r.segments, segments, nullptr);
    if (score < 0) continue;
    if (r.method != request.method) {
      std::string m(to_string(r.method));
      if (std::find(allowed.begin(), allowed.end(), m) == allowed.end()) allowed.push_back(m);
      continue;
    }
    if (score > best_score) {
      best = &r;
      best_score = score;
    }
  }
  if (matched != nullptr) *matched = best;
  // Unknown paths under /admin answer like protected ones, so the admin API cannot be mapped
  // without the token.
  const bool under_admin = !segments.empty() && equals_ignoring_case(segments.front(), "admin");
  if ((best != nullptr && best->access == Access::admin && !request.is_admin) ||
      (best == nullptr && under_admin && !request.is_admin)) {
    return unauthorized();
  }
  if (best == nullptr) {
    if (allowed.empty()) {
      return Response::error(404, "route_not_found", "no route for " + request.path);
    }
    std::string allow;
    for (const auto& m : allowed) allow += (allow.empty() ? "" : ", ") + m;
    auto resp = Response::error(405, "method_not_allowed",
                                std::string(to_string(request.method)) + " is not allowed on " +
                                    request.path + " (allowed: " + allow + ")");
    resp.headers["Allow"] = allow;
    return resp;
  }
  request.path_params.clear();
  request.principal.clear();
  match(best->segments, segments, &request.path_params);
  try {
    if (best->access == Access::user) {
      if (!authenticator_) return unauthorized("this route needs a signed-in user, and none can sign in here");
      auto who = authenticator_(request);
      if (!who) return Response::from_status(who.status());
      if (!who->has_value() || (*who)->empty()) {
        return unauthorized("this route needs 'Authorization: Bearer <session token>' of a signed-in user");
      }
      request.principal = std::move(**who);
    }
    return best->handler(request);
  } catch (const std::exception& ex) {
    return Response::error(500, "internal", std::string("unhandled exception: ") + ex.what());
  } catch (...) {
    return Response::error(500, "internal", "unhandled non-standard exception");
  }
}

std::vector<Router::RouteInfo> Router::routes() const {
  std::vector<RouteInfo> out;
  out.reserve(routes_.size());
  for (const auto& r : routes_) out.push_back(RouteInfo{r.method, r.pattern, r.access});
  return out;
}

std::vector<std::string> Router::describe() const {
  std::vector<std::string> out;
  out.reserve(routes_.size());
  for (const auto& r : routes_) out.push_back(std::string(to_string(r.method)) + " " + r.pattern);
  return out;
}

// ---- validation helpers ----

namespace {

std::string field_name(std::string_view key) { return "field '" + std::string(key) + "'"; }

std::string range_text(std::int64_t min, std::int64_t max) {
  if (min == INT64_MIN && max == INT64_MAX) return "";
  if (max == INT64_MAX) return " >= " + std::to_string(min);
  if (min == INT64_MIN) return " <= " + std::to_string(max);
  return " in [" + std::to_string(min) + ", " + std::to_string(max) + "]";
}

Result<std::int64_t> int_value(const nlohmann::json& v, std::string_view key, std::int64_t min,
                               std::int64_t max) {
  std::string what = field_name(key) + " must be an integer" + range_text(min, max);
  std::int64_t n = 0;
  if (v.is_number_unsigned()) {
    auto u = v.get<std::uint64_t>();
    if (u > static_cast<std::uint64_t>(INT64_MAX)) return Status::invalid_argument(what);
    n = static_cast<std::int64_t>(u);
  } else if (v.is_number_integer()) {
    n = v.get<std::int64_t>();
  } else {
    return Status::invalid_argument(what);
  }
  if (n < min || n > max) return Status::invalid_argument(what);
  return n;
}

}  // namespace

Result<std::string> get_string(const nlohmann::json& obj, std::string_view key, bool allow_empty) {
  if (!obj.is_object()) return Status::invalid_argument("body must be a JSON object");
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return Status::invalid_argument(field_name(key) + " is required");
  if (!it->is_string()) return Status::invalid_argument(field_name(key) + " must be a string");
  auto s = it->get<std::string>();
  if (!allow_empty && s.empty()) return Status::invalid_argument(field_name(key) + " must not be empty");
  return s;
}

Result<std::optional<std::string>> get_optional_string(const nlohmann::json& obj, std::string_view key) {
  if (!obj.is_object()) return Status::invalid_argument("body must be a JSON object");
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::optional<std::string>{};
  if (!it->is_string()) return Status::invalid_argument(field_name(key) + " must be a string");
  return std::optional<std::string>{it->get<std::string>()};
}

Result<std::int64_t> get_int(const nlohmann::json& obj, std::string_view key, std::int64_t min,
                             std::int64_t max) {
  if (!obj.is_object()) return Status::invalid_argument("body must be a JSON object");
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return Status::invalid_argument(field_name(key) + " is required");
  return int_value(*it, key, min, max);
}

Result<std::int64_t> get_optional_int(const nlohmann::json& obj, std::string_view key, std::int64_t fallback,
                                      std::int64_t min, std::int64_t max) {
  if (!obj.is_object()) return Status::invalid_argument("body must be a JSON object");
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return fallback;
  return int_value(*it, key, min, max);
}

Result<std::int64_t> query_int(const Request& req, const std::string& name, std::int64_t fallback,
                               std::int64_t min, std::int64_t max) {
  auto v = req.query_param(name);
  if (!v) return fallback;
  std::string what = "query parameter '" + name + "' must be an integer" + range_text(min, max);
  std::int64_t n = 0;
  const char* first = v->data();
  const char* last = v->data() + v->size();
  auto [ptr, ec] = std::from_chars(first, last, n);
  if (v->empty() || ec != std::errc{} || ptr != last) return Status::invalid_argument(what);
  if (n < min || n > max) return Status::invalid_argument(what);
  return n;
}

}  // namespace herald::http
