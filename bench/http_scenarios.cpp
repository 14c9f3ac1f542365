// HTTP scenarios: herald::http::Server under closed-loop keep-alive load from a raw-socket load
// generator in this file (one epoll thread, so that the generator costs one core at most and no
// client library adds its own buffering or Nagle delays):
//   http_health                  GET /health on a router with one route, 64 keep-alive connections
//   http_health_1conn            the same on one connection (per-request latency, p50)
//   http_register                POST /api/users (the shop's users module on an EventSystem over a
//                                fresh --store store), 16 keep-alive connections
//   http_health_under_slowloris  http_health again, then the same with 1,000 connections holding
//                                half-sent request headers open (ratio to the first run)
//   http_signin                  POST /api/sessions (shop auth: one Argon2id verification and a
//                                session write each), 16 keep-alive connections, http_health beside it
//   http_cart_authenticated      GET /api/carts/{id} with a bearer token (Access::user: the token's
//                                session read and checked per request), 64 connections, beside the
//                                same cart read on a public route in the same run
// A connection the server closes is reopened; a request that got no response counts as an error.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench.h"
#include "herald/http.h"
#include "herald/system.h"
#include "auth/accounts.h"
#include "auth/auth.h"
#include "carts/carts.h"
#include "common/common.h"
#include "users/users.h"

namespace herald::bench {
namespace {

using SteadyClock = std::chrono::steady_clock;

// Builds the bytes of request `seq` sent on connection `conn`.
using RequestMaker = std::function<std::string(std::size_t conn, std::uint64_t seq)>;

struct LoadResult {
  std::int64_t ok = 0;          // responses with the expected status
  std::int64_t bad_status = 0;  // complete responses with another status
  std::int64_t lost = 0;        // requests whose connection closed or failed before a response
  std::int64_t reconnects = 0;
  double seconds = 0;
  std::map<int, std::int64_t> statuses;
  std::vector<std::int64_t> latencies_ns;  // one per complete response
};

int connect_loopback(int port, bool non_blocking) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (non_blocking ? SOCK_NONBLOCK : 0), 0);
  if (fd < 0) return -1;
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  // A blocking connect to a server that stopped accepting would otherwise wait for minutes of SYN
  // retries (Linux bounds connect() by the send timeout).
  timeval two_seconds{2, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &two_seconds, sizeof two_seconds);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 && errno != EINPROGRESS) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Length of the first complete response in `buf` (head + Content-Length body) and its status, or
// 0 while incomplete. Both servers measured here always send Content-Length.
std::size_t complete_response(const std::string& buf, int& status) {
  auto head_end = buf.find("\r\n\r\n");
  if (head_end == std::string::npos) return 0;
  status = buf.size() > 12 ? std::atoi(buf.c_str() + 9) : 0;
  std::size_t length = 0;
  std::size_t line = buf.find("\r\n") + 2;
  while (line < head_end) {
    auto eol = buf.find("\r\n", line);
    constexpr std::string_view kName = "content-length:";
    if (eol - line > kName.size() && strncasecmp(buf.c_str() + line, kName.data(), kName.size()) == 0) {
      length = std::strtoull(buf.c_str() + line + kName.size(), nullptr, 10);
    }
    line = eol + 2;
  }
  if (buf.size() < head_end + 4 + length) return 0;
  return head_end + 4 + length;
}

