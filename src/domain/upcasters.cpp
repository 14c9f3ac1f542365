#include <charconv>
#include <exception>

#include "herald/aggregate.h"

namespace herald {

Status UpcasterRegistry::add(std::string event_type, int from_version, Step step) {
  if (event_type.empty()) return Status::invalid_argument("upcaster: empty event type");
  if (from_version < 1) return Status::invalid_argument("upcaster: from_version must be >= 1");
  if (!step) return Status::invalid_argument("upcaster: null step");
  auto key = std::make_pair(event_type, from_version);
  if (steps_.count(key) != 0) {
    return Status::already_exists("upcaster for " + event_type + " v" + std::to_string(from_version) +
                                  " already registered");
  }
  steps_.emplace(std::move(key), std::move(step));
  int& current = current_[event_type];
  current = std::max(current, from_version + 1);
  return {};
}

int UpcasterRegistry::current_version(std::string_view event_type) const {
  auto it = current_.find(event_type);
  return it == current_.end() ? 1 : it->second;
}

Status UpcasterRegistry::upcast(RecordedEvent& event) const {
  int version = 1;
  auto found = event.metadata.extra.find(std::string(kSchemaMetadataKey));
  if (found != event.metadata.extra.end()) {
    const std::string& text = found->second;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), version);
    if (ec != std::errc{} || end != text.data() + text.size() || version < 1) {
      return Status::corruption("event " + event.id + ": schema version '" + text +
                                "' is not a positive integer");
    }
  }
  const int target = current_version(event.type);
  if (version == target) return {};
  if (version > target) {
    return Status::corruption("event " + event.id + " (" + event.type + ") has schema v" +
                              std::to_string(version) + ", newer than the v" +
                              std::to_string(target) + " this build reads");
  }
  auto payload = nlohmann::json::parse(event.payload, nullptr, false);
  if (payload.is_discarded()) return Status::corruption("event " + event.id + ": payload is not JSON");
  for (int v = version; v < target; ++v) {
    auto step = steps_.find(std::make_pair(event.type, v));
    if (step == steps_.end()) {
      return Status::corruption("no upcaster for " + event.type + " v" + std::to_string(v));
    }
    Status s;
    try {
      s = step->second(payload);
    } catch (const std::exception& ex) {
      // A step that throws on an odd payload must not take the reader down with it.
      s = Status::corruption("upcaster " + event.type + " v" + std::to_string(v) + " threw: " + ex.what());
    }
    if (!s) return s;
  }
  event.payload = payload.dump();
  event.metadata.extra[std::string(kSchemaMetadataKey)] = std::to_string(target);
  return {};
}

}  // namespace herald
