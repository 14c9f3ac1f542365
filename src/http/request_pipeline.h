// What every request passes between the socket and the router, whatever server reads the bytes:
// framing checks that protect a proxy in front of us, the Host allow-list (DNS rebinding), the
// Content-Type and Origin checks (cross-site requests), the admin token, the request id, the one
// normalisation of the path, and the access log with every value escaped. A server hands it the
// request as it came off the wire and writes back what it answers.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "herald/http.h"

namespace herald::http::detail {

// A request as the transport parsed it; nothing decoded, nothing merged.
struct RawRequest {
  std::string method;   // as sent, e.g. "GET"
  std::string target;   // the request-target as sent: "/path?query"
  std::string version;  // "HTTP/1.1" or "HTTP/1.0"
  std::vector<std::pair<std::string, std::string>> headers;  // in order, names as sent
  std::string body;
  std::string remote_addr;
};

struct Answer {
  Response response;
  std::string request_id;  // echoed as X-Request-Id
  // The framing can no longer be trusted (conflicting lengths): the server must close the
  // connection after answering instead of reading another request from it.
  bool close_connection = false;
};

// Immutable after construction; handle() is safe from any number of threads at once.
class RequestPipeline {
 public:
  RequestPipeline(std::shared_ptr<const Router> router, ServerOptions options);

  // Checks, routes and logs one request. Never throws (a handler's exception is the router's 500).
  Answer handle(RawRequest& in) const;

 private:
  std::shared_ptr<const Router> router_;
  ServerOptions options_;
  std::vector<std::string> allowed_hosts_;  // lower-case host names and literals, without port
  bool any_host_ = false;                   // "*" was configured
  bool any_ip_literal_ = false;             // bound to a wildcard address
};

// Whether `host` names the loopback interface: localhost, 127.0.0.0/8 or ::1.
bool is_loopback_host(std::string_view host);

// The start-up refusal for options that would open the admin API to the network: a host other
// than loopback with no admin token and no insecure_admin. ok otherwise.
Status check_exposure(const ServerOptions& options);

}  // namespace herald::http::detail
