// Internal: the bus's durable handlers by name, so two handlers cannot share one name (and with
// it one checkpoint, inbox and dead-letter list).
#pragma once

#include <memory>
#include <mutex>
#include <string_view>
#include <vector>

#include "herald/handler.h"

namespace herald::bus {

// Thread-safe: every method takes mu_.
class HandlerRegistry {
 public:
  // Adds `handler` (shared with the caller). already_exists for a duplicate name;
  // invalid_argument for a null handler or an empty name; nothing is added on failure.
  Status add(std::shared_ptr<EventHandler> handler);
  // not_found when absent.
  Status remove(std::string_view name);
  // Null when absent.
  std::shared_ptr<EventHandler> find(std::string_view name) const;
  std::vector<std::shared_ptr<EventHandler>> list() const;  // in name order

 private:
  mutable std::mutex mu_;
  std::vector<std::shared_ptr<EventHandler>> handlers_;  // guarded by mu_, sorted by name
};

}  // namespace herald::bus
