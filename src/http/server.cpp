// herald::http::Server on cpp-httplib. httplib does the sockets and the thread pool; all routing,
// error bodies, auth and body limits are ours so that every answer has the JSON error shape.
#include <httplib.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <mutex>
#include <thread>

#include "herald/http.h"
#include "core/log_text.h"
#include "http/request_pipeline.h"

namespace herald::http {

struct Server::Impl {
  // Constant after construction.
  std::shared_ptr<const Router> router;
  ServerOptions options;
  std::unique_ptr<detail::RequestPipeline> pipeline;  // built by start()

  httplib::Server server;
  std::mutex mu;            // guards thread, state, bound_port
  std::thread thread;       // runs listen_after_bind
  enum class State { idle, running, stopped } state = State::idle;
  std::atomic_int bound_port{0};
  std::atomic_bool listen_returned{false};  // set by `thread` when listen_after_bind returns

  void handle(const httplib::Request& in, httplib::Response& out);
};

void Server::Impl::handle(const httplib::Request& in, httplib::Response& out) {
  detail::RawRequest raw;
  raw.method = in.method;
  raw.target = in.target;
  raw.version = in.version;
  raw.body = in.body;
  raw.remote_addr = in.remote_addr;
  for (const auto& [k, v] : in.headers) {
    // httplib adds the peer's address as pseudo-headers; they are not the client's.
    if (k == "REMOTE_ADDR" || k == "REMOTE_PORT" || k == "LOCAL_ADDR" || k == "LOCAL_PORT") continue;
    raw.headers.emplace_back(k, v);
  }
  auto answer = pipeline->handle(raw);
  const Response& r = answer.response;
  out.status = r.status;
  for (const auto& [k, v] : r.headers) out.set_header(k, v);
  out.set_header("X-Request-Id", answer.request_id);
  if (!r.content_type.empty()) out.set_content(r.body, r.content_type.c_str());
}

Server::Server(std::shared_ptr<const Router> router, ServerOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->router = std::move(router);
  impl_->options = std::move(options);
}

Server::~Server() { stop(); }

Status Server::start() {
  std::lock_guard lock(impl_->mu);
  if (impl_->state != Impl::State::idle) return Status::failed_precondition("server already started or stopped");
  const auto& o = impl_->options;
  if (!impl_->router) return Status::invalid_argument("server needs a router");
  if (o.port < 0 || o.port > 65535) return Status::invalid_argument("port must be in [0, 65535]: " + std::to_string(o.port));
  if (o.host.empty()) return Status::invalid_argument("host must not be empty");
  if (o.worker_threads < 1) return Status::invalid_argument("worker_threads must be >= 1");
  HERALD_RETURN_IF_ERROR(detail::check_exposure(o));
  impl_->pipeline = std::make_unique<detail::RequestPipeline>(impl_->router, o);

  auto& s = impl_->server;
  Impl* impl = impl_.get();
  // httplib rejects bodies over this before reading them (413); one byte of slack is not needed
  // because the check is "greater than".
  s.set_payload_max_length(o.body_limit_bytes);
  s.set_read_timeout(o.read_timeout);
  s.set_write_timeout(o.write_timeout);
  int threads = o.worker_threads;
  s.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  auto h = [impl](const httplib::Request& in, httplib::Response& out) { impl->handle(in, out); };
  s.Get(".*", h);
  s.Post(".*", h);
  s.Put(".*", h);
  s.Patch(".*", h);
  s.Delete(".*", h);
  s.Options(".*", h);
  // httplib answers some requests itself (413 over the limit, 400 for a malformed request line);
  // give those the JSON error body too. Our own responses already have a body and are left alone.
  s.set_error_handler(httplib::Server::HandlerWithResponse([limit = o.body_limit_bytes](const httplib::Request& in,
                                                                                       httplib::Response& out) {
    if (!out.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    Response r;
    if (out.status == 413) {
      r = Response::error(413, "payload_too_large", "body exceeds the limit of " + std::to_string(limit) + " bytes");
    } else if (out.status == 404) {
      r = Response::error(404, "route_not_found", "no route for this path");
    } else {
      r = Response::error(out.status, out.status >= 500 ? "internal" : "bad_request", "request rejected by the server");
    }
    out.set_content(r.body, r.content_type.c_str());
    if (out.status == 413) spdlog::info("http {} -> 413 (body over limit)", herald::detail::escape_for_log(in.method));
    return httplib::Server::HandlerResponse::Handled;
  }));
  s.set_exception_handler([](const httplib::Request&, httplib::Response& out, std::exception_ptr ep) {
    std::string what = "unhandled exception";
    try {
      if (ep) std::rethrow_exception(ep);
    } catch (const std::exception& ex) {
      what += std::string(": ") + ex.what();
    } catch (...) {
    }
    auto r = Response::error(500, "internal", what);
    out.status = 500;
    out.set_content(r.body, r.content_type.c_str());
  });

  // httplib's default also sets SO_REUSEPORT, which lets a second process bind the same port and
  // silently share its traffic; keep only SO_REUSEADDR (quick restarts) so "in use" is an error.
  s.set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, reinterpret_cast<const void*>(&yes), sizeof(yes));
  });

  int port = o.port;
  if (port == 0) {
    port = s.bind_to_any_port(o.host);
    if (port < 0) return Status::unavailable("cannot bind " + o.host + " on any port");
  } else if (!s.bind_to_port(o.host, port)) {
    return Status::unavailable("cannot bind " + o.host + ":" + std::to_string(port) + " (in use or not permitted)");
  }
  impl_->bound_port = port;
  impl_->thread = std::thread([impl] {
    if (!impl->server.listen_after_bind()) spdlog::error("http server stopped listening unexpectedly");
    impl->listen_returned = true;
  });
  // httplib's stop() is a no-op until the listen loop runs; wait for it so that a stop() right
  // after start() cannot leave the thread listening forever.
  while (!s.is_running() && !impl_->listen_returned) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  impl_->state = Impl::State::running;
  spdlog::info("http listening on {}:{}", o.host, port);
  return Status::ok();
}

int Server::port() const { return impl_->bound_port.load(); }

void Server::stop() {
  std::lock_guard lock(impl_->mu);
  if (impl_->state == Impl::State::running) {
    impl_->server.stop();
    if (impl_->thread.joinable()) impl_->thread.join();
    spdlog::info("http server on port {} stopped", impl_->bound_port.load());
  }
  impl_->state = Impl::State::stopped;
}

}  // namespace herald::http