// One epoll thread driving `connections` keep-alive connections for `seconds`, each sending its
// next request as soon as the previous response is complete.
Result<LoadResult> run_load(int port, int connections, double seconds, const RequestMaker& make, int expect_status) {
  struct Conn {
    int fd = -1;
    std::string out, in;
    std::size_t sent = 0;
    bool connecting = true, in_flight = false, want_write = false;
    std::int64_t started_ns = 0;
  };
  int ep = ::epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) return Status::unavailable(std::string("epoll_create1: ") + std::strerror(errno));
  std::vector<Conn> conns(static_cast<std::size_t>(connections));
  LoadResult res;
  res.latencies_ns.reserve(1 << 20);
  std::uint64_t next_seq = 0;  // across reconnects, so that no request is built twice

  auto watch = [&](std::size_t i, bool write, int op) {
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP | (write ? EPOLLOUT : 0u);
    ev.data.u64 = i;
    conns[i].want_write = write;
    ::epoll_ctl(ep, op, conns[i].fd, &ev);
  };
  auto open = [&](std::size_t i) {
    Conn& c = conns[i];
    c = Conn{};
    c.fd = connect_loopback(port, true);
    if (c.fd < 0) return false;
    watch(i, true, EPOLL_CTL_ADD);  // writable once connected
    return true;
  };
  auto send_more = [&](std::size_t i) {
    Conn& c = conns[i];
    while (c.sent < c.out.size()) {
      ssize_t n = ::send(c.fd, c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EAGAIN) break;
        return false;
      }
      c.sent += static_cast<std::size_t>(n);
    }
    const bool pending = c.sent < c.out.size();
    if (pending != c.want_write) watch(i, pending, EPOLL_CTL_MOD);
    return true;
  };
  auto start_request = [&](std::size_t i) {
    Conn& c = conns[i];
    c.out = make(i, next_seq++);
    c.sent = 0;
    c.in_flight = true;
    c.started_ns = now_ns();
    return send_more(i);
  };
  auto reopen = [&](std::size_t i) {
    Conn& c = conns[i];
    if (c.in_flight) ++res.lost;
    ::epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, nullptr);
    ::close(c.fd);
    ++res.reconnects;
    c.fd = -1;
    if (!open(i)) ++res.lost;
  };

  for (std::size_t i = 0; i < conns.size(); ++i) {
    if (!open(i)) {
      for (auto& c : conns) {
        if (c.fd >= 0) ::close(c.fd);
      }
      ::close(ep);
      return Status::unavailable(std::string("cannot connect: ") + std::strerror(errno));
    }
  }
  const auto t0 = SteadyClock::now();
  const auto until = t0 + std::chrono::duration_cast<SteadyClock::duration>(std::chrono::duration<double>(seconds));
  std::vector<epoll_event> events(conns.size());
  char buf[65536];
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - SteadyClock::now()).count();
    if (left <= 0) break;
    int n = ::epoll_wait(ep, events.data(), static_cast<int>(events.size()), static_cast<int>(left));
    for (int k = 0; k < n; ++k) {
      const std::size_t i = events[static_cast<std::size_t>(k)].data.u64;
      const std::uint32_t what = events[static_cast<std::size_t>(k)].events;
      Conn& c = conns[i];
      if (c.fd < 0) continue;
      if (c.connecting && (what & EPOLLOUT)) {
        int err = 0;
        socklen_t len = sizeof err;
        ::getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
          reopen(i);
          continue;
        }
        c.connecting = false;
        if (!start_request(i)) reopen(i);
        continue;
      }
      if ((what & EPOLLOUT) && !send_more(i)) {
        reopen(i);
        continue;
      }
      if (what & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP)) {
        bool closed = false;
        while (true) {
          ssize_t got = ::recv(c.fd, buf, sizeof buf, 0);
          if (got > 0) {
            c.in.append(buf, static_cast<std::size_t>(got));
            continue;
          }
          closed = got == 0 || errno != EAGAIN;
          break;
        }
        int status = 0;
        std::size_t used = 0;
        while (c.in_flight && (used = complete_response(c.in, status)) > 0) {
          res.latencies_ns.push_back(now_ns() - c.started_ns);
          ++res.statuses[status];
          (status == expect_status ? res.ok : res.bad_status) += 1;
          c.in.erase(0, used);
          c.in_flight = false;
          if (!closed && SteadyClock::now() < until && !start_request(i)) closed = true;
        }
        if (closed) reopen(i);
      }
    }
  }
  res.seconds = seconds_between(t0, SteadyClock::now());
  for (auto& c : conns) {
    if (c.fd >= 0) ::close(c.fd);
  }
  ::close(ep);
  return res;
}

