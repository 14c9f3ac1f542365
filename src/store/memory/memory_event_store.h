#pragma once

#include <memory>

#include "herald/event_store.h"

namespace herald::detail {

// The in-memory backend ("memory:"). Everything is lost when it is destroyed.
Result<std::unique_ptr<EventStore>> open_memory_store(const StoreOptions& options);

}  // namespace herald::detail
