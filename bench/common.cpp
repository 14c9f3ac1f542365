#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <system_error>

#include "bench.h"

#ifdef HERALD_BENCH_WITH_POSTGRES
#include <libpq-fe.h>
#endif

namespace herald::bench {

std::string_view to_string(StoreKind kind) {
  switch (kind) {
    case StoreKind::memory: return "memory";
    case StoreKind::sqlite: return "sqlite";
    case StoreKind::postgres: return "postgres";
  }
  return "unknown";
}

Result<StoreKind> store_kind_of(std::string_view url) {
  if (url == "memory:" || url == "memory://") return StoreKind::memory;
  if (url.starts_with("sqlite://")) {
    if (url.size() == std::string_view("sqlite://").size()) {
      return Status::invalid_argument("sqlite URL has no path: " + std::string(url));
    }
    return StoreKind::sqlite;
  }
  if (url.starts_with("postgres://") || url.starts_with("postgresql://")) return StoreKind::postgres;
  return Status::invalid_argument("unknown store URL '" + std::string(url) +
                                  "': expected memory:, sqlite:///path/events.db or postgres://…");
}

// ---- TempDir ----

Result<std::unique_ptr<TempDir>> TempDir::create(const std::filesystem::path& base) {
  std::error_code ec;
  if (!std::filesystem::is_directory(base, ec)) {
    return Status::invalid_argument("scratch directory does not exist: " + base.string());
  }
  std::string tmpl = (base / "herald-bench-XXXXXX").string();
  // mkdtemp rewrites the trailing XXXXXX in place, hence the mutable buffer.
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) {
    return Status::unavailable("cannot create a directory under " + base.string() + ": " +
                               std::error_code(errno, std::generic_category()).message());
  }
  return std::unique_ptr<TempDir>(new TempDir(std::filesystem::path(buf.data())));
}

TempDir::~TempDir() {
  std::error_code ec;  // best effort: a failure to clean up must not abort the run
  std::filesystem::remove_all(path_, ec);
}

std::filesystem::path scratch_base(const Options& options) {
  if (options.kind == StoreKind::sqlite) {
    std::filesystem::path p(options.store_url.substr(std::string_view("sqlite://").size()));
    if (p.has_parent_path()) return p.parent_path();
  }
  if (const char* t = std::getenv("TMPDIR"); t != nullptr && *t != '\0') return t;
  return "/tmp";
}

// ---- PostgreSQL databases ----

#ifdef HERALD_BENCH_WITH_POSTGRES
namespace {

// postgres://auth@host:port/olddb?query -> postgres://auth@host:port/<db>?query
std::string with_database(const std::string& url, const std::string& db) {
  auto scheme_end = url.find("://");
  std::size_t auth_begin = scheme_end == std::string::npos ? 0 : scheme_end + 3;
  std::size_t auth_end = url.find_first_of("/?", auth_begin);
  std::string head = url.substr(0, auth_end == std::string::npos ? url.size() : auth_end);
  std::string query;
  if (auth_end != std::string::npos) {
    auto q = url.find('?', auth_end);
    if (q != std::string::npos) query = url.substr(q);
  }
  return head + "/" + db + query;
}

Status pg_exec(const std::string& url, const std::string& sql) {
  PGconn* conn = PQconnectdb(url.c_str());
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string msg = PQerrorMessage(conn);
    PQfinish(conn);
    return Status::unavailable("cannot connect to PostgreSQL: " + msg);
  }
  // "does not exist, skipping" notices of DROP … IF EXISTS would clutter stderr.
  PQsetNoticeProcessor(conn, [](void*, const char*) {}, nullptr);
  PGresult* res = PQexec(conn, sql.c_str());
  Status st;
  if (PQresultStatus(res) != PGRES_COMMAND_OK) {
    st = Status::unavailable(sql + ": " + PQerrorMessage(conn));
  }
  PQclear(res);
  PQfinish(conn);
  return st;
}

}  // namespace

Result<std::unique_ptr<FreshPgDatabase>> FreshPgDatabase::create(const std::string& admin_url) {
  static std::atomic_int counter{0};
  std::unique_ptr<FreshPgDatabase> db(new FreshPgDatabase());
  db->admin_url_ = admin_url;
  db->name_ = "herald_bench_" + std::to_string(::getpid()) + "_" + std::to_string(counter++);
  db->url_ = with_database(admin_url, db->name_);
  // Drop a leftover of a crashed earlier run with the same pid first.
  HERALD_RETURN_IF_ERROR(pg_exec(admin_url, "DROP DATABASE IF EXISTS " + db->name_ + " WITH (FORCE)"));
  HERALD_RETURN_IF_ERROR(pg_exec(admin_url, "CREATE DATABASE " + db->name_));
  return db;
}