// Connections that sent the start of a request header and nothing more: what a slowloris attack
// holds open. Closed on destruction.
class HalfSentConnections {
 public:
  static Result<std::unique_ptr<HalfSentConnections>> open(int port, int count) {
    std::unique_ptr<HalfSentConnections> h(new HalfSentConnections());
    static const std::string kHalf = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
    for (int i = 0; i < count; ++i) {
      int fd = connect_loopback(port, false);
      if (fd < 0) return Status::unavailable(std::string("slowloris connect: ") + std::strerror(errno));
      h->fds_.push_back(fd);
      if (::send(fd, kHalf.data(), kHalf.size(), MSG_NOSIGNAL) < 0) {
        return Status::unavailable(std::string("slowloris send: ") + std::strerror(errno));
      }
    }
    return h;
  }
  ~HalfSentConnections() {
    for (int fd : fds_) ::close(fd);
  }
  // How many the server has closed so far (a read sees EOF, a reset or a response).
  int closed_by_server() const {
    int closed = 0;
    for (int fd : fds_) {
      char c;
      ssize_t n = ::recv(fd, &c, 1, MSG_DONTWAIT | MSG_PEEK);
      if (n >= 0 || errno != EAGAIN) ++closed;
    }
    return closed;
  }

 private:
  HalfSentConnections() = default;
  std::vector<int> fds_;
};

// The 1,000 slow connections, the load connections and the server's side of both need more file
// descriptors than a default soft limit of 1024.
void raise_fd_limit() {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &lim);
  }
}

// Access-log lines at info level would make the benchmark measure the log sink.
class QuietLogs {
 public:
  QuietLogs() : saved_(spdlog::get_level()) { spdlog::set_level(spdlog::level::warn); }
  ~QuietLogs() { spdlog::set_level(saved_); }
  QuietLogs(const QuietLogs&) = delete;
  QuietLogs& operator=(const QuietLogs&) = delete;

 private:
  spdlog::level::level_enum saved_;
};

// A server with one GET /health route, answering what a load balancer's probe expects.
class HealthServer {
 public:
  static Result<std::unique_ptr<HealthServer>> start() {
    auto router = std::make_shared<http::Router>();
    HERALD_RETURN_IF_ERROR(router->get("/health", [](const http::Request&) {
      return http::Response::ok({{"status", "up"}});
    }));
    http::ServerOptions o;
    o.port = 0;
    std::unique_ptr<HealthServer> s(new HealthServer());
    s->server_ = std::make_unique<http::Server>(router, o);
    HERALD_RETURN_IF_ERROR(s->server_->start());
    return s;
  }
  int port() const { return server_->port(); }

 private:
  HealthServer() = default;
  std::unique_ptr<http::Server> server_;
};

