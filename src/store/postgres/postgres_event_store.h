#pragma once

#include <memory>
#include <string>

#include "herald/event_store.h"

namespace herald::detail {

// The PostgreSQL backend ("postgres://user:pass@host:port/db"), on libpq.
Result<std::unique_ptr<EventStore>> open_postgres_store(std::string url, const StoreOptions& options);

}  // namespace herald::detail
