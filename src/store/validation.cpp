#include "store/validation.h"

#include <algorithm>
#include <string>
#include <unordered_set>
#include <vector>

#include "core/json_codec.h"
#include "herald/id.h"

namespace herald::detail {

Status validate_stream_id(std::string_view stream_id) {
  if (stream_id.empty()) return Status::invalid_argument("stream id is empty");
  if (stream_id.size() > kMaxStreamIdBytes) {
    return Status::invalid_argument("stream id is " + std::to_string(stream_id.size()) +
                                    " bytes; the limit is " + std::to_string(kMaxStreamIdBytes));
  }
  return {};
}

Status validate_read_stream(std::string_view stream_id, std::int64_t from_version) {
  HERALD_RETURN_IF_ERROR(validate_stream_id(stream_id));
  if (from_version < 0) {
    return Status::invalid_argument("from_version must be >= 0, got " + std::to_string(from_version));
  }
  return {};
}

Status validate_read_all(std::int64_t from_position) {
  if (from_position < 0) {
    return Status::invalid_argument("from_position must be >= 0, got " + std::to_string(from_position));
  }
  return {};
}

Status prepare_append(std::string_view stream_id, ExpectedVersion expected,
                      std::vector<EventData>& events, const StoreOptions& options) {
  HERALD_RETURN_IF_ERROR(validate_stream_id(stream_id));
  if (expected.kind() == ExpectedVersion::Kind::exact && expected.version() < 0) {
    return Status::invalid_argument("exact expected version must be >= 0, got " +
                                    std::to_string(expected.version()));
  }
  if (events.empty()) return Status::invalid_argument("append needs at least one event");
  if (events.size() > options.max_events_per_append) {
    return Status::invalid_argument("append of " + std::to_string(events.size()) +
                                    " events; the limit is " +
                                    std::to_string(options.max_events_per_append));
  }
  for (std::size_t i = 0; i < events.size(); ++i) {
    EventData& e = events[i];
    // Built only on failure: this loop is on every append's hot path.
    auto where = [i] { return "event " + std::to_string(i) + ": "; };
    if (e.type.empty()) return Status::invalid_argument(where() + "type is empty");
    if (e.type.size() > 256) return Status::invalid_argument(where() + "type is over 256 bytes");
    if (e.payload.size() > options.max_payload_bytes) {
      return Status::invalid_argument(where() + "payload is " + std::to_string(e.payload.size()) +
                                      " bytes; the limit is " +
                                      std::to_string(options.max_payload_bytes));
    }
    if (!is_valid_json(e.payload)) {
      return Status::invalid_argument(where() + "payload is not valid JSON nested at most " +
                                      std::to_string(kMaxJsonDepth) + " deep");
    }
    if (e.id.empty()) {
      e.id = new_uuid_v7();
    } else if (!is_uuid(e.id)) {
      return Status::invalid_argument(where() + "id '" + e.id + "' is not a UUID");
    }
  }
  if (events.size() < 2) return {};
  // Sorting views costs one allocation; a hash set would cost one per event.
  std::vector<std::string_view> sorted;
  sorted.reserve(events.size());
  for (const EventData& e : events) sorted.push_back(e.id);
  std::sort(sorted.begin(), sorted.end());
  if (std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end()) return {};
  // Some id repeats: name the first event that repeats an earlier one.
  std::unordered_set<std::string_view> seen;
  for (std::size_t i = 0; i < events.size(); ++i) {
    if (!seen.insert(events[i].id).second) {
      return Status::invalid_argument("event " + std::to_string(i) + ": id " + events[i].id +
                                      " appears twice in one append");
    }
  }
  return Status::internal("duplicate event id found by sorting but not by scanning");
}

Status validate_name(std::string_view what, std::string_view name) {
  if (name.empty()) return Status::invalid_argument(std::string(what) + " is empty");
  return {};
}

Status validate_checkpoint_name(std::string_view subscription) {
  return validate_name("subscription name", subscription);
}

Status validate_checkpoint(std::string_view subscription, std::int64_t position) {
  HERALD_RETURN_IF_ERROR(validate_checkpoint_name(subscription));
  if (position < 0) {
    return Status::invalid_argument("checkpoint position must be >= 0, got " + std::to_string(position));
  }
  return {};
}

Status validate_collection(std::string_view collection) { return validate_name("collection", collection); }

Status validate_document_key(std::string_view collection, std::string_view key) {
  HERALD_RETURN_IF_ERROR(validate_collection(collection));
  return validate_name("document key", key);
}

Status validate_document(std::string_view collection, std::string_view key, std::string_view json) {
  HERALD_RETURN_IF_ERROR(validate_document_key(collection, key));
  if (!is_valid_json(json)) {
    return Status::invalid_argument("document '" + std::string(key) + "' is not valid JSON nested at most " +
                                    std::to_string(kMaxJsonDepth) + " deep");
  }
  return {};
}

Status validate_inbox_record(std::string_view handler, std::string_view event_id) {
  HERALD_RETURN_IF_ERROR(validate_name("inbox handler", handler));
  return validate_name("inbox event id", event_id);
}

Status validate_dead_letter(const DeadLetter& entry) {
  HERALD_RETURN_IF_ERROR(validate_name("dead letter handler", entry.handler));
  return validate_name("dead letter event id", entry.event_id);
}

Status validate_lease_names(std::string_view name, std::string_view owner) {
  HERALD_RETURN_IF_ERROR(validate_name("lease name", name));
  return validate_name("lease owner", owner);
}

Status validate_lease(std::string_view name, std::string_view owner, std::chrono::milliseconds ttl) {
  HERALD_RETURN_IF_ERROR(validate_lease_names(name, owner));
  if (ttl.count() <= 0) {
    return Status::invalid_argument("lease ttl must be positive, got " + std::to_string(ttl.count()) + " ms");
  }
  return {};
}

Status validate_lease_name(std::string_view name) { return validate_name("lease name", name); }

Status lease_lost_error(std::string_view name, std::int64_t token, std::int64_t current) {
  if (current == 0) {
    return Status::lease_lost("lease '" + std::string(name) + "' was never granted (token " + std::to_string(token) + ")");
  }
  return Status::lease_lost("lease '" + std::string(name) + "' is now held under token " + std::to_string(current) +
                            ", not " + std::to_string(token));
}

bool same_ids(const std::vector<RecordedEvent>& stored, const std::vector<EventData>& events) {
  if (stored.size() != events.size()) return false;
  for (std::size_t i = 0; i < stored.size(); ++i) {
    if (stored[i].id != events[i].id) return false;
  }
  return true;
}

}  // namespace herald::detail
