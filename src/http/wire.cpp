#include "http/wire.h"

#include <boost/beast/http/status.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <charconv>

#include "core/log_text.h"

namespace herald::http::detail {
namespace {

std::string_view sv(boost::core::string_view s) { return {s.data(), s.size()}; }

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool is_token_char(char c) {
  if (std::isalnum(static_cast<unsigned char>(c))) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view s) { return !s.empty() && std::all_of(s.begin(), s.end(), is_token_char); }

// The request line: what precedes the first CRLF (or all of `buffered` when none arrived yet).
std::string_view request_line(std::string_view buffered) {
  return buffered.substr(0, std::min(buffered.find("\r\n"), buffered.find('\n')));
}

// The request-target's length in a request line, as far as it arrived.
std::size_t target_length(std::string_view line) {
  auto first = line.find(' ');
  if (first == std::string_view::npos) return 0;
  auto rest = line.substr(first + 1);
  auto second = rest.find(' ');
  return second == std::string_view::npos ? rest.size() : second;
}

// "HTTP/<digits>.<digits>": a version, though not one Beast parses (it takes one digit each).
bool looks_like_version(std::string_view v) {
  if (!v.starts_with("HTTP/")) return false;
  v.remove_prefix(5);
  auto dot = v.find('.');
  if (dot == std::string_view::npos || dot == 0 || dot + 1 == v.size()) return false;
  return std::all_of(v.begin(), v.end(), [](char c) { return c == '.' || std::isdigit(static_cast<unsigned char>(c)); }) &&
         std::count(v.begin(), v.end(), '.') == 1;
}

bool is_acceptable_request_id(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == ':' || c == '-';
  });
}

bool no_body_status(int status) { return status < 200 || status == 204 || status == 304; }

}  // namespace

// ---- RequestParser ----

void RequestParser::on_request_impl(beast_http::verb, boost::core::string_view method, boost::core::string_view target,
                                    int v, error_code&) {
  request.method.assign(method.data(), method.size());
  request.target.assign(target.data(), target.size());
  version = v;
  request.version = v == 10 ? "HTTP/1.0" : "HTTP/1.1";
}

void RequestParser::on_response_impl(int, boost::core::string_view, int, error_code& ec) {
  ec = beast_http::error::bad_method;  // unreachable: this parser is for requests
}

void RequestParser::on_field_impl(beast_http::field name, boost::core::string_view name_string,
                                  boost::core::string_view value, error_code&) {
  if (header_done) return;  // a trailer
  if (name == beast_http::field::content_length) has_content_length = true;
  if (name == beast_http::field::transfer_encoding) {
    if (!transfer_encoding.empty()) transfer_encoding += ", ";
    transfer_encoding.append(value.data(), value.size());
  }
  if (name == beast_http::field::expect && iequals(trim(sv(value)), "100-continue")) expect_continue = true;
  request.headers.emplace_back(std::string(name_string.data(), name_string.size()), std::string(value.data(), value.size()));
}

void RequestParser::on_body_init_impl(const boost::optional<std::uint64_t>& length, error_code&) {
  // Beast has already refused a length over body_limit, so this reserve is bounded by it.
  if (length) request.body.reserve(static_cast<std::size_t>(*length));
}

std::size_t RequestParser::on_body_impl(boost::core::string_view body, error_code&) {
  request.body.append(body.data(), body.size());
  return body.size();
}

std::size_t RequestParser::on_chunk_body_impl(std::uint64_t, boost::core::string_view body, error_code&) {
  request.body.append(body.data(), body.size());
  return body.size();
}

// ---- checks ----

std::optional<Refusal> check_head(const RequestParser& p, const ServerOptions& o) {
  const RawRequest& r = p.request;
  if (p.version / 10 != 1) {
    return Refusal{505, "http_version_not_supported",
                   "HTTP/" + std::to_string(p.version / 10) + "." + std::to_string(p.version % 10) +
                       " is not supported; this server speaks HTTP/1.1 and HTTP/1.0"};
  }
  if (r.target.size() > o.max_uri_bytes) {
    return Refusal{414, "uri_too_long",
                   "the request-target has " + std::to_string(r.target.size()) + " bytes; the limit is " +
                       std::to_string(o.max_uri_bytes)};
  }
  if (!p.transfer_encoding.empty()) {
    if (p.has_content_length) {
      return Refusal{400, "bad_request", "conflicting message framing (Content-Length with Transfer-Encoding)"};
    }
    if (p.version == 10) return Refusal{400, "bad_request", "Transfer-Encoding in an HTTP/1.0 request"};
    std::string_view list = p.transfer_encoding;
    // Any coding but chunked is refused below, so "exactly one chunked" also means "chunked last".
    int chunked = 0;
    while (true) {
      auto comma = list.find(',');
      auto coding = trim(list.substr(0, comma));
      coding = trim(coding.substr(0, coding.find(';')));
      if (!coding.empty()) {
        if (!iequals(coding, "chunked")) {
          return Refusal{501, "not_implemented",
                         "transfer coding '" + herald::detail::escape_for_log(coding.substr(0, 64)) +
                             "' is not supported (only chunked)"};
        }
        ++chunked;
      }
      if (comma == std::string_view::npos) break;
      list.remove_prefix(comma + 1);
    }
    if (chunked != 1) {
      return Refusal{400, "bad_request", "Transfer-Encoding must name chunked exactly once"};
    }
  } else if (!p.has_content_length && (r.method == "POST" || r.method == "PUT" || r.method == "PATCH")) {
    return Refusal{411, "length_required", r.method + " needs a Content-Length (or Transfer-Encoding: chunked)"};
  }
  return std::nullopt;
}

