// EventSystem: wires config -> store -> bus -> modules -> routes -> HTTP, and back down on shutdown.
#include <spdlog/spdlog.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <mutex>

#include "herald/system.h"
#include "system/http_metrics.h"
#include "system/log_format.h"
#include "system/prometheus_text.h"
#include "system/system_routes.h"

namespace herald {

nlohmann::json HealthReport::to_json() const {
  nlohmann::json checks_json = nlohmann::json::object();
  for (const auto& c : checks) {
    checks_json[c.name] = {{"status", c.up ? "up" : "down"}, {"detail", c.detail}};
  }
  return {{"status", up ? "up" : "down"}, {"checks", checks_json}};
}

struct EventSystem::Impl final : ModuleContext, HandlerRegistrar {
  // Constant after construction.
  SystemConfig cfg;

  // Written by the owner thread in add_module/initialize/shutdown only, which the contract
  // serializes; the members below `state` are read by HTTP threads only after initialize()
  // published them (server start is the happens-before edge). `state` itself is atomic because
  // health() may read it while shutdown() runs on another thread.
  enum class State { created, initialized, shut_down };
  std::atomic<State> state{State::created};
  std::vector<std::unique_ptr<Module>> modules;
  std::shared_ptr<EventStore> store_;
  std::unique_ptr<EventBus> bus_;
  std::shared_ptr<http::Router> router = std::make_shared<http::Router>();
  std::unique_ptr<http::Server> server;
  std::vector<HealthCheck> module_checks;
  std::optional<StopReport> stop_report;
  std::mutex shutdown_mu;  // serializes shutdown() with the destructor's call and repeated calls
  // Readiness: set once the bus has started; `stopping` from the first step of shutdown().
  std::atomic_bool bus_running{false};
  std::atomic_bool stopping{false};
  // Shared with the router's observer, which HTTP threads call.
  std::shared_ptr<detail::HttpMetrics> http_metrics = std::make_shared<detail::HttpMetrics>();

  // ModuleContext
  EventBus& bus() override { return *bus_; }
  // Modules write through the bus's view of the store, so that every append they make counts as
  // published (BusStats); reads are forwarded unchanged.
  EventStore& store() override { return bus_->store(); }
  std::shared_ptr<EventStore> shared_store() override { return bus_->shared_store(); }
  const SystemConfig& config() const override { return cfg; }

  // HandlerRegistrar
  const HandlerOptions& defaults() const override { return cfg.handler_defaults; }
  Status add(std::shared_ptr<EventHandler> handler) override { return add(std::move(handler), cfg.handler_defaults); }
  Status add(std::shared_ptr<EventHandler> handler, HandlerOptions options) override {
    if (!handler) return Status::invalid_argument("null handler");
    auto name = handler->name();
    if (auto it = cfg.handler_overrides.find(name); it != cfg.handler_overrides.end()) {
      const auto& o = it->second;
      if (o.retry_max_attempts) options.retry.max_attempts = *o.retry_max_attempts;
      if (o.retry_initial_delay) options.retry.initial_delay = *o.retry_initial_delay;
      if (o.retry_max_delay) options.retry.max_delay = *o.retry_max_delay;
      if (o.lanes) options.lanes = *o.lanes;
      if (o.start_from) options.start_from = *o.start_from;
      spdlog::info("handler {}: options overridden by configuration", name);
    }
    auto s = bus_->register_handler(std::move(handler), std::move(options));
    if (s) spdlog::debug("handler {} registered", name);
    return s;
  }

