// fresh_postgres_url(): one new, empty schema per call in the database named by
// HERALD_TEST_POSTGRES_URL, selected through the URL's search_path. A schema is as isolated as a
// database for the store (its tables, functions and notifications are per schema) and costs
// nothing to create or drop, whereas every DROP DATABASE forces a checkpoint (seconds with fsync
// on). The schemas are dropped when the test process exits.
#include <unistd.h>

#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "store/postgres/pg_support.h"
#include "test_backends.h"
#include "postgres_test_util.h"

namespace herald::testing {
namespace {

struct Registry {
  std::mutex mu;  // guards created and admin
  std::vector<std::string> created;
  herald::detail::pg::Conn admin;
};

Registry& registry() {
  static Registry* r = new Registry();  // leaked on purpose: used from atexit
  return *r;
}

void drop_created_databases() {
  Registry& r = registry();
  std::lock_guard lock(r.mu);
  if (!r.admin) return;
  for (const std::string& name : r.created) {
    const std::string sql = "DROP SCHEMA IF EXISTS " + name + " CASCADE";
    (void)herald::detail::pg::exec_simple(r.admin.get(), sql.c_str(), "drop test schema");
  }
  r.created.clear();
  r.admin.reset();
}

}  // namespace

std::string postgres_url_with_database(const std::string& url, const std::string& database) {
  const auto scheme = url.find("://");
  if (scheme == std::string::npos) throw std::invalid_argument("not a URL: " + url);
  const auto path = url.find('/', scheme + 3);
  const auto query = url.find('?', scheme + 3);
  if (path == std::string::npos || (query != std::string::npos && query < path)) {
    const auto at = query == std::string::npos ? url.size() : query;
    return url.substr(0, at) + "/" + database + url.substr(at);
  }
  const auto end = query == std::string::npos ? url.size() : query;
  return url.substr(0, path + 1) + database + url.substr(end);
}

std::string postgres_url_with_schema(const std::string& url, const std::string& schema) {
  const char* sep = url.find('?') == std::string::npos ? "?" : "&";
  return url + sep + "options=-csearch_path%3D" + schema;
}

std::string create_postgres_schema() {
  const char* base = std::getenv("HERALD_TEST_POSTGRES_URL");
  if (base == nullptr || *base == '\0') throw std::runtime_error("HERALD_TEST_POSTGRES_URL is not set");
  Registry& r = registry();
  std::lock_guard lock(r.mu);
  if (!r.admin || herald::detail::pg::broken(r.admin.get())) {
    auto c = herald::detail::pg::connect(base);
    if (!c) throw std::runtime_error("cannot reach HERALD_TEST_POSTGRES_URL: " + c.status().to_string());
    r.admin = std::move(*c);
    static bool registered = false;
    if (!registered) {
      registered = true;
      std::atexit(drop_created_databases);
    }
  }
  static int counter = 0;
  const std::string name =
      "herald_test_" + std::to_string(::getpid()) + "_" + std::to_string(++counter);
  const std::string sql = "SET client_min_messages = warning; CREATE SCHEMA " + name;
  Status s = herald::detail::pg::exec_simple(r.admin.get(), sql.c_str(), "create test schema");
  if (!s.is_ok()) throw std::runtime_error(s.to_string());
  r.created.push_back(name);
  return postgres_url_with_schema(base, name);
}

std::string fresh_postgres_url() { return create_postgres_schema(); }

}  // namespace herald::testing