const RequestMaker kHealthRequest = [](std::size_t, std::uint64_t) {
  return std::string("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
};

Json load_line(std::string_view scenario, StoreKind kind, int connections, LoadResult& r) {
  Json out = base_result(scenario, kind, r.ok, r.seconds);
  out["requests_per_s"] = out["events_per_s"];
  out["connections"] = connections;
  out["bad_status"] = r.bad_status;
  out["lost"] = r.lost;
  out["reconnects"] = r.reconnects;
  if (r.bad_status > 0) {
    Json statuses = Json::object();
    for (const auto& [status, count] : r.statuses) statuses[std::to_string(status)] = count;
    out["statuses"] = statuses;
  }
  out["latency_of"] = "one request, sent to complete response";
  put_latency(out, summarize(r.latencies_ns));
  return out;
}

Result<Json> run_health(const Options& opt, std::string_view name, int connections) {
  raise_fd_limit();
  QuietLogs quiet;
  auto server = HealthServer::start();
  if (!server) return server.status();
  auto r = run_load((*server)->port(), connections, opt.seconds, kHealthRequest, 200);
  if (!r) return r.status();
  return load_line(name, StoreKind::memory, connections, *r);
}

Result<Json> run_http_health(const Options& opt) { return run_health(opt, "http_health", 64); }
Result<Json> run_http_health_1conn(const Options& opt) { return run_health(opt, "http_health_1conn", 1); }

Result<Json> run_http_health_under_slowloris(const Options& opt) {
  constexpr int kConnections = 64, kSlow = 1000;
  raise_fd_limit();
  QuietLogs quiet;
  auto server = HealthServer::start();
  if (!server) return server.status();
  const int port = (*server)->port();
  auto plain = run_load(port, kConnections, opt.seconds, kHealthRequest, 200);
  if (!plain) return plain.status();
  auto slow = HalfSentConnections::open(port, kSlow);
  if (!slow) return slow.status();
  auto attacked = run_load(port, kConnections, opt.seconds, kHealthRequest, 200);
  if (!attacked) return attacked.status();
  const int closed_early = (*slow)->closed_by_server();
  Json out = load_line("http_health_under_slowloris", StoreKind::memory, kConnections, *attacked);
  out["slow_connections"] = kSlow;
  out["slow_closed_during_run"] = closed_early;
  const double base = plain->seconds > 0 ? static_cast<double>(plain->ok) / plain->seconds : 0;
  out["baseline_requests_per_s"] = round_to(base, 1);
  out["baseline_p99_us"] = round_to(summarize(plain->latencies_ns).p99_us, 1);
  out["ratio_to_baseline"] = base > 0 ? round_to(out["requests_per_s"].get<double>() / base, 3) : 0.0;
  return out;
}

// A request that hashes a password with Argon2id takes about 0.1 s of a core (64 MiB): 16
// connections on 2 cores answer their first requests only after about a second, so a shorter
// window would measure nothing.
double argon2_window(double seconds) { return std::max(seconds, 3.0); }

Result<Json> run_http_register(const Options& opt) {
  constexpr int kConnections = 16;
  raise_fd_limit();
  auto fresh = FreshStore::open(opt, opt.kind);
  if (!fresh) return fresh.status();
  SystemConfig c;
  c.http.port = 0;
  c.log_level = "warn";
  c.shutdown_timeout = std::chrono::milliseconds(5000);
  auto system = std::make_unique<EventSystem>(c, (*fresh)->shared());
  HERALD_RETURN_IF_ERROR(system->add_module(shop::users::make_module()));
  HERALD_RETURN_IF_ERROR(system->add_module(shop::auth::make_module()));
  HERALD_RETURN_IF_ERROR(system->initialize());
  // A run prefix keeps the addresses unique if the same store were ever reused.
  const std::string run_id = std::to_string(now_ns());
  RequestMaker make = [&run_id](std::size_t conn, std::uint64_t seq) {
    std::string body = R"({"email":"u)" + run_id + "-" + std::to_string(conn) + "-" + std::to_string(seq) +
                       R"(@bench.example","name":"Bench User","password":"correct horse battery staple"})";
    return "POST /api/users HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\n\r\n" + body;
  };
  auto r = run_load(system->http_port(), kConnections, argon2_window(opt.seconds), make, 201);
  auto stats = (*fresh)->store().stats();
  (void)system->shutdown(SteadyClock::now() + std::chrono::seconds(5));  // closes the store too
  if (!r) return r.status();
  Json out = load_line("http_register", opt.kind, kConnections, *r);
  out["route"] = "POST /api/users (shop users and auth modules: one Argon2id hash per registration)";
  // What a registration costs on disk (SQLite): the database once the closing checkpoint has
  // folded the WAL in, over the events it holds (EmailClaimed and UserRegistered per user).
  if (opt.kind == StoreKind::sqlite) {
    std::int64_t bytes = 0;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator((*fresh)->directory(), ec)) {
      if (entry.is_regular_file(ec)) bytes += static_cast<std::int64_t>(entry.file_size(ec));
    }
    if (stats && stats->total_events > 0) {
      out["stored_events"] = stats->total_events;
      out["bytes_per_event"] = round_to(static_cast<double>(bytes) / static_cast<double>(stats->total_events), 1);
    }
  }
  return out;
}

constexpr std::string_view kBenchPassword = "correct horse battery staple";

