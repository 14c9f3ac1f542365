// herald::http::Server on Boost.Asio and Boost.Beast (docs/http-server.md).
//
// Threads: options.io_threads I/O threads, each running its own io_context; a connection lives on
// one of them (round robin), so its state needs no lock. The acceptor lives on the first. Route
// handlers run on the worker pool (options.worker_threads), never on an I/O thread. Every request
// goes through the RequestPipeline (security checks, routing, access log); this file and
// connection.cpp only move bytes and enforce the transport's deadlines and limits.
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cerrno>
#include <future>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "herald/http.h"
#include "http/connection.h"
#include "http/request_pipeline.h"
#include "http/server_core.h"

namespace herald::http {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using detail::Connection;
using detail::error_code;

// Over-limit connections answered 503 and drained at once; beyond this they are just closed.
constexpr std::size_t kMaxRejecting = 256;
// After the process runs out of file descriptors, accept() fails at once until one is freed:
// wait this long instead of spinning.
constexpr auto kAcceptBackoff = std::chrono::milliseconds(50);
// After the shutdown deadline has closed every connection, how long to wait for them to go.
constexpr auto kForcedCloseWait = std::chrono::seconds(2);

using WorkGuard = asio::executor_work_guard<asio::io_context::executor_type>;

}  // namespace

struct Server::Impl {
  // Constant after construction.
  std::shared_ptr<const Router> router;
  ServerOptions options;

  std::mutex mu;  // guards state and serialises start() with stop(); held for the whole of either
  enum class State { idle, running, stopped } state = State::idle;
  std::atomic_int bound_port{0};

  // Built by start(), torn down by stop() (threads joined) and the destructor. Member order is
  // destruction order in reverse: the acceptor and timer before their io_context, the contexts
  // (whose destruction releases the connections their pending handlers own) before the core.
  std::shared_ptr<detail::ServerCore> core;
  std::vector<std::unique_ptr<asio::io_context>> contexts;
  std::vector<WorkGuard> guards;
  std::unique_ptr<tcp::acceptor> acceptor;        // on contexts[0]; used only on its thread
  std::unique_ptr<asio::steady_timer> backoff;    // on contexts[0]
  std::size_t next_context = 0;                   // round robin; only on contexts[0]'s thread
  std::atomic<std::int64_t> last_limit_log_ns{0};  // rate-limits the connection-limit warning
  std::vector<std::thread> threads;

  void accept();
  void on_accept(const error_code& ec, tcp::socket socket) noexcept;
  void admit(tcp::socket socket);
  void run_io(asio::io_context& ctx) noexcept;
  void shut_down();
};

void Server::Impl::accept() {
  auto& ctx = *contexts[next_context++ % contexts.size()];
  acceptor->async_accept(ctx, [this](const error_code& ec, tcp::socket socket) { on_accept(ec, std::move(socket)); });
}

void Server::Impl::on_accept(const error_code& ec, tcp::socket socket) noexcept {
  try {
    if (ec == asio::error::operation_aborted || !acceptor->is_open()) return;  // stop() closed it
    if (ec == asio::error::no_descriptors || ec == asio::error::no_buffer_space || ec == asio::error::no_memory ||
        ec.value() == ENFILE) {
      spdlog::warn("http accept: {}; retrying in {} ms", ec.message(), kAcceptBackoff.count());
      backoff->expires_after(kAcceptBackoff);
      backoff->async_wait([this](const error_code& wec) {
        if (!wec && acceptor->is_open()) accept();
      });
      return;
    }
    if (!ec) admit(std::move(socket));
    accept();
  } catch (const std::exception& e) {
    // Allocation failure: try again shortly rather than stop accepting for good.
    spdlog::error("http accept: {}", e.what());
    try {
      backoff->expires_after(kAcceptBackoff);
      backoff->async_wait([this](const error_code& wec) {
        if (!wec && acceptor->is_open()) accept();
      });
    } catch (...) {
    }
  }
}

