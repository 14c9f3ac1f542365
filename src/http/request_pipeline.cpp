#include "http/request_pipeline.h"

#include <arpa/inet.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <optional>

#include "core/json_codec.h"
#include "core/log_context.h"
#include "core/log_text.h"
#include "herald/id.h"
#include "http/percent_decode.h"

namespace herald::http::detail {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool is_ip_literal(std::string_view host) {
  std::string h(host);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  unsigned char buf[sizeof(in6_addr)];
  return ::inet_pton(AF_INET, h.c_str(), buf) == 1 || ::inet_pton(AF_INET6, h.c_str(), buf) == 1;
}

bool is_wildcard(std::string_view host) { return host == "0.0.0.0" || host == "::" || host == "[::]"; }

// The host part of a Host header value ("name:port", "[v6]:port", "name"), lower-cased; nullopt
// when the value is not of that shape.
std::optional<std::string> host_of(std::string_view value) {
  value = trim(value);
  if (value.empty()) return std::nullopt;
  std::string_view host = value;
  if (value.front() == '[') {
    auto close = value.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    host = value.substr(0, close + 1);
    auto rest = value.substr(close + 1);
    if (!rest.empty() && (rest.front() != ':' || rest.size() == 1)) return std::nullopt;
  } else if (auto colon = value.find(':'); colon != std::string_view::npos) {
    host = value.substr(0, colon);
    if (host.empty() || colon + 1 == value.size()) return std::nullopt;
  }
  for (char c : value) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7F || c == '/' || c == '@' || c == '?' || c == '#' || c == '\\') return std::nullopt;
  }
  return lower(host);
}

// Accepts X-Request-Id values that are safe everywhere a request id goes: logs, the response
// header and event metadata.
bool is_acceptable_request_id(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == ':' || c == '-';
  });
}

// Constant-time comparison so the token cannot be guessed byte by byte from response timings.
bool token_equals(std::string_view given, std::string_view expected) {
  if (given.size() != expected.size() || expected.empty()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < given.size(); ++i) diff |= static_cast<unsigned char>(given[i] ^ expected[i]);
  return diff == 0;
}

Status parse_query(std::string_view query, std::multimap<std::string, std::string>& out) {
  while (!query.empty()) {
    auto amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    if (pair.empty()) continue;
    auto eq = pair.find('=');
    // application/x-www-form-urlencoded: '+' is a space in keys and values.
    auto key = percent_decode(pair.substr(0, eq), /*plus_is_space=*/true);
    auto value = percent_decode(eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1), true);
    if (!key || !value) return Status::invalid_argument("query string has a malformed %-escape");
    out.emplace(std::move(*key), std::move(*value));
  }
  return Status::ok();
}

bool is_state_changing(std::string_view method) { return method != "GET" && method != "HEAD" && method != "OPTIONS"; }

}  // namespace

