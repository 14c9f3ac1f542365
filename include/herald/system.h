// herald/system.h — the application shell: configuration, modules, lifecycle, health, metrics and
// graceful shutdown (the seed's EventDrivenConfig, owned by the app; no hidden global).
//
//   int main(int argc, char** argv) {
//     auto parsed = herald::load_config(argc, argv);          // flags > HERALD_* env > TOML > defaults
//     if (!parsed) { std::fprintf(stderr, "%s\n", parsed.status().message().c_str()); return 2; }
//     if (parsed->help) { std::fputs(parsed->help->c_str(), stdout); return 0; }
//     herald::EventSystem system(parsed->config);
//     system.add_module(std::make_unique<shop::UsersModule>());
//     system.add_module(std::make_unique<shop::OrdersModule>());
//     if (auto s = system.initialize(); !s) { spdlog::error("{}", s.to_string()); return 1; }
//     return system.run_until_signal();                          // SIGINT/SIGTERM: graceful stop
//   }
//
// A module declares its handlers, routes and health checks; initialize() wires them:
//
//   class UsersModule final : public herald::Module {
//    public:
//     std::string name() const override { return "users"; }
//     herald::Status register_handlers(herald::HandlerRegistrar& r, herald::ModuleContext&) override {
//       return r.add(std::make_shared<UpdateUserStats>());       // config defaults
//     }
//     herald::Status register_routes(herald::http::Router& router, herald::ModuleContext& ctx) override {
//       return router.post("/api/users", [&bus = ctx.bus()](const herald::http::Request& req) { … });
//     }
//   };
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

#include "herald/event_bus.h"
#include "herald/event_store.h"
#include "herald/handler.h"
#include "herald/http.h"
#include "herald/status.h"

namespace herald {

// Operator overrides for one handler, from the TOML table [handlers."<handler name>"]. Each set
// field replaces the value the module chose.
struct HandlerOverride {
  std::optional<int> retry_max_attempts;
  std::optional<std::chrono::milliseconds> retry_initial_delay;
  std::optional<std::chrono::milliseconds> retry_max_delay;
  std::optional<int> lanes;
  std::optional<StartFrom> start_from;
};

// Everything the system needs. Every key is documented in docs/configuration.md. A value type.
// Default: values shown.
struct SystemConfig {
  std::string data_dir = "./data";
  // Empty: "sqlite://<data_dir>/events.db" (see effective_store_url()).
  std::string store_url;
  StoreOptions store;

  // Defaults of every durable handler (retry: --retry-max-attempts, --retry-initial-delay-ms,
  // --retry-max-delay-ms); a module may change them per handler, then handler_overrides apply.
  HandlerOptions handler_defaults;
  std::map<std::string, HandlerOverride> handler_overrides;  // by handler name
  BusOptions bus;
  // Whether a source named bus.use_leases. When none did, parse_config turns leases on for a
  // postgres:// store (the one several instances can share) and leaves them off otherwise.
  bool use_leases_set = false;

  bool http_enabled = true;  // false: initialize() starts no HTTP server (routes still registered)
  http::ServerOptions http;  // host 127.0.0.1, port 8080, body limit 1 MiB, admin token