void Server::Impl::admit(tcp::socket socket) {
  if (core->stopping.load()) return;  // closed by the socket's destructor
  error_code ec;
  // Every response is written in one go; Nagle would hold a keep-alive response's last segment
  // until the client's delayed ACK (40 ms on Linux).
  socket.set_option(tcp::no_delay(true), ec);
  const bool counted = core->open_connections.load() < options.max_connections;
  if (!counted) {
    const auto now = std::chrono::steady_clock::now().time_since_epoch().count();
    auto last = last_limit_log_ns.load();
    if (now - last > 1'000'000'000 && last_limit_log_ns.compare_exchange_strong(last, now)) {
      spdlog::warn("http: {} connections open (the limit): new ones are answered 503", options.max_connections);
    }
    if (core->rejecting.load() >= kMaxRejecting) return;  // closed without an answer
  }
  (counted ? core->open_connections : core->rejecting).fetch_add(1);
  std::shared_ptr<Connection> c;
  try {
    c = std::make_shared<Connection>(core, std::move(socket), counted);
  } catch (...) {
    (counted ? core->open_connections : core->rejecting).fetch_sub(1);
    throw;
  }
  c->set_registration(core->track(c));
  asio::post(c->executor(), [c, counted] {
    if (counted) {
      c->start();
    } else {
      c->reject();
    }
  });
}

void Server::Impl::run_io(asio::io_context& ctx) noexcept {
  while (true) {
    try {
      ctx.run();
      return;
    } catch (const std::exception& e) {
      // A handler let an exception through; the connection it belonged to is dropped with its
      // handler, the others carry on.
      spdlog::error("http I/O thread: {}", e.what());
    } catch (...) {
      spdlog::error("http I/O thread: unknown exception");
    }
  }
}

Server::Server(std::shared_ptr<const Router> router, ServerOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->router = std::move(router);
  impl_->options = std::move(options);
}

Server::~Server() { stop(); }

Status Server::start() {
  auto& d = *impl_;
  std::lock_guard lock(d.mu);
  if (d.state != Impl::State::idle) return Status::failed_precondition("server already started or stopped");
  const auto& o = d.options;
  if (!d.router) return Status::invalid_argument("server needs a router");
  if (o.port < 0 || o.port > 65535) return Status::invalid_argument("port must be in [0, 65535]: " + std::to_string(o.port));
  if (o.host.empty()) return Status::invalid_argument("host must not be empty");
  if (o.worker_threads < 1) return Status::invalid_argument("worker_threads must be >= 1");
  if (o.io_threads < 1) return Status::invalid_argument("io_threads must be >= 1");
  if (o.max_connections < 1 || o.max_queued_requests < 1 || o.max_header_bytes < 64 || o.max_uri_bytes < 1) {
    return Status::invalid_argument("max_connections, max_queued_requests and max_uri_bytes must be >= 1, "
                                    "max_header_bytes >= 64");
  }
  using std::chrono::milliseconds;
  for (auto t : {o.header_timeout, o.body_timeout, o.idle_timeout, o.write_timeout, o.handler_timeout}) {
    if (t <= milliseconds(0)) return Status::invalid_argument("every HTTP timeout must be > 0 ms");
  }
  if (o.shutdown_timeout < milliseconds(0)) return Status::invalid_argument("shutdown_timeout must be >= 0 ms");
  HERALD_RETURN_IF_ERROR(detail::check_exposure(o));

  try {
    d.core = std::make_shared<detail::ServerCore>(d.router, o);
    for (int i = 0; i < o.io_threads; ++i) d.contexts.push_back(std::make_unique<asio::io_context>(1));

    error_code ec;
    tcp::resolver resolver(*d.contexts[0]);
    auto endpoints = resolver.resolve(o.host, std::to_string(o.port),
                                      tcp::resolver::passive | tcp::resolver::numeric_service, ec);
    if (ec || endpoints.empty()) {
      d.contexts.clear();
      d.core.reset();
      return Status::invalid_argument("cannot resolve host '" + o.host + "': " + ec.message());
    }
    const tcp::endpoint endpoint = endpoints.begin()->endpoint();
    d.acceptor = std::make_unique<tcp::acceptor>(*d.contexts[0]);
    d.backoff = std::make_unique<asio::steady_timer>(*d.contexts[0]);
    // SO_REUSEADDR for quick restarts; never SO_REUSEPORT, which would let a second process bind
    // the same port and silently share its traffic, so that "in use" stays an error.
    d.acceptor->open(endpoint.protocol(), ec);
    if (!ec) d.acceptor->set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) d.acceptor->bind(endpoint, ec);
    if (!ec) d.acceptor->listen(asio::socket_base::max_listen_connections, ec);
    if (!ec) d.bound_port = d.acceptor->local_endpoint(ec).port();
    if (ec) {
      d.acceptor.reset();
      d.backoff.reset();
      d.contexts.clear();
      d.core.reset();
      return Status::unavailable("cannot bind " + o.host + ":" + std::to_string(o.port) + " (in use or not permitted): " +
                                 ec.message());
    }
    if (Status s = d.core->pool.start(o.worker_threads); !s) {
      d.shut_down();
      return s;
    }
    for (auto& ctx : d.contexts) d.guards.emplace_back(ctx->get_executor());
    for (auto& ctx : d.contexts) {
      auto* c = ctx.get();
      d.threads.emplace_back([&d, c] { d.run_io(*c); });
    }
    asio::post(*d.contexts[0], [&d] {
      try {
        d.accept();
      } catch (const std::exception& e) {
        spdlog::error("http: cannot accept: {}", e.what());
      }
    });
  } catch (const std::exception& e) {
    d.shut_down();
    return Status::unavailable(std::string("cannot start the HTTP server: ") + e.what());
  }
  d.state = Impl::State::running;
  spdlog::info("http listening on {}:{} ({} I/O threads, {} workers)", o.host, d.bound_port.load(), o.io_threads,
               o.worker_threads);
  return Status::ok();
}

