// The HTTP/1.1 wire format around the request pipeline: a Beast parser that builds a RawRequest as
// the bytes arrive, the framing checks Beast leaves to the server (version, request-target length,
// transfer codings, missing length), the status each parse error deserves, and the bytes of a
// response. No sockets here: connection.cpp does the I/O.
#pragma once

#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "herald/http.h"
#include "http/request_pipeline.h"

namespace herald::http::detail {

namespace beast_http = boost::beast::http;
using boost::system::error_code;

// Fills `request` while Beast parses: method, target and header fields exactly as sent (in
// order), the body (de-chunked). Trailer fields after a chunked body are dropped: nothing a
// client sends after the header may change what the header said.
class RequestParser final : public beast_http::basic_parser<true> {
 public:
  RawRequest request;
  int version = 0;                // as parsed: 10 for HTTP/1.0, 11 for HTTP/1.1, 99 for HTTP/9.9
  bool has_content_length = false;
  std::string transfer_encoding;  // every Transfer-Encoding value, joined with ", "
  bool expect_continue = false;   // "Expect: 100-continue"
  bool header_done = false;

 private:
  void on_request_impl(beast_http::verb, boost::core::string_view method, boost::core::string_view target,
                       int version, error_code&) override;
  void on_response_impl(int, boost::core::string_view, int, error_code& ec) override;
  void on_field_impl(beast_http::field name, boost::core::string_view name_string, boost::core::string_view value,
                     error_code&) override;
  void on_header_impl(error_code&) override { header_done = true; }
  void on_body_init_impl(const boost::optional<std::uint64_t>& length, error_code&) override;
  std::size_t on_body_impl(boost::core::string_view body, error_code&) override;
  void on_chunk_header_impl(std::uint64_t, boost::core::string_view, error_code&) override {}
  std::size_t on_chunk_body_impl(std::uint64_t, boost::core::string_view body, error_code&) override;
  void on_finish_impl(error_code&) override {}
};

// A request the transport answers itself, before any route sees it.
struct Refusal {
  int status = 400;
  std::string code;     // the JSON body's "error"
  std::string message;  // the JSON body's "message"
};

// The checks on a complete header that Beast does not make: an HTTP version other than 1.x (505),
// a request-target over max_uri_bytes (414), Content-Length with Transfer-Encoding or a coding
// list that does not end in exactly one chunked (400), a coding other than chunked (501), and a
// POST, PUT or PATCH with neither Content-Length nor Transfer-Encoding (411). nullopt: accept.
std::optional<Refusal> check_head(const RequestParser& parser, const ServerOptions& options);

// The answer to a parse error (header_limit also for a header the server found over
// max_header_bytes). `buffered` is what the parser has not consumed (the bytes it refused are
// still in it), used with the parser's request line to tell a request-target over the limit (414)
// from a header over it (431), and an HTTP-version Beast cannot parse (HTTP/10.0: 505) from
// garbage (400).
Refusal refusal_for(const error_code& ec, std::string_view buffered, const RequestParser& parser,
                    const ServerOptions& options);

// The client's X-Request-Id when it is one the pipeline would echo, else "" (the caller then makes a
// fresh UUIDv7): what a response carries when the pipeline did not answer (overload, deadline).
std::string client_request_id(const RawRequest& request);

struct WireOptions {
  bool head = false;         // answering HEAD: headers as for GET, no body
  bool close = false;        // "Connection: close"; the server closes after writing
  bool keep_alive_10 = false;  // an HTTP/1.0 client asked for keep-alive: say it is granted
};

// Status line, headers and body of `response`. Framing headers (Content-Length, Transfer-Encoding,
// Connection) are the server's: a handler's are ignored, and so is any header whose name is not a
// token or whose value holds CR, LF or NUL (logged), so a handler cannot split a response.
std::string serialize_response(const Response& response, std::string_view request_id, const WireOptions& options);

}  // namespace herald::http::detail