  std::string smtp_url;      // for the notifications module; empty: e-mails are only logged
  std::string log_level = "info";  // trace, debug, info, warn, error, critical, off
  // "text": human-readable lines; "json": one JSON object per line (docs/operations.md, "Logs").
  std::string log_format = "text";
  std::chrono::milliseconds shutdown_timeout{10'000};  // bus.stop deadline on shutdown
  // /health reports the bus down, naming the handler, while a handler is more than this many
  // events behind the log: one that cannot keep up (a slow SMTP server) shows there, not only in
  // herald_handler_lag_events. 0 turns the rule off. /readyz ignores it.
  std::int64_t health_max_handler_lag = 100'000;
  std::string config_file;   // the TOML file the values came from, if any (informational)

  // store_url, or the sqlite default under data_dir when store_url is empty.
  std::string effective_store_url() const;
};

// The outcome of reading the command line: either a config or a request for help or the version.
struct LoadedConfig {
  SystemConfig config;
  std::optional<std::string> help;     // set for --help: print it and exit 0
  // Set for --version: "<program> <version> (<compiler>, <build type>)\n"; print it and exit 0.
  std::optional<std::string> version;
};

// Builds a config from flags (`args` excludes the program name), the HERALD_* variables in `env`,
// the TOML file named by --config (or HERALD_CONFIG), and the defaults; precedence
// flags > env > file > defaults. invalid_argument with a message naming the flag, variable or file
// line for an unknown flag, a malformed value, an unreadable or malformed TOML file, or an unknown
// TOML key. Pure: reads only `args`, `env` and the file; sets no logger.
Result<LoadedConfig> parse_config(const std::vector<std::string>& args,
                                  const std::map<std::string, std::string>& env,
                                  std::string_view program_name = "herald");
// parse_config over the process's argv and environment.
Result<LoadedConfig> load_config(int argc, const char* const* argv);

// What a module registers its durable handlers through. Used only during EventSystem::initialize().
class HandlerRegistrar {
 public:
  virtual ~HandlerRegistrar() = default;
  // The config's handler defaults (retry, lanes, …), to copy and adjust.
  virtual const HandlerOptions& defaults() const = 0;
  // Registers `handler` with `options` (defaults() when omitted); the config's handler_overrides
  // for its name are applied on top. already_exists for a duplicate handler name; invalid_argument
  // for a null handler or bad options (as EventBus::register_handler).
  virtual Status add(std::shared_ptr<EventHandler> handler) = 0;
  virtual Status add(std::shared_ptr<EventHandler> handler, HandlerOptions options) = 0;
};

// What a module can reach once the store and bus exist. References stay valid until the
// EventSystem is destroyed. Thread-safety: as EventBus / EventStore.
class ModuleContext {
 public:
  virtual ~ModuleContext() = default;
  virtual EventBus& bus() = 0;
  // The bus's view of the store (EventBus::store()): appends through it count as published.
  virtual EventStore& store() = 0;
  virtual std::shared_ptr<EventStore> shared_store() = 0;
  virtual const SystemConfig& config() const = 0;
};

// A named health probe: ok means up; any other Status means down, its message is the detail.
// Called from HTTP worker threads, possibly concurrently: must be thread-safe and quick.
struct HealthCheck {
  std::string name;
  std::function<Status()> check;
};

// A feature of the application (users, orders, …). The EventSystem owns it and calls, in order,
// from initialize()'s thread: register_handlers, register_routes, then health_checks once.
// A non-ok Status from a hook aborts initialize() with that Status (prefixed by the module name).
class Module {
 public:
  virtual ~Module() = default;
  // Unique among the system's modules; names its health checks ("<module>.<check>").
  virtual std::string name() const = 0;
  // Declare durable handlers. Runs after the store and bus exist, before the bus starts.
  virtual Status register_handlers(HandlerRegistrar& registrar, ModuleContext& ctx) {
    (void)registrar;
    (void)ctx;
    return Status::ok();
  }
  // Declare HTTP routes. Handlers run on server threads after initialize(); the context outlives
  // them.
  virtual Status register_routes(http::Router& router, ModuleContext& ctx) {
    (void)router;
    (void)ctx;
    return Status::ok();
  }
  // The module's own probes, added to /health.
  virtual std::vector<HealthCheck> health_checks(ModuleContext& ctx) {
    (void)ctx;
    return {};
  }
  // Called by shutdown() before the bus stops (e.g. to stop a background thread). Never throws.
  virtual void stop() noexcept {}
};

// One check's outcome in a HealthReport.
struct HealthCheckResult {
  std::string name;    // "store", "bus", "handler:<name>", "<module>.<check>"
  bool up = true;
  std::string detail;  // why it is down, or a short summary when up
};

// Aggregated health: up only when every check is up.
struct HealthReport {
  bool up = true;
  std::vector<HealthCheckResult> checks;
  // {"status":"up"|"down","checks":{"<name>":{"status":"up"|"down","detail":"…"},…}}
  nlohmann::json to_json() const;
};

// The application shell. Lifecycle: construct → add_module()* → initialize() → (serve) →
// shutdown() (or run_until_signal()). Thread-safety: add_module/initialize/shutdown from one
// thread; health(), metrics() and the accessors from any thread once initialize() succeeded.
class EventSystem {
 public:
  explicit EventSystem(SystemConfig config);
  // Uses `store` instead of opening config.effective_store_url() (tests, fault injection).
  EventSystem(SystemConfig config, std::shared_ptr<EventStore> store);
  ~EventSystem();  // shutdown(now + config.shutdown_timeout) if still running
  EventSystem(const EventSystem&) = delete;
  EventSystem& operator=(const EventSystem&) = delete;