  void teardown(std::chrono::steady_clock::time_point deadline);
};

namespace {

Status prefixed(const Status& s, const std::string& prefix) {
  if (s.is_ok()) return s;
  if (s.code() == StatusCode::wrong_expected_version) {
    return Status::wrong_expected_version(s.actual_version().value_or(kNoStreamVersion), prefix + s.message());
  }
  return Status(s.code(), prefix + s.message());
}

// The database file a sqlite URL names, or "" for other schemes / in-memory sqlite.
std::string sqlite_file(const std::string& url) {
  constexpr std::string_view kScheme = "sqlite://";
  if (!url.starts_with(kScheme)) return "";
  std::string path = url.substr(kScheme.size());
  if (auto q = path.find('?'); q != std::string::npos) path.resize(q);
  if (path.empty() || path == ":memory:") return "";
  return path;
}

// The directory a sqlite URL's file lives in, or "" for other schemes / in-memory sqlite.
std::string sqlite_dir(const std::string& url) {
  const std::string file = sqlite_file(url);
  return file.empty() ? "" : std::filesystem::path(file).parent_path().string();
}

}  // namespace

namespace {

// One check's outcome into `report`: up with `up_detail`, or down with the status's text.
void add_check(HealthReport& report, std::string name, const Status& s, std::string up_detail) {
  HealthCheckResult r{std::move(name), s.is_ok(), s.is_ok() ? std::move(up_detail) : s.to_string()};
  report.up = report.up && r.up;
  report.checks.push_back(std::move(r));
}

HealthReport not_initialized() {
  HealthReport report;
  add_check(report, "system", Status::failed_precondition("not initialized"), "");
  return report;
}

}  // namespace

EventSystem::EventSystem(SystemConfig config) : impl_(std::make_unique<Impl>()) { impl_->cfg = std::move(config); }

EventSystem::EventSystem(SystemConfig config, std::shared_ptr<EventStore> store) : EventSystem(std::move(config)) {
  impl_->store_ = std::move(store);
}

EventSystem::~EventSystem() {
  if (impl_->state == Impl::State::initialized) {
    (void)shutdown(std::chrono::steady_clock::now() + impl_->cfg.shutdown_timeout);
  }
}

Status EventSystem::add_module(std::unique_ptr<Module> module) {
  if (impl_->state != Impl::State::created) return Status::failed_precondition("add_module after initialize()");
  if (!module) return Status::invalid_argument("null module");
  auto name = module->name();
  if (name.empty()) return Status::invalid_argument("module name must not be empty");
  for (const auto& m : impl_->modules) {
    if (m->name() == name) return Status::already_exists("module " + name + " is already added");
  }
  impl_->modules.push_back(std::move(module));
  return Status::ok();
}

void EventSystem::Impl::teardown(std::chrono::steady_clock::time_point deadline) {
  stopping = true;
  bus_running = false;
  if (server) server->stop();
  if (bus_) (void)bus_->stop(deadline);
  if (store_) store_->close();
}

Status EventSystem::initialize() {
  auto& d = *impl_;
  if (d.state != Impl::State::created) return Status::failed_precondition("initialize() was already called");
  d.state = Impl::State::initialized;  // even on failure: a second attempt needs a fresh object

  const auto log_format = detail::parse_log_format(d.cfg.log_format);
  detail::apply_log_format(log_format.value_or(detail::LogFormat::text));
  auto level = spdlog::level::from_str(d.cfg.log_level);
  spdlog::set_level(level);

  auto fail = [&](const Status& s, const std::string& step) {
    spdlog::error("initialize failed at {}: {}", step, s.to_string());
    d.teardown(std::chrono::steady_clock::now());
    d.state = Impl::State::shut_down;
    d.stop_report = StopReport{};
    return prefixed(s, step + ": ");
  };

  if (!log_format) {
    return fail(Status::invalid_argument("log_format '" + d.cfg.log_format + "' is not one of text, json"),
                "configuration");
  }
  if (!d.store_) {
    std::string url = d.cfg.effective_store_url();
    if (auto dir = sqlite_dir(url); !dir.empty()) {
      std::error_code ec;
      std::filesystem::create_directories(dir, ec);
      if (ec) return fail(Status::unavailable("cannot create " + dir + ": " + ec.message()), "data directory");
    }
    auto opened = open_store(url, d.cfg.store);
    if (!opened) return fail(opened.status(), "opening store " + url);
    d.store_ = std::shared_ptr<EventStore>(std::move(*opened));
  }
  spdlog::info("store {} open (head position {})", d.store_->url(), d.store_->head_position());

  d.bus_ = std::make_unique<EventBus>(d.store_, d.cfg.bus);
  for (auto& m : d.modules) {
    Status s;
    try {
      s = m->register_handlers(d, d);
    } catch (const std::exception& ex) {
      s = Status::internal(std::string("exception: ") + ex.what());
    }
    if (!s) return fail(s, "module " + m->name() + " handlers");
  }

  if (auto s = register_system_routes(*d.router, *this); !s) return fail(s, "system routes");
  d.router->set_observer([metrics = d.http_metrics](const http::RouteObservation& o) { metrics->record(o); });
  for (auto& m : d.modules) {
    Status s;
    try {
      s = m->register_routes(*d.router, d);
      for (auto& c : m->health_checks(d)) {
        c.name = m->name() + "." + c.name;
        d.module_checks.push_back(std::move(c));
      }
    } catch (const std::exception& ex) {
      s = Status::internal(std::string("exception: ") + ex.what());
    }
    if (!s) return fail(s, "module " + m->name() + " routes");
  }

  if (auto s = d.bus_->start(); !s) return fail(s, "starting bus");
  d.bus_running = true;
  spdlog::info("bus started with {} handler(s)", d.bus_->handler_names().size());

  if (d.cfg.http_enabled) {
    d.server = std::make_unique<http::Server>(d.router, d.cfg.http);
    if (auto s = d.server->start(); !s) return fail(s, "starting HTTP");
    spdlog::info("serving http://{}:{} ({} routes)", d.cfg.http.host, d.server->port(), d.router->describe().size());
  }
  return Status::ok();
}

EventBus& EventSystem::bus() { return *impl_->bus_; }
EventStore& EventSystem::store() { return *impl_->store_; }
std::shared_ptr<EventStore> EventSystem::shared_store() { return impl_->store_; }
const SystemConfig& EventSystem::config() const { return impl_->cfg; }
const http::Router& EventSystem::router() const { return *impl_->router; }
int EventSystem::http_port() const { return impl_->server ? impl_->server->port() : 0; }

HealthReport EventSystem::health() {
  auto& d = *impl_;
  HealthReport report;
  auto add = [&report](std::string name, const Status& s, std::string up_detail) {
    add_check(report, std::move(name), s, std::move(up_detail));
  };
  if (!d.store_ || !d.bus_) return not_initialized();
  // A read past the head is the cheapest query that still touches the database.
  auto head = d.store_->head_position();
  auto probe = d.store_->read_all(head + 1, 1);
  std::string store_detail = d.store_->url() + ", head position " + std::to_string(head);
  if (auto file = sqlite_file(d.cfg.effective_store_url()); !file.empty()) {
    // The WAL's size, by a stat: bounded by --sqlite-wal-limit-bytes, so a large one is news.
    std::error_code ec;
    auto wal = std::filesystem::file_size(file + "-wal", ec);
    char text[64];
    std::snprintf(text, sizeof text, ", WAL %.1f MiB", ec ? 0.0 : static_cast<double>(wal) / (1 << 20));
    store_detail += text;
  }
  add("store", probe.status(), store_detail);

  Status bus_status;
  auto statuses = d.bus_->handler_statuses();
  const std::int64_t max_lag = d.cfg.health_max_handler_lag;
  for (const auto& h : statuses) {
    if (h.state == HandlerState::failed) {
      bus_status = Status::unavailable("handler " + h.name + " failed: " + h.last_error);
      break;
    }
    if (max_lag > 0 && h.lag > max_lag && bus_status) {
      bus_status = Status::unavailable("handler " + h.name + " is " + std::to_string(h.lag) +
                                       " events behind the log (over health_max_handler_lag " +
                                       std::to_string(max_lag) + "): it is not keeping up");
    }
  }
  if (bus_status && d.state == Impl::State::shut_down) bus_status = Status::cancelled("system is shut down");
  add("bus", bus_status, std::to_string(statuses.size()) + " handler(s)");

  for (const auto& c : d.module_checks) {
    Status s;
    try {
      s = c.check ? c.check() : Status::internal("health check without a function");
    } catch (const std::exception& ex) {
      s = Status::internal(std::string("health check threw: ") + ex.what());
    } catch (...) {
      s = Status::internal("health check threw");
    }
    add(c.name, s, "ok");
  }
  return report;
}

HealthReport EventSystem::readiness() {
  auto& d = *impl_;
  HealthReport report;
  auto add = [&report](std::string name, const Status& s, std::string up_detail) {
    add_check(report, std::move(name), s, std::move(up_detail));
  };
  if (!d.store_ || !d.bus_) return not_initialized();
  auto head = d.store_->head_position();
  add("store", d.store_->read_all(head + 1, 1).status(), "open");
  add("bus", d.bus_running ? Status::ok() : Status::unavailable("the bus is not running"), "running");
  add("shutdown", d.stopping ? Status::cancelled("shutting down") : Status::ok(), "not shutting down");
  return report;
}

std::string EventSystem::metrics() {
  auto& d = *impl_;
  std::string out;
  if (!d.bus_ || !d.store_) {
    out = prometheus_metrics({}, {}, nullptr);
  } else {
    auto stats = d.store_->stats();
    out = prometheus_metrics(d.bus_->stats(), d.bus_->handler_statuses(), stats ? &*stats : nullptr);
  }
  detail::append_build_info(out);
  d.http_metrics->append(out);
  if (auto process = detail::read_process_stats()) detail::append_process_metrics(*process, out);
  return out;
}

StopReport EventSystem::shutdown(std::chrono::steady_clock::time_point deadline) {
  auto& d = *impl_;
  std::lock_guard lock(d.shutdown_mu);
  if (d.stop_report) return *d.stop_report;
  if (d.state == Impl::State::created) {
    d.state = Impl::State::shut_down;
    d.stop_report = StopReport{};
    return *d.stop_report;
  }
  spdlog::info("shutting down");
  d.stopping = true;  // /readyz answers 503 from here on, while requests in flight still finish
  for (auto& m : d.modules) m->stop();
  if (d.server) d.server->stop();
  StopReport report;
  if (d.bus_) report = d.bus_->stop(deadline);
  d.bus_running = false;
  if (report.clean) {
    spdlog::info("bus stopped cleanly ({} event(s) not yet handled remain in the store)", report.pending_events);
  } else {
    std::string names;
    for (const auto& n : report.unfinished) names += (names.empty() ? "" : ", ") + n;
    spdlog::warn("bus stopped with unfinished work: in-flight handlers [{}], {} event(s) pending; they resume "
                 "from their checkpoints on the next start",
                 names, report.pending_events);
  }
  if (d.store_) d.store_->close();
  d.state = Impl::State::shut_down;
  d.stop_report = report;
  spdlog::info("shutdown complete");
  return report;
}

int EventSystem::run_until_signal() {
  int sig = wait_for_shutdown_signal();
  spdlog::info("received {}, stopping (deadline {} ms)", sig == 0 ? std::string("shutdown request") : "signal " + std::to_string(sig),
               impl_->cfg.shutdown_timeout.count());
  auto report = shutdown(std::chrono::steady_clock::now() + impl_->cfg.shutdown_timeout);
  return report.clean ? 0 : 1;
}

}  // namespace herald