bool is_loopback_host(std::string_view host) {
  std::string h = lower(host);
  if (h == "localhost" || h == "::1" || h == "[::1]") return true;
  in_addr v4{};
  if (::inet_pton(AF_INET, h.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  return false;
}

Status check_exposure(const ServerOptions& o) {
  if (is_loopback_host(o.host) || !o.admin_token.empty() || o.insecure_admin) return Status::ok();
  return Status::invalid_argument("binding " + o.host +
                                  " would open the admin API to the network without a token: set --admin-token "
                                  "(HERALD_ADMIN_TOKEN, http.admin_token), bind 127.0.0.1, or pass --insecure-admin true "
                                  "to accept the risk");
}

RequestPipeline::RequestPipeline(std::shared_ptr<const Router> router, ServerOptions options)
    : router_(std::move(router)), options_(std::move(options)) {
  allowed_hosts_ = {"localhost", "127.0.0.1", "[::1]"};
  if (!is_wildcard(options_.host)) {
    std::string bound = lower(options_.host);
    if (bound.find(':') != std::string::npos && bound.front() != '[') bound = "[" + bound + "]";
    allowed_hosts_.push_back(bound);
  }
  any_ip_literal_ = is_wildcard(options_.host);
  for (const auto& h : options_.allowed_hosts) {
    if (h == "*") any_host_ = true;
    allowed_hosts_.push_back(lower(h));
  }
}

Answer RequestPipeline::handle(RawRequest& in) const {
  const auto started = std::chrono::steady_clock::now();
  Answer answer;
  Request req;
  req.remote_addr = in.remote_addr;

  // Headers: names lower-cased, repeats joined, except the ones whose repetition is an attack.
  std::vector<std::string> content_lengths, hosts;
  bool chunked_or_coded = false;
  for (const auto& [name, value] : in.headers) {
    auto key = lower(name);
    if (key == "content-length") content_lengths.push_back(std::string(trim(value)));
    if (key == "host") hosts.push_back(value);
    if (key == "transfer-encoding") chunked_or_coded = true;
    auto [it, inserted] = req.headers.emplace(key, value);
    if (!inserted) it->second += ", " + value;
  }
  auto rid = req.header("x-request-id");
  req.request_id = rid && is_acceptable_request_id(*rid) ? *rid : new_uuid_v7();
  answer.request_id = req.request_id;
  // JSON log lines of this thread carry the request id until the access log line below is written.
  const herald::detail::ScopedLogContext log_context(req.request_id);

  const std::string_view target = in.target;
  const auto qmark = target.find('?');
  req.path = std::string(target.substr(0, qmark));
  auto& resp = answer.response;
  auto method = parse_method(in.method == "HEAD" ? "GET" : in.method);
  std::optional<std::string> host;
  if (!hosts.empty()) host = host_of(hosts.front());
  const auto origin = req.header("origin");
  const bool origin_listed =
      origin && std::find(options_.allowed_origins.begin(), options_.allowed_origins.end(), *origin) !=
                    options_.allowed_origins.end();

  if (std::adjacent_find(content_lengths.begin(), content_lengths.end(), std::not_equal_to<>()) !=
          content_lengths.end() ||
      (!content_lengths.empty() && chunked_or_coded)) {
    // A proxy in front of us may have framed this request differently (RFC 9112 6.3): answer and
    // hang up rather than guess where the next request starts.
    resp = Response::error(400, "bad_request",
                           "conflicting message framing (Content-Length repeated with other values, or with "
                           "Transfer-Encoding)");
    answer.close_connection = true;
  } else if ((in.version == "HTTP/1.1" && hosts.size() != 1) || hosts.size() > 1 || (!hosts.empty() && !host)) {
    resp = Response::error(400, "bad_request", "an HTTP/1.1 request needs exactly one valid Host header");
  } else if (host && !any_host_ && !(any_ip_literal_ && is_ip_literal(*host)) &&
             std::find(allowed_hosts_.begin(), allowed_hosts_.end(), *host) == allowed_hosts_.end()) {
    resp = Response::error(400, "host_not_allowed",
                           "Host '" + *host + "' is not served here (allow it with --allowed-hosts)");
  } else if (in.method == "OPTIONS" && origin) {
    // A CORS preflight: answered only for configured origins; CORS is off by default.
    if (!origin_listed) {
      resp = Response::error(403, "origin_not_allowed", "cross-origin requests from " + *origin + " are not allowed");
    } else {
      resp = Response::no_content();
      resp.headers["Access-Control-Allow-Methods"] = "GET, POST, PUT, PATCH, DELETE";
      resp.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type, X-Request-Id";
      resp.headers["Access-Control-Max-Age"] = "600";
    }
  } else if (!method) {
    resp = Response::error(405, "method_not_allowed", in.method + " is not supported");
  } else if (in.body.size() > options_.body_limit_bytes) {
    resp = Response::error(413, "payload_too_large",
                           "body of " + std::to_string(in.body.size()) + " bytes exceeds the limit of " +
                               std::to_string(options_.body_limit_bytes));
  } else if (origin && is_state_changing(in.method) && !origin_listed &&
             !(lower(*origin) == "http://" + lower(trim(hosts.empty() ? "" : hosts.front())) ||
               lower(*origin) == "https://" + lower(trim(hosts.empty() ? "" : hosts.front())))) {
    // Browsers send Origin with every cross-site POST; a same-origin page (one served from this
    // Host) and non-browser clients (no Origin) are served.
    resp = Response::error(403, "origin_not_allowed",
                           "state-changing requests from origin " + *origin + " are not allowed");
  } else if (!in.body.empty() && [&] {
               auto ct = req.header("content-type");
               if (!ct) return true;
               auto media = lower(trim(std::string_view(*ct).substr(0, ct->find(';'))));
               return media != "application/json";
             }()) {
    // Only JSON is accepted: a form or text/plain body is what a cross-site page can send without
    // a preflight.
    resp = Response::error(415, "unsupported_media_type", "request bodies must be sent as application/json");
  } else if (!in.body.empty() && !herald::detail::json_depth_within(in.body, kMaxJsonDepth)) {
    // Checked for every route, before any handler parses: no recursion ever sees such a body.
    resp = Response::error(400, "invalid_argument",
                           "body nests arrays or objects deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  } else if (Status q = parse_query(qmark == std::string_view::npos ? std::string_view{} : target.substr(qmark + 1),
                                    req.query);
             !q) {
    resp = Response::from_status(q);
  } else {
    req.method = *method;
    req.body = std::move(in.body);
    if (options_.admin_token.empty()) {
      req.is_admin = true;
    } else if (auto auth = req.header("authorization")) {
      constexpr std::string_view kBearer = "Bearer ";
      req.is_admin = auth->starts_with(kBearer) &&
                     token_equals(std::string_view(*auth).substr(kBearer.size()), options_.admin_token);
    }
    resp = router_->dispatch(req);
  }
  if (origin_listed) {
    resp.headers["Access-Control-Allow-Origin"] = *origin;
    resp.headers["Vary"] = "Origin";
  }
  if (answer.close_connection) resp.headers["Connection"] = "close";

  auto us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - started);
  spdlog::info("http {} {} -> {} ({} bytes, {:.3f} ms, request_id={}, from={})", herald::detail::escape_for_log(in.method),
               herald::detail::escape_for_log(in.target), resp.status, resp.body.size(), static_cast<double>(us.count()) / 1000.0,
               herald::detail::escape_for_log(req.request_id), herald::detail::escape_for_log(in.remote_addr));
  return answer;
}

}  // namespace herald::http::detail
