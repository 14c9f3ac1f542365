#pragma once

#include <memory>
#include <string>

#include "herald/event_store.h"

namespace herald::detail {

// The embedded backend ("sqlite:///path/events.db"). `path` is the file system path from the URL
// (for "sqlite:///tmp/x.db" it is "/tmp/x.db"); the directory must exist or be creatable.
Result<std::unique_ptr<EventStore>> open_sqlite_store(std::string url, std::string path,
                                                      const StoreOptions& options);

}  // namespace herald::detail