Refusal refusal_for(const error_code& ec, std::string_view buffered, const RequestParser& parser,
                    const ServerOptions& o) {
  using beast_http::error;
  // Once Beast has parsed the request line it is no longer in the buffer, but in the parser.
  const bool line_parsed = !parser.request.method.empty();
  const auto line = line_parsed ? std::string_view{} : request_line(buffered);
  if (ec == error::header_limit || ec == error::buffer_overflow) {
    if ((line_parsed ? parser.request.target.size() : target_length(line)) > o.max_uri_bytes) {
      return Refusal{414, "uri_too_long", "the request-target is over the limit of " + std::to_string(o.max_uri_bytes) + " bytes"};
    }
    return Refusal{431, "header_too_large",
                   "the request header is over the limit of " + std::to_string(o.max_header_bytes) + " bytes"};
  }
  if (ec == error::body_limit) {
    return Refusal{413, "payload_too_large", "body exceeds the limit of " + std::to_string(o.body_limit_bytes) + " bytes"};
  }
  if (ec == error::bad_version && !line_parsed) {
    // Three parts with a well-formed version Beast cannot hold (two digits): a version, not garbage.
    auto last_space = line.rfind(' ');
    if (std::count(line.begin(), line.end(), ' ') == 2 && last_space != std::string_view::npos &&
        looks_like_version(line.substr(last_space + 1))) {
      return Refusal{505, "http_version_not_supported",
                     "this server speaks HTTP/1.1 and HTTP/1.0, not " +
                         herald::detail::escape_for_log(line.substr(last_space + 1, 32))};
    }
  }
  if (ec == error::multiple_content_length) {
    return Refusal{400, "bad_request", "conflicting message framing (Content-Length repeated with other values)"};
  }
  if (ec == error::bad_transfer_encoding) {
    return Refusal{400, "bad_request", "conflicting message framing (Transfer-Encoding repeated, or with Content-Length)"};
  }
  return Refusal{400, "bad_request", "malformed request: " + ec.message()};
}

std::string client_request_id(const RawRequest& request) {
  for (const auto& [name, value] : request.headers) {
    if (iequals(name, "x-request-id")) return is_acceptable_request_id(value) ? value : std::string();
  }
  return {};
}

// ---- responses ----

std::string serialize_response(const Response& in, std::string_view request_id, const WireOptions& w) {
  const Response* r = &in;
  Response invalid;
  if (in.status < 100 || in.status > 599) {
    spdlog::error("http: a handler returned status {}; answering 500", in.status);
    invalid = Response::error(500, "internal", "the handler returned an invalid HTTP status");
    r = &invalid;
  }
  const bool bodiless = no_body_status(r->status);
  auto reason = beast_http::obsolete_reason(beast_http::int_to_status(static_cast<unsigned>(r->status)));
  if (reason.empty() || reason.front() == '<') reason = "Unknown";

  std::string out;
  out.reserve(160 + r->body.size() + request_id.size() + r->headers.size() * 48);
  out += "HTTP/1.1 ";
  out += std::to_string(r->status);
  out += ' ';
  out.append(reason.data(), reason.size());
  out += "\r\n";
  if (!bodiless) {
    if (!r->content_type.empty()) {
      out += "Content-Type: ";
      out += r->content_type;
      out += "\r\n";
    }
    out += "Content-Length: ";
    out += std::to_string(r->body.size());
    out += "\r\n";
  }
  for (const auto& [name, value] : r->headers) {
    if (iequals(name, "content-length") || iequals(name, "transfer-encoding") || iequals(name, "connection") ||
        iequals(name, "x-request-id") || (iequals(name, "content-type") && !r->content_type.empty())) {
      continue;
    }
    if (!is_token(name) || value.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos) {
      spdlog::warn("http: dropped response header '{}': not a token, or a value with CR, LF or NUL",
                   herald::detail::escape_for_log(name));
      continue;
    }
    out += name;
    out += ": ";
    out += value;
    out += "\r\n";
  }
  if (!request_id.empty()) {
    out += "X-Request-Id: ";
    out += request_id;
    out += "\r\n";
  }
  if (w.close) {
    out += "Connection: close\r\n";
  } else if (w.keep_alive_10) {
    out += "Connection: keep-alive\r\n";
  }
  out += "\r\n";
  if (!bodiless && !w.head) out += r->body;
  return out;
}

}  // namespace herald::http::detail