// Users registered and signed in directly through shop::auth (the state is the store's, so the
// system's own Accounts sees them), for the authenticated scenarios.
struct BenchUsers {
  std::vector<std::string> emails, ids, tokens;
};
Result<BenchUsers> make_users(EventStore& store, int count, bool sign_in) {
  shop::auth::Accounts accounts(store, nullptr, {});
  BenchUsers u;
  const std::string run_id = std::to_string(now_ns());
  for (int i = 0; i < count; ++i) {
    u.emails.push_back("b" + run_id + "-" + std::to_string(i) + "@bench.example");
    auto id = accounts.register_account(u.emails.back(), "Bench User", kBenchPassword, {});
    if (!id) return id.status();
    u.ids.push_back(*id);
    if (sign_in) {
      auto s = accounts.sign_in(u.emails.back(), kBenchPassword, "bench");
      if (!s) return s.status();
      if (s->kind != shop::auth::SignInOutcome::Kind::signed_in) return Status::internal("bench sign-in refused");
      u.tokens.push_back(s->session.token);
    }
  }
  return u;
}

// The cart read of GET /api/carts/{id} on a public route: the baseline the token check is measured
// against (same document read, same answer, no Authenticator).
class PublicCartReadModule final : public Module {
 public:
  std::string name() const override { return "bench_public_cart"; }
  Status register_routes(http::Router& router, ModuleContext& ctx) override {
    EventStore* store = &ctx.store();
    return router.get("/bench/carts/{user_id}", [store](const http::Request& req) {
      auto doc = shop::read_document(*store, shop::carts::kCartsCollection, req.param("user_id"));
      if (!doc) return shop::error_response(doc.status());
      Json lines = Json::array();
      for (const auto& [pid, q] : doc->at("items").items()) lines.push_back({{"product_id", pid}, {"quantity", q}});
      return http::Response::ok({{"user_id", doc->value("user_id", "")}, {"items", std::move(lines)}});
    });
  }
};

std::unique_ptr<EventSystem> shop_system(FreshStore& fresh) {
  SystemConfig c;
  c.http.port = 0;
  c.log_level = "warn";
  c.shutdown_timeout = std::chrono::milliseconds(5000);
  return std::make_unique<EventSystem>(c, fresh.shared());
}

Result<Json> run_http_signin(const Options& opt) {
  constexpr int kConnections = 16;
  raise_fd_limit();
  QuietLogs quiet;
  auto health = HealthServer::start();
  if (!health) return health.status();
  auto base = run_load((*health)->port(), 64, opt.seconds, kHealthRequest, 200);
  if (!base) return base.status();
  auto fresh = FreshStore::open(opt, opt.kind);
  if (!fresh) return fresh.status();
  auto system = shop_system(**fresh);
  HERALD_RETURN_IF_ERROR(system->add_module(shop::users::make_module()));
  HERALD_RETURN_IF_ERROR(system->add_module(shop::auth::make_module()));
  HERALD_RETURN_IF_ERROR(system->initialize());
  auto users = make_users((*fresh)->store(), kConnections, false);
  if (!users) return users.status();
  RequestMaker make = [&users](std::size_t conn, std::uint64_t) {
    std::string body = R"({"email":")" + users->emails[conn % users->emails.size()] + R"(","password":")" +
                       std::string(kBenchPassword) + R"("})";
    return "POST /api/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\n\r\n" + body;
  };
  auto r = run_load(system->http_port(), kConnections, argon2_window(opt.seconds), make, 201);
  (void)system->shutdown(SteadyClock::now() + std::chrono::seconds(5));
  if (!r) return r.status();
  Json out = load_line("http_signin", opt.kind, kConnections, *r);
  out["route"] = "POST /api/sessions (Argon2id t=2, m=64 MiB verification + session write)";
  out["baseline"] = "http_health, 64 connections, same run";
  out["baseline_requests_per_s"] = round_to(base->seconds > 0 ? static_cast<double>(base->ok) / base->seconds : 0, 1);
  return out;
}

