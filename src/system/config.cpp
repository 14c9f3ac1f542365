// Configuration: one table of keys, each reachable as a TOML key, a HERALD_* environment variable
// and a command-line flag, applied in the order file -> env -> flags so later sources win.
// docs/configuration.md documents the same table; keep them in step.
#include <CLI/CLI.hpp>
#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <functional>
#include <sstream>

#include "herald/system.h"
#include "herald/version.h"

extern char** environ;

namespace herald {

std::string SystemConfig::effective_store_url() const {
  if (!store_url.empty()) return store_url;
  std::string dir = data_dir.empty() ? std::string(".") : data_dir;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  return "sqlite://" + dir + "/events.db";
}

namespace {

enum class Kind { string, integer, boolean };

// One setting. `set` parses text (env/flag form; TOML values are turned into the same text after
// a type check) and returns an error message without the source prefix, or "" on success.
struct Key {
  const char* toml;  // dotted TOML path, e.g. "http.port"
  const char* flag;  // long flag without dashes, e.g. "port"
  const char* env;   // environment variable
  Kind kind;
  const char* help;
  std::function<std::string(SystemConfig&, const std::string&)> set;
};

std::string parse_int(const std::string& text, std::int64_t min, std::int64_t max, std::int64_t& out) {
  std::int64_t v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc{} || ptr != text.data() + text.size()) {
    return "'" + text + "' is not an integer";
  }
  if (v < min || v > max) {
    return "'" + text + "' is out of range [" + std::to_string(min) + ", " + std::to_string(max) + "]";
  }
  out = v;
  return "";
}

std::string parse_bool(const std::string& text, bool& out) {
  std::string t = text;
  std::transform(t.begin(), t.end(), t.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (t == "true" || t == "1" || t == "yes" || t == "on") {
    out = true;
    return "";
  }
  if (t == "false" || t == "0" || t == "no" || t == "off") {
    out = false;
    return "";
  }
  return "'" + text + "' is not a boolean (true/false)";
}

std::string parse_start_from(const std::string& text, StartFrom& out) {
  if (text == "beginning") {
    out = StartFrom::beginning;
    return "";
  }
  if (text == "end") {
    out = StartFrom::end;
    return "";
  }
  return "'" + text + "' is not one of beginning, end";
}

constexpr std::int64_t kMaxMs = 24LL * 3600 * 1000;

// "a, b,c" -> {"a", "b", "c"}; replaces `out`. Pieces may not hold spaces or control characters.
std::string split_list(const std::string& text, std::vector<std::string>& out) {
  std::vector<std::string> pieces;
  std::size_t start = 0;
  while (start <= text.size()) {
    auto comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    std::string piece = text.substr(start, comma - start);
    while (!piece.empty() && piece.front() == ' ') piece.erase(piece.begin());
    while (!piece.empty() && piece.back() == ' ') piece.pop_back();
    for (char ch : piece) {
      if (static_cast<unsigned char>(ch) <= 0x20 || ch == 0x7F) return "'" + piece + "' holds a space or control character";
    }
    if (!piece.empty()) pieces.push_back(std::move(piece));
    start = comma + 1;
  }
  out = std::move(pieces);
  return "";
}

template <class F>
auto int_setter(std::int64_t min, std::int64_t max, F apply) {
  return [=](SystemConfig& c, const std::string& text) -> std::string {
    std::int64_t v = 0;
    auto err = parse_int(text, min, max, v);
    if (err.empty()) apply(c, v);
    return err;
  };
}

template <class F>
auto bool_setter(F apply) {
  return [=](SystemConfig& c, const std::string& text) -> std::string {
    bool v = false;
    auto err = parse_bool(text, v);
    if (err.empty()) apply(c, v);
    return err;
  };
}

const std::vector<Key>& keys() {
  using ms = std::chrono::milliseconds;
  static const std::vector<Key> table = {
      {"data_dir", "data-dir", "HERALD_DATA_DIR", Kind::string, "directory for the default SQLite store",
       [](SystemConfig& c, const std::string& v) -> std::string {
         if (v.empty()) return "must not be empty";
         c.data_dir = v;
         return "";
       }},
      {"store.url", "store", "HERALD_STORE", Kind::string,
       "event store URL: memory:, sqlite:///path/events.db, postgres://… (default sqlite://<data-dir>/events.db)",
       [](SystemConfig& c, const std::string& v) -> std::string {
         if (v.empty()) return "must not be empty";
         c.store_url = v;
         return "";
       }},
      {"store.durable", "store-durable", "HERALD_STORE_DURABLE", Kind::boolean,
       "sqlite: fsync every commit (synchronous=FULL)", bool_setter([](SystemConfig& c, bool v) { c.store.durable = v; })},
      {"store.max_payload_bytes", "max-payload-bytes", "HERALD_MAX_PAYLOAD_BYTES", Kind::integer,
       "largest event payload accepted by the store",
       int_setter(1, 1LL << 30, [](SystemConfig& c, std::int64_t v) { c.store.max_payload_bytes = static_cast<std::size_t>(v); })},
      {"store.sqlite_wal_limit_bytes", "sqlite-wal-limit-bytes", "HERALD_SQLITE_WAL_LIMIT_BYTES", Kind::integer,
       "sqlite: WAL size past which the checkpointer truncates it (the writer waits at most ~100 ms)",
       int_setter(1 << 20, 1LL << 40, [](SystemConfig& c, std::int64_t v) { c.store.sqlite_wal_limit_bytes = static_cast<std::size_t>(v); })},
      {"http.enabled", "http-enabled", "HERALD_HTTP_ENABLED", Kind::boolean, "serve HTTP",
       bool_setter([](SystemConfig& c, bool v) { c.http_enabled = v; })},
      {"http.host", "host", "HERALD_HOST", Kind::string, "HTTP bind address",
       [](SystemConfig& c, const std::string& v) -> std::string {
         if (v.empty()) return "must not be empty";
         c.http.host = v;
         return "";
       }},
      {"http.port", "port", "HERALD_PORT", Kind::integer, "HTTP port; 0 picks a free port (logged)",
       int_setter(0, 65535, [](SystemConfig& c, std::int64_t v) { c.http.port = static_cast<int>(v); })},
      {"http.admin_token", "admin-token", "HERALD_ADMIN_TOKEN", Kind::string,
       "when set, /admin/* needs 'Authorization: Bearer <token>'",
       [](SystemConfig& c, const std::string& v) -> std::string {
         c.http.admin_token = v;
         return "";
       }},
      {"http.insecure_admin", "insecure-admin", "HERALD_INSECURE_ADMIN", Kind::boolean,
       "allow binding a non-loopback address with no admin token (the admin API is then open to the network)",
       bool_setter([](SystemConfig& c, bool v) { c.http.insecure_admin = v; })},
      {"http.allowed_hosts", "allowed-hosts", "HERALD_ALLOWED_HOSTS", Kind::string,
       "comma-separated Host names served besides localhost and the bound address ('*': any)",
       [](SystemConfig& c, const std::string& v) { return split_list(v, c.http.allowed_hosts); }},
      {"http.allowed_origins", "allowed-origins", "HERALD_ALLOWED_ORIGINS", Kind::string,
       "comma-separated origins (https://app.example.com) allowed to call the API from a browser (CORS)",
       [](SystemConfig& c, const std::string& v) { return split_list(v, c.http.allowed_origins); }},
      {"http.body_limit_bytes", "body-limit-bytes", "HERALD_BODY_LIMIT_BYTES", Kind::integer,
       "largest request body (413 above)",
       int_setter(1, 1LL << 30, [](SystemConfig& c, std::int64_t v) { c.http.body_limit_bytes = static_cast<std::size_t>(v); })},
      {"http.threads", "http-threads", "HERALD_HTTP_THREADS", Kind::integer, "HTTP worker threads",
       int_setter(1, 256, [](SystemConfig& c, std::int64_t v) { c.http.worker_threads = static_cast<int>(v); })},
      {"http.io_threads", "http-io-threads", "HERALD_HTTP_IO_THREADS", Kind::integer,
       "HTTP I/O threads multiplexing the connections (handlers run on the worker threads)",
       int_setter(1, 64, [](SystemConfig& c, std::int64_t v) { c.http.io_threads = static_cast<int>(v); })},
      {"http.max_queued_requests", "http-max-queued-requests", "HERALD_HTTP_MAX_QUEUED_REQUESTS", Kind::integer,
       "requests waiting for a worker; beyond: 503 with Retry-After",
       int_setter(1, 1'000'000, [](SystemConfig& c, std::int64_t v) { c.http.max_queued_requests = static_cast<std::size_t>(v); })},
      {"http.max_connections", "http-max-connections", "HERALD_HTTP_MAX_CONNECTIONS", Kind::integer,
       "open HTTP connections; a new one beyond is answered 503 and closed",
       int_setter(1, 1'000'000, [](SystemConfig& c, std::int64_t v) { c.http.max_connections = static_cast<std::size_t>(v); })},
      {"http.max_header_bytes", "http-max-header-bytes", "HERALD_HTTP_MAX_HEADER_BYTES", Kind::integer,
       "largest request header, request line included (431 above)",
       int_setter(1024, 1LL << 20, [](SystemConfig& c, std::int64_t v) { c.http.max_header_bytes = static_cast<std::size_t>(v); })},
      {"http.max_uri_bytes", "http-max-uri-bytes", "HERALD_HTTP_MAX_URI_BYTES", Kind::integer,
       "longest request-target (414 above)",
       int_setter(64, 1LL << 20, [](SystemConfig& c, std::int64_t v) { c.http.max_uri_bytes = static_cast<std::size_t>(v); })},
      {"http.header_timeout_ms", "http-header-timeout-ms", "HERALD_HTTP_HEADER_TIMEOUT_MS", Kind::integer,
       "the whole request header must arrive within this (408 and closed otherwise)",
       int_setter(1, kMaxMs, [](SystemConfig& c, std::int64_t v) { c.http.header_timeout = ms(v); })},
      {"http.body_timeout_ms", "http-body-timeout-ms", "HERALD_HTTP_BODY_TIMEOUT_MS", Kind::integer,
       "the whole request body must arrive within this after the header (408 and closed otherwise)",
       int_setter(1, kMaxMs, [](SystemConfig& c, std::int64_t v) { c.http.body_timeout = ms(v); })},
      {"http.body_min_bytes_per_s", "http-body-min-bytes-per-s", "HERALD_HTTP_BODY_MIN_BYTES_PER_S", Kind::integer,
       "slowest mean body rate accepted from one second after the header on; 0: no minimum",
       int_setter(0, 1LL << 30, [](SystemConfig& c, std::int64_t v) { c.http.body_min_bytes_per_s = static_cast<std::size_t>(v); })},
      {"http.idle_timeout_ms", "http-idle-timeout-ms", "HERALD_HTTP_IDLE_TIMEOUT_MS", Kind::integer,
       "a keep-alive connection with no request in progress is closed after this",
       int_setter(1, kMaxMs, [](SystemConfig& c, std::int64_t v) { c.http.idle_timeout = ms(v); })},
      {"http.write_timeout_ms", "http-write-timeout-ms", "HERALD_HTTP_WRITE_TIMEOUT_MS", Kind::integer,
       "a response not written within this drops the connection",
       int_setter(1, kMaxMs, [](SystemConfig& c, std::int64_t v) { c.http.write_timeout = ms(v); })},
      {"http.handler_timeout_ms", "http-handler-timeout-ms", "HERALD_HTTP_HANDLER_TIMEOUT_MS", Kind::integer,
       "a handler that has not returned within this is answered 503 (it keeps running)",
       int_setter(1, kMaxMs, [](SystemConfig& c, std::int64_t v) { c.http.handler_timeout = ms(v); })},
      {"http.shutdown_timeout_ms", "http-shutdown-timeout-ms", "HERALD_HTTP_SHUTDOWN_TIMEOUT_MS", Kind::integer,
       "on stop, how long in-flight HTTP requests may finish before their connections are closed",
       int_setter(0, kMaxMs, [](SystemConfig& c, std::int64_t v) { c.http.shutdown_timeout = ms(v); })},
      {"retry.max_attempts", "retry-max-attempts", "HERALD_RETRY_MAX_ATTEMPTS", Kind::integer,
       "handler calls per event, the first included, before dead-lettering",
       int_setter(1, 1000, [](SystemConfig& c, std::int64_t v) { c.handler_defaults.retry.max_attempts = static_cast<int>(v); })},
      {"retry.initial_delay_ms", "retry-initial-delay-ms", "HERALD_RETRY_INITIAL_DELAY_MS", Kind::integer,
       "delay before the first retry (doubles each retry)",
       int_setter(0, kMaxMs, [](SystemConfig& c, std::int64_t v) { c.handler_defaults.retry.initial_delay = ms(v); })},
      {"retry.max_delay_ms", "retry-max-delay-ms", "HERALD_RETRY_MAX_DELAY_MS", Kind::integer,
       "upper bound of a retry delay",
       int_setter(0, kMaxMs, [](SystemConfig& c, std::int64_t v) { c.handler_defaults.retry.max_delay = ms(v); })},
      {"handlers.lanes", "handler-lanes", "HERALD_HANDLER_LANES", Kind::integer,
       "parallel lanes per handler (partitioned by stream)",
       int_setter(1, 64, [](SystemConfig& c, std::int64_t v) { c.handler_defaults.lanes = static_cast<int>(v); })},
      {"handlers.start_from", "start-from", "HERALD_START_FROM", Kind::string,
       "where a handler without checkpoint starts: beginning or end",
       [](SystemConfig& c, const std::string& v) { return parse_start_from(v, c.handler_defaults.start_from); }},
      {"handlers.batch_size", "batch-size", "HERALD_BATCH_SIZE", Kind::integer, "events read per step",
       int_setter(1, 100'000, [](SystemConfig& c, std::int64_t v) { c.handler_defaults.batch_size = static_cast<std::size_t>(v); })},
      {"bus.instance_id", "instance-id", "HERALD_INSTANCE_ID", Kind::string,
       "this process's lease owner id (default: a fresh UUID)",
       [](SystemConfig& c, const std::string& v) -> std::string {
         c.bus.instance_id = v;
         return "";
       }},
      {"bus.use_leases", "use-leases", "HERALD_USE_LEASES", Kind::boolean,
       "lease each handler lane so one instance at a time runs it",
       bool_setter([](SystemConfig& c, bool v) {
         c.bus.use_leases = v;
         c.use_leases_set = true;
       })},
      {"bus.lease_ttl_ms", "lease-ttl-ms", "HERALD_LEASE_TTL_MS", Kind::integer, "lease expiry",
       int_setter(1, kMaxMs, [](SystemConfig& c, std::int64_t v) { c.bus.lease_ttl = ms(v); })},
      {"bus.poll_interval_ms", "poll-interval-ms", "HERALD_POLL_INTERVAL_MS", Kind::integer,
       "how long a runner waits on the store before looking again",
       int_setter(1, kMaxMs, [](SystemConfig& c, std::int64_t v) { c.bus.poll_interval = ms(v); })},
      {"smtp_url", "smtp-url", "HERALD_SMTP_URL", Kind::string,
       "SMTP server for e-mails, e.g. smtp://127.0.0.1:2525 (empty: e-mails are logged only)",
       [](SystemConfig& c, const std::string& v) -> std::string {
         c.smtp_url = v;
         return "";
       }},
      {"log_level", "log-level", "HERALD_LOG_LEVEL", Kind::string,
       "trace, debug, info, warn, error, critical or off",
       [](SystemConfig& c, const std::string& v) -> std::string {
         static const char* kLevels[] = {"trace", "debug", "info", "warn", "error", "critical", "off"};
         if (std::find_if(std::begin(kLevels), std::end(kLevels), [&](const char* l) { return v == l; }) ==
             std::end(kLevels)) {
           return "'" + v + "' is not one of trace, debug, info, warn, error, critical, off";
         }
         c.log_level = v;
         return "";
       }},
      {"log_format", "log-format", "HERALD_LOG_FORMAT", Kind::string,
       "text (for people) or json (one object per line: time, level, logger, message, request_id, …)",
       [](SystemConfig& c, const std::string& v) -> std::string {
         if (v != "text" && v != "json") return "'" + v + "' is not one of text, json";
         c.log_format = v;
         return "";
       }},
      {"health.max_handler_lag", "health-max-handler-lag", "HERALD_HEALTH_MAX_HANDLER_LAG", Kind::integer,
       "/health reports the bus down while a handler is more events behind than this (0: off)",
       int_setter(0, INT64_MAX, [](SystemConfig& c, std::int64_t v) { c.health_max_handler_lag = v; })},
      {"shutdown_timeout_ms", "shutdown-timeout-ms", "HERALD_SHUTDOWN_TIMEOUT_MS", Kind::integer,
       "how long shutdown waits for in-flight handler calls",
       int_setter(0, kMaxMs, [](SystemConfig& c, std::int64_t v) { c.shutdown_timeout = ms(v); })},
  };
  return table;
}

const Key* find_key(std::string_view toml_path) {
  for (const auto& k : keys()) {
    if (toml_path == k.toml) return &k;
  }
  return nullptr;
}

std::string where(const toml::source_region& src, const std::string& file) {
  return file + ":" + std::to_string(src.begin.line) + ":" + std::to_string(src.begin.column);
}

// A TOML scalar as the text the setters parse, or an error when its type is not `kind`.
std::string toml_text(const toml::node& node, Kind kind, std::string& out) {
  switch (kind) {
    case Kind::string:
      if (auto v = node.value_exact<std::string>()) {
        out = *v;
        return "";
      }
      return "expected a string";
    case Kind::integer:
      if (auto v = node.value_exact<std::int64_t>()) {
        out = std::to_string(*v);
        return "";
      }
      return "expected an integer";
    case Kind::boolean:
      if (auto v = node.value_exact<bool>()) {
        out = *v ? "true" : "false";
        return "";
      }
      return "expected a boolean";
  }
  return "unsupported type";
}

Status apply_handler_override(const std::string& name, const toml::table& t, const std::string& file,
                              SystemConfig& c) {
  HandlerOverride o;
  for (const auto& entry : t) {
    // Not a structured binding: clang 14 cannot capture one in the lambda below.
    const toml::node& node = entry.second;
    std::string key(entry.first.str());
    std::string prefix = where(node.source(), file) + ": handler." + name + "." + key + ": ";
    auto int_of = [&](std::int64_t min, std::int64_t max) -> Result<std::int64_t> {
      auto v = node.value_exact<std::int64_t>();
      if (!v) return Status::invalid_argument(prefix + "expected an integer");
      if (*v < min || *v > max) {
        return Status::invalid_argument(prefix + std::to_string(*v) + " is out of range [" + std::to_string(min) +
                                        ", " + std::to_string(max) + "]");
      }
      return *v;
    };
    if (key == "retry_max_attempts") {
      auto v = int_of(1, 1000);
      if (!v) return v.status();
      o.retry_max_attempts = static_cast<int>(*v);
    } else if (key == "retry_initial_delay_ms") {
      auto v = int_of(0, kMaxMs);
      if (!v) return v.status();
      o.retry_initial_delay = std::chrono::milliseconds(*v);
    } else if (key == "retry_max_delay_ms") {
      auto v = int_of(0, kMaxMs);
      if (!v) return v.status();
      o.retry_max_delay = std::chrono::milliseconds(*v);
    } else if (key == "lanes") {
      auto v = int_of(1, 64);
      if (!v) return v.status();
      o.lanes = static_cast<int>(*v);
    } else if (key == "start_from") {
      auto v = node.value_exact<std::string>();
      if (!v) return Status::invalid_argument(prefix + "expected a string");
      StartFrom sf{};
      auto err = parse_start_from(*v, sf);
      if (!err.empty()) return Status::invalid_argument(prefix + err);
      o.start_from = sf;
    } else {
      return Status::invalid_argument(prefix +
                                      "unknown key (known: retry_max_attempts, retry_initial_delay_ms, "
                                      "retry_max_delay_ms, lanes, start_from)");
    }
  }
  c.handler_overrides[name] = o;
  return Status::ok();
}

Status apply_table(const toml::table& t, const std::string& prefix, const std::string& file, SystemConfig& c) {
  for (const auto& [k, node] : t) {
    std::string path = prefix.empty() ? std::string(k.str()) : prefix + "." + std::string(k.str());
    if (prefix.empty() && path == "handler") {
      const auto* handlers = node.as_table();
      if (!handlers) return Status::invalid_argument(where(node.source(), file) + ": handler: expected a table");
      for (const auto& [name, sub] : *handlers) {
        const auto* st = sub.as_table();
        if (!st) {
          return Status::invalid_argument(where(sub.source(), file) + ": handler." + std::string(name.str()) +
                                          ": expected a table");
        }
        HERALD_RETURN_IF_ERROR(apply_handler_override(std::string(name.str()), *st, file, c));
      }
      continue;
    }
    if (const auto* sub = node.as_table()) {
      HERALD_RETURN_IF_ERROR(apply_table(*sub, path, file, c));
      continue;
    }
    const Key* key = find_key(path);
    if (!key) return Status::invalid_argument(where(node.source(), file) + ": unknown key '" + path + "'");
    std::string text;
    auto err = toml_text(node, key->kind, text);
    if (err.empty()) err = key->set(c, text);
    if (!err.empty()) return Status::invalid_argument(where(node.source(), file) + ": " + path + ": " + err);
  }
  return Status::ok();
}

Status apply_file(const std::string& file, SystemConfig& c) {
  try {
    toml::table t = toml::parse_file(file);
    c.config_file = file;
    return apply_table(t, "", file, c);
  } catch (const toml::parse_error& err) {
    std::ostringstream msg;
    msg << "config file " << file;
    if (err.source().begin.line > 0) msg << ":" << err.source().begin.line << ":" << err.source().begin.column;
    msg << ": " << err.description();
    return Status::invalid_argument(msg.str());
  }
}

}  // namespace

Result<LoadedConfig> parse_config(const std::vector<std::string>& args,
                                  const std::map<std::string, std::string>& env, std::string_view program_name) {
  CLI::App app{"Herald event system. Precedence: flags > HERALD_* environment > TOML file > defaults.",
               std::string(program_name)};
  app.set_help_flag("-h,--help", "print this help and exit");
  const auto build = build_info();
  const std::string version_line = std::string(program_name) + " " + std::string(build.version) + " (" +
                                   std::string(build.compiler) + ", " +
                                   (build.build_type.empty() ? std::string("no build type") : std::string(build.build_type)) +
                                   ")\n";
  bool version_flag = false;
  app.add_flag("--version", version_flag, "print the version and exit");
  app.get_formatter()->column_width(34);

  std::string config_flag;
  app.add_option("--config", config_flag, "TOML configuration file (env HERALD_CONFIG)");
  std::vector<std::string> values(keys().size());
  std::vector<CLI::Option*> options(keys().size());
  for (std::size_t i = 0; i < keys().size(); ++i) {
    const auto& k = keys()[i];
    std::string help = std::string(k.help) + " (env " + k.env + ", file " + k.toml + ")";
    options[i] = app.add_option(std::string("--") + k.flag, values[i], help);
  }

  LoadedConfig out;
  try {
    std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11 consumes from the back
    app.parse(reversed);
  } catch (const CLI::CallForHelp&) {
    out.help = app.help();
    return out;
  } catch (const CLI::ParseError& e) {
    return Status::invalid_argument(std::string("command line: ") + e.what());
  }
  if (version_flag) {
    out.version = version_line;
    return out;
  }

  SystemConfig& c = out.config;
  std::string file = config_flag;
  if (file.empty()) {
    if (auto it = env.find("HERALD_CONFIG"); it != env.end()) file = it->second;
  }
  if (!file.empty()) HERALD_RETURN_IF_ERROR(apply_file(file, c));

  for (const auto& k : keys()) {
    auto it = env.find(k.env);
    if (it == env.end()) continue;
    auto err = k.set(c, it->second);
    if (!err.empty()) return Status::invalid_argument(std::string("environment ") + k.env + ": " + err);
  }
  for (std::size_t i = 0; i < keys().size(); ++i) {
    if (options[i]->count() == 0) continue;
    auto err = keys()[i].set(c, values[i]);
    if (!err.empty()) return Status::invalid_argument(std::string("--") + keys()[i].flag + ": " + err);
  }
  if (!c.use_leases_set) {
    // Only a shared database lets several instances run at once; they must then take turns.
    const std::string url = c.effective_store_url();
    c.bus.use_leases = url.starts_with("postgres://") || url.starts_with("postgresql://");
  }
  return out;
}

Result<LoadedConfig> load_config(int argc, const char* const* argv) {
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) args.emplace_back(argv[i]);
  std::map<std::string, std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view kv(*e);
    if (!kv.starts_with("HERALD_")) continue;
    auto eq = kv.find('=');
    if (eq == std::string_view::npos) continue;
    env.emplace(std::string(kv.substr(0, eq)), std::string(kv.substr(eq + 1)));
  }
  std::string program = argc > 0 && argv[0] != nullptr ? std::string(argv[0]) : std::string("herald");
  if (auto slash = program.rfind('/'); slash != std::string::npos) program = program.substr(slash + 1);
  return parse_config(args, env, program);
}

}  // namespace herald