FreshPgDatabase::~FreshPgDatabase() {
  // Best effort; a failure leaves a herald_bench_* database behind, named in the warning.
  Status st = pg_exec(admin_url_, "DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
  if (!st) std::fprintf(stderr, "herald_bench: could not drop %s: %s\n", name_.c_str(), st.to_string().c_str());
}
#endif

// ---- FreshStore ----

Result<std::unique_ptr<FreshStore>> FreshStore::open(const Options& options, StoreKind kind,
                                                     const StoreOptions& store_options) {
  std::unique_ptr<FreshStore> fs(new FreshStore());
  fs->kind_ = kind;
  std::string url;
  switch (kind) {
    case StoreKind::memory:
      url = "memory:";
      break;
    case StoreKind::sqlite: {
      std::string file = "events.db";
      if (options.kind == StoreKind::sqlite) {
        std::filesystem::path p(options.store_url.substr(std::string_view("sqlite://").size()));
        if (p.has_filename()) file = p.filename().string();
      }
      auto dir = TempDir::create(scratch_base(options));
      if (!dir) return dir.status();
      fs->dir_ = std::move(*dir);
      url = "sqlite://" + (fs->dir_->path() / file).string();
      break;
    }
    case StoreKind::postgres: {
#ifdef HERALD_BENCH_WITH_POSTGRES
      if (options.kind != StoreKind::postgres) {
        return Status::invalid_argument("a postgres store needs --store postgres://…");
      }
      auto db = FreshPgDatabase::create(options.store_url);
      if (!db) return db.status();
      fs->pg_db_ = std::move(*db);
      url = fs->pg_db_->url();
      break;
#else
      return Status::invalid_argument("this herald_bench was built without PostgreSQL support");
#endif
    }
  }
  auto store = open_store(url, store_options);
  if (!store) return store.status();
  fs->store_ = std::shared_ptr<EventStore>(std::move(*store));
  return fs;
}

FreshStore::~FreshStore() {
  if (store_) store_->close();
  store_.reset();
#ifdef HERALD_BENCH_WITH_POSTGRES
  pg_db_.reset();
#endif
  dir_.reset();
}

std::filesystem::path FreshStore::directory() const { return dir_ ? dir_->path() : std::filesystem::path(); }

// ---- payloads ----

std::string make_payload(std::int64_t seq) {
  std::string s = R"({"seq":)" + std::to_string(seq) + R"(,"pad":")";
  s.append(kPayloadBytes - s.size() - 2, 'x');
  s += "\"}";
  return s;
}

std::vector<EventData> make_events(std::int64_t first_seq, std::size_t count) {
  std::vector<EventData> out(count);
  for (std::size_t i = 0; i < count; ++i) {
    out[i].type = "BenchEvent";
    out[i].payload = make_payload(first_seq + static_cast<std::int64_t>(i));
  }
  return out;
}

// ---- statistics and output ----

LatencySummary summarize(std::vector<std::int64_t>& samples_ns) {
  LatencySummary s;
  if (samples_ns.empty()) return s;
  std::sort(samples_ns.begin(), samples_ns.end());
  // Nearest-rank percentile.
  auto at = [&](double p) {
    auto n = static_cast<double>(samples_ns.size());
    auto idx = static_cast<std::size_t>(std::max(0.0, std::ceil(p * n) - 1));
    return static_cast<double>(samples_ns[std::min(idx, samples_ns.size() - 1)]) / 1000.0;
  };
  s.p50_us = at(0.50);
  s.p99_us = at(0.99);
  s.p999_us = at(0.999);
  s.max_us = static_cast<double>(samples_ns.back()) / 1000.0;
  long double sum = std::accumulate(samples_ns.begin(), samples_ns.end(), 0.0L);
  s.mean_us = static_cast<double>(sum / static_cast<long double>(samples_ns.size()) / 1000.0L);
  return s;
}

void put_latency(Json& out, const LatencySummary& s) {
  out["p50_us"] = round_to(s.p50_us, 1);
  out["p99_us"] = round_to(s.p99_us, 1);
  out["p999_us"] = round_to(s.p999_us, 1);
  out["max_us"] = round_to(s.max_us, 1);
  out["mean_us"] = round_to(s.mean_us, 1);
}

double round_to(double v, int decimals) {
  double f = std::pow(10.0, decimals);
  return std::round(v * f) / f;
}

Json base_result(std::string_view scenario, StoreKind kind, std::int64_t events, double seconds) {
  Json j;
  j["scenario"] = scenario;
  j["store"] = to_string(kind);
  j["events"] = events;
  j["seconds"] = round_to(seconds, 3);
  j["events_per_s"] = seconds > 0 ? round_to(static_cast<double>(events) / seconds, 1) : 0.0;
  return j;
}

const Scenario* Registry::find(std::string_view name) const {
  for (const auto& s : scenarios_) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

}  // namespace herald::bench