int Server::port() const { return impl_->bound_port.load(); }

void Server::stop() {
  auto& d = *impl_;
  std::lock_guard lock(d.mu);
  if (d.state == Impl::State::running) {
    d.shut_down();
    spdlog::info("http server on port {} stopped", d.bound_port.load());
  }
  d.state = Impl::State::stopped;
}

// Stops accepting, lets requests in flight finish until the shutdown deadline, closes what is left,
// stops the workers and joins the I/O threads. Safe on a half-started server.
void Server::Impl::shut_down() {
  const auto deadline = std::chrono::steady_clock::now() + options.shutdown_timeout;
  if (core) core->stopping = true;
  if (acceptor && !threads.empty()) {
    // On the acceptor's thread, so that no accept completes after this returns: from here on the
    // port refuses connections.
    std::promise<void> closed;
    asio::post(*contexts[0], [&] {
      error_code ec;
      acceptor->close(ec);
      try {
        backoff->cancel();
      } catch (...) {
      }
      closed.set_value();
    });
    closed.get_future().wait();
  }
  if (core && !threads.empty()) {
    for (auto& c : core->live()) asio::post(c->executor(), [c] { c->begin_shutdown(); });
    if (!core->wait_until_empty(deadline)) {
      auto left = core->live();
      spdlog::warn("http: {} connection(s) still busy after the {} ms shutdown deadline; closing them", left.size(),
                   options.shutdown_timeout.count());
      for (auto& c : left) asio::post(c->executor(), [c] { c->force_close(); });
      left.clear();
      // A connection whose handler still runs is freed when the worker lets go of it, below.
      (void)core->wait_until_empty(std::chrono::steady_clock::now() + kForcedCloseWait);
    }
  }
  // Waits for handlers still running: they may use what the server's owner destroys next.
  if (core) core->pool.stop();
  guards.clear();
  for (auto& ctx : contexts) ctx->stop();
  for (auto& t : threads) {
    if (t.joinable()) t.join();
  }
  threads.clear();
  acceptor.reset();
  backoff.reset();
  contexts.clear();  // destroys handlers never run, and the connections only they still held
}

}  // namespace herald::http