Result<Json> run_http_cart_authenticated(const Options& opt) {
  constexpr int kConnections = 64, kUsers = 64;
  raise_fd_limit();
  QuietLogs quiet;
  auto health = HealthServer::start();
  if (!health) return health.status();
  auto health_run = run_load((*health)->port(), kConnections, opt.seconds, kHealthRequest, 200);
  if (!health_run) return health_run.status();
  auto fresh = FreshStore::open(opt, opt.kind);
  if (!fresh) return fresh.status();
  auto system = shop_system(**fresh);
  HERALD_RETURN_IF_ERROR(system->add_module(shop::users::make_module()));
  HERALD_RETURN_IF_ERROR(system->add_module(shop::auth::make_module()));
  HERALD_RETURN_IF_ERROR(system->add_module(shop::carts::make_module()));
  HERALD_RETURN_IF_ERROR(system->add_module(std::make_unique<PublicCartReadModule>()));
  HERALD_RETURN_IF_ERROR(system->initialize());
  auto users = make_users((*fresh)->store(), kUsers, true);
  if (!users) return users.status();
  // The carts exist once "carts.view" has handled every CartInitialized.
  for (const auto& id : users->ids) {
    const auto deadline = SteadyClock::now() + std::chrono::seconds(30);
    while (!(*fresh)->store().read_document(shop::carts::kCartsCollection, id)) {
      if (SteadyClock::now() > deadline) return Status::timeout("bench carts were not initialised");
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  RequestMaker public_read = [&users](std::size_t conn, std::uint64_t) {
    return "GET /bench/carts/" + users->ids[conn % users->ids.size()] + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  };
  RequestMaker user_read = [&users](std::size_t conn, std::uint64_t) {
    const std::size_t i = conn % users->ids.size();
    return "GET /api/carts/" + users->ids[i] + " HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " +
           users->tokens[i] + "\r\n\r\n";
  };
  // Alternating halves, so drift (page cache, CPU frequency) lands on both sides evenly.
  LoadResult plain, authed;
  for (int round = 0; round < 2; ++round) {
    auto p = run_load(system->http_port(), kConnections, opt.seconds / 2, public_read, 200);
    if (!p) return p.status();
    auto a = run_load(system->http_port(), kConnections, opt.seconds / 2, user_read, 200);
    if (!a) return a.status();
    for (LoadResult* dst : {&plain, &authed}) {
      LoadResult& src = dst == &plain ? *p : *a;
      dst->ok += src.ok;
      dst->bad_status += src.bad_status;
      dst->lost += src.lost;
      dst->reconnects += src.reconnects;
      dst->seconds += src.seconds;
      for (const auto& [k, v] : src.statuses) dst->statuses[k] += v;
      dst->latencies_ns.insert(dst->latencies_ns.end(), src.latencies_ns.begin(), src.latencies_ns.end());
    }
  }
  (void)system->shutdown(SteadyClock::now() + std::chrono::seconds(5));
  Json out = load_line("http_cart_authenticated", opt.kind, kConnections, authed);
  out["route"] = "GET /api/carts/{id} with a bearer token (Access::user)";
  const double base = plain.seconds > 0 ? static_cast<double>(plain.ok) / plain.seconds : 0;
  out["baseline"] = "the same cart read on a public route, same server, interleaved halves";
  out["baseline_requests_per_s"] = round_to(base, 1);
  out["baseline_p99_us"] = round_to(summarize(plain.latencies_ns).p99_us, 1);
  out["ratio_to_baseline"] = base > 0 ? round_to(out["requests_per_s"].get<double>() / base, 3) : 0.0;
  out["http_health_requests_per_s"] =
      round_to(health_run->seconds > 0 ? static_cast<double>(health_run->ok) / health_run->seconds : 0, 1);
  return out;
}

}  // namespace

void register_http_scenarios(Registry& r) {
  r.add({"http_health", "GET /health, 64 keep-alive connections, closed loop (requests/s, p99)", run_http_health});
  r.add({"http_health_1conn", "GET /health on one keep-alive connection (p50 latency)", run_http_health_1conn});
  r.add({"http_register", "POST /api/users (shop users module on --store), 16 keep-alive connections",
         run_http_register});
  r.add({"http_health_under_slowloris",
         "http_health, then again with 1,000 half-sent request headers open (ratio to the first run)",
         run_http_health_under_slowloris});
  r.add({"http_signin", "POST /api/sessions (Argon2id verification), 16 connections, http_health beside it",
         run_http_signin});
  r.add({"http_cart_authenticated",
         "GET /api/carts/{id} with a bearer token vs the same read on a public route (ratio)",
         run_http_cart_authenticated});
}

}  // namespace herald::bench
