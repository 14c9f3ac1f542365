// The backends the store contract suite runs against. Each test gets a fresh, empty store from
// its backend's fresh_url(), so tests never see each other's data.
#pragma once

#include <chrono>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "herald/event_store.h"

namespace herald::testing {

struct Backend {
  std::string name;  // used in test names, e.g. StoreContract/Backends.AppendAny/sqlite
  // Whether data survives close() and reopening the same URL (reopen tests skip the others).
  bool persistent = false;
  // A URL naming a fresh, empty store for one test.
  std::function<std::string()> fresh_url;
  // Opens the store the URL names; null means open_store(url, options).
  std::function<Result<std::unique_ptr<EventStore>>(const std::string& url, const StoreOptions& options)> open;
  // Makes `elapsed` pass for the leases of the store at `url`, when they run on a clock other
  // than StoreOptions::clock (PostgreSQL's server clock: every expiry is moved earlier by it).
  // Null: advancing the store's clock is enough.
  std::function<void(const std::string& url, std::chrono::microseconds elapsed)> pass_lease_time;
};

// Opens `backend`'s store for `url`.
Result<std::unique_ptr<EventStore>> open_backend(const Backend& backend, const std::string& url,
                                                 const StoreOptions& options);

// Test output names the backend instead of dumping its bytes.
inline void PrintTo(const Backend& backend, std::ostream* os) { *os << backend.name; }

// memory, sqlite, sqlite_upgraded (a database created at the previous released schema and
// migrated by opening it) and "combined" (the log of one SQLite database paired by combine_stores
// with the process state of another) always; postgres and postgres_upgraded when the suite is built with HERALD_TEST_POSTGRES=ON and
// the environment variable HERALD_TEST_POSTGRES_URL is set at run time.
const std::vector<Backend>& backends();

// A fresh, empty PostgreSQL database URL for one test, derived from HERALD_TEST_POSTGRES_URL.
// Implemented by the PostgreSQL backend's owner in tests/store/postgres_backend.cpp, which is
// compiled only with -DHERALD_TEST_POSTGRES=ON.
std::string fresh_postgres_url();

}  // namespace herald::testing
