// HandlerRegistry: the bus's handler names, kept sorted.
#include "bus/handler_registry.h"

#include <algorithm>

namespace herald::bus {

Status HandlerRegistry::add(std::shared_ptr<EventHandler> handler) {
  if (!handler) return Status::invalid_argument("handler is null");
  std::string name = handler->name();
  if (name.empty()) return Status::invalid_argument("handler name is empty");
  std::lock_guard lock(mu_);
  auto it = std::lower_bound(handlers_.begin(), handlers_.end(), name,
                             [](const auto& h, const std::string& n) { return h->name() < n; });
  if (it != handlers_.end() && (*it)->name() == name) {
    return Status::already_exists("a handler named '" + name + "' is already registered");
  }
  handlers_.insert(it, std::move(handler));
  return Status::ok();
}

Status HandlerRegistry::remove(std::string_view name) {
  std::lock_guard lock(mu_);
  auto it = std::find_if(handlers_.begin(), handlers_.end(),
                         [&](const auto& h) { return h->name() == name; });
  if (it == handlers_.end()) return Status::not_found("no handler named '" + std::string(name) + "'");
  handlers_.erase(it);
  return Status::ok();
}

std::shared_ptr<EventHandler> HandlerRegistry::find(std::string_view name) const {
  std::lock_guard lock(mu_);
  for (const auto& h : handlers_) {
    if (h->name() == name) return h;
  }
  return nullptr;
}

std::vector<std::shared_ptr<EventHandler>> HandlerRegistry::list() const {
  std::lock_guard lock(mu_);
  return handlers_;
}

}  // namespace herald::bus
