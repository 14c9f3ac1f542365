#include <string>

#include "herald/event_store.h"
#include "store/memory/memory_event_store.h"
#include "store/sqlite/sqlite_event_store.h"
#ifdef HERALD_WITH_POSTGRES
#include "store/postgres/postgres_event_store.h"
#endif

namespace herald {

Result<std::unique_ptr<EventStore>> open_store(std::string_view url, const StoreOptions& options) {
  if (url == "memory:" || url == "memory://") return detail::open_memory_store(options);
  constexpr std::string_view kSqlite = "sqlite://";
  if (url.starts_with(kSqlite)) {
    std::string_view path = url.substr(kSqlite.size());
    if (path.empty()) return Status::invalid_argument("sqlite URL has no path: " + std::string(url));
    return detail::open_sqlite_store(std::string(url), std::string(path), options);
  }
  if (url.starts_with("postgres://") || url.starts_with("postgresql://")) {
#ifdef HERALD_WITH_POSTGRES
    return detail::open_postgres_store(std::string(url), options);
#else
    return Status::invalid_argument("this build has no PostgreSQL backend");
#endif
  }
  return Status::invalid_argument("unknown store URL '" + std::string(url) +
                                  "': expected memory:, sqlite:///path or postgres://…");
}

}  // namespace herald