  // Adds a module. failed_precondition after initialize(); invalid_argument for null or an empty
  // name; already_exists for a duplicate name.
  Status add_module(std::unique_ptr<Module> module);

  // Creates the data dir, opens the store (open_store), creates the bus, registers every module's
  // handlers, the system routes (/health, /metrics, /admin/*) and the modules' routes, starts the
  // bus and, when config.http_enabled, the HTTP server (logging the bound address and port).
  // On failure everything started so far is stopped again and the Status says which step failed
  // (unavailable for a store that cannot be opened or a port in use, …). failed_precondition when
  // called twice.
  Status initialize();

  // REQUIRES: initialize() succeeded (they are valid until destruction).
  EventBus& bus();
  EventStore& store();
  std::shared_ptr<EventStore> shared_store();
  const SystemConfig& config() const;
  // The router with every route; useful to dispatch requests in tests without a socket.
  const http::Router& router() const;
  // The HTTP port actually bound; 0 when HTTP is disabled or not started.
  int http_port() const;

  // Probes: store (a cheap read), bus (no handler in state failed), each module check.
  HealthReport health();
  // Whether to send this instance traffic (/readyz): up while the store answers a cheap read, the
  // bus has started and is not stopping, and shutdown() has not begun (it goes down at shutdown's
  // first step, before the HTTP server stops, so a load balancer drains it). Module checks are
  // health()'s. Liveness (/livez) needs no method: the process answering is the answer.
  HealthReport readiness();
  // Prometheus text exposition format 0.0.4: bus, per-handler counters and latency histogram, store
  // stats, herald_build_info, HTTP requests by route and status class, and process_* (CPU, memory,
  // file descriptors, start time).
  std::string metrics();

  // Stops modules, the HTTP server, the bus (until `deadline`) and closes the store, logging what
  // could not finish. Idempotent (later calls return the first report).
  StopReport shutdown(std::chrono::steady_clock::time_point deadline);

  // Installs SIGINT/SIGTERM handlers, blocks until one arrives (or request_shutdown()), then
  // shutdown(now + config.shutdown_timeout). Returns the process exit code: 0 for a clean stop,
  // 1 when work was left unfinished.
  int run_until_signal();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Installs handlers for SIGINT and SIGTERM (idempotent) and blocks until one of them arrives or
// request_shutdown() is called; returns the signal number (0 for request_shutdown()).
// Thread-safe; meant to be called from main's thread.
int wait_for_shutdown_signal();
// Wakes wait_for_shutdown_signal() as a signal would. Async-signal-safe; callable from any thread.
void request_shutdown() noexcept;

// The Prometheus text exposition of a bus, its handlers and store stats (what
// EventSystem::metrics() serves). `store_stats` may be null when the store could not be read.
std::string prometheus_metrics(const BusStats& bus, const std::vector<HandlerStatus>& handlers,
                               const StoreStats* store_stats);

}  // namespace herald
