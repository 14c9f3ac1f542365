#include "test_backends.h"

#include <stdlib.h>  // mkdtemp

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <system_error>

#include "store/sqlite/sqlite_connection.h"
#include "store/sqlite/sqlite_schema.h"
#ifdef HERALD_TEST_POSTGRES
#include "postgres_test_util.h"
#include "store/postgres/pg_schema.h"
#include "store/postgres/pg_support.h"
#endif

namespace herald::testing {
namespace {

// One temporary root per test process, removed when the process exits; each sqlite store gets
// its own sub-directory.
class TempRoot {
 public:
  TempRoot() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "herald-store-test-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) {
      throw std::runtime_error("mkdtemp failed for " + pattern);
    }
    path_ = pattern;
  }
  ~TempRoot() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::filesystem::path fresh_dir() {
    std::filesystem::path dir = path_ / ("store-" + std::to_string(next_++));
    std::filesystem::create_directories(dir);
    return dir;
  }

 private:
  std::filesystem::path path_;
  std::atomic<int> next_{0};
};

TempRoot& temp_root() {
  static TempRoot root;
  return root;
}

// An empty SQLite database at the previous released schema (kSchemaVersion - 1), as that
// release left it: the contract suite then runs on what opening it migrated.
std::string previous_schema_sqlite_url() {
  const std::string path = (temp_root().fresh_dir() / "events.db").string();
  auto conn = detail::sqlite::Connection::open(path, /*create=*/true);
  if (!conn) throw std::runtime_error("sqlite-upgraded: " + conn.status().to_string());
  if (Status s = detail::sqlite::migrate(*conn, detail::sqlite::kSchemaVersion - 1); !s) {
    throw std::runtime_error("sqlite-upgraded: " + s.to_string());
  }
  return "sqlite://" + path;
}

#ifdef HERALD_TEST_POSTGRES
// The same for PostgreSQL: a fresh schema migrated to kSchemaVersion - 1 only.
std::string previous_schema_postgres_url() {
  const std::string url = fresh_postgres_url();
  auto conn = detail::pg::connect(url);
  if (!conn) throw std::runtime_error("postgres-upgraded: " + conn.status().to_string());
  if (Status s = detail::pg::migrate(conn->get(), detail::pg::kSchemaVersion - 1); !s) {
    throw std::runtime_error("postgres-upgraded: " + s.to_string());
  }
  return url;
}

// Leases expire by the server's clock (clock_timestamp()): time passes for them when every expiry
// moves earlier by as much.
void pass_postgres_lease_time(const std::string& url, std::chrono::microseconds elapsed) {
  auto conn = detail::pg::connect(url);
  if (!conn) throw std::runtime_error("pass lease time: " + conn.status().to_string());
  const std::string sql = "UPDATE herald_leases SET expires_at = expires_at - " + std::to_string(elapsed.count());
  if (Status s = detail::pg::exec_simple(conn->get(), sql.c_str(), "pass lease time"); !s) {
    throw std::runtime_error("pass lease time: " + s.to_string());
  }
}
#endif

std::vector<Backend> make_backends() {
  std::vector<Backend> list;
  list.push_back({"memory", false, [] { return std::string("memory:"); }, nullptr, nullptr});
  list.push_back({"sqlite", true, [] {
                    return "sqlite://" + (temp_root().fresh_dir() / "events.db").string();
                  }, nullptr, nullptr});
  list.push_back({"sqlite_upgraded", true, previous_schema_sqlite_url, nullptr, nullptr});
  // Two databases in one directory: the URL names the log's; the process state is beside it.
  list.push_back({"combined", true,
                  [] { return "sqlite://" + (temp_root().fresh_dir() / "events.db").string(); },
                  [](const std::string& url, const StoreOptions& options) -> Result<std::unique_ptr<EventStore>> {
                    auto log = open_store(url, options);
                    if (!log) return log.status();
                    const std::string state_url = url.substr(0, url.size() - std::string("events.db").size()) + "state.db";
                    auto state = open_store(state_url, options);
                    if (!state) return state.status();
                    return combine_stores(std::shared_ptr<EventStore>(std::move(*log)),
                                          std::shared_ptr<EventStore>(std::move(*state)));
                  }, nullptr});
#ifdef HERALD_TEST_POSTGRES
  if (const char* url = std::getenv("HERALD_TEST_POSTGRES_URL"); url != nullptr && *url != '\0') {
    list.push_back({"postgres", true, [] { return fresh_postgres_url(); }, nullptr, pass_postgres_lease_time});
    list.push_back({"postgres_upgraded", true, previous_schema_postgres_url, nullptr, pass_postgres_lease_time});
  }
#endif
  return list;
}

}  // namespace

Result<std::unique_ptr<EventStore>> open_backend(const Backend& backend, const std::string& url,
                                                 const StoreOptions& options) {
  if (backend.open) return backend.open(url, options);
  return open_store(url, options);
}

const std::vector<Backend>& backends() {
  static const std::vector<Backend> list = make_backends();
  return list;
}

}  // namespace herald::testing
