#include "herald/event.h"

#include <algorithm>

#include "herald/event_store.h"

namespace herald {

std::string_view stream_category(std::string_view stream_id) {
  auto dash = stream_id.find('-');
  return dash == std::string_view::npos ? stream_id : stream_id.substr(0, dash);
}

std::string_view RecordedEvent::category() const { return stream_category(stream_id); }

std::string ExpectedVersion::to_string() const {
  switch (kind_) {
    case Kind::any: return "any";
    case Kind::no_stream: return "no_stream";
    case Kind::stream_exists: return "stream_exists";
    case Kind::exact: return std::to_string(version_);
  }
  return "?";
}

bool ReadFilter::matches(const RecordedEvent& e) const {
  if (!event_types.empty() &&
      std::find(event_types.begin(), event_types.end(), e.type) == event_types.end()) {
    return false;
  }
  if (!category.empty() && e.category() != category) return false;
  if (!stream_id.empty() && e.stream_id != stream_id) return false;
  if (since && e.recorded_at < *since) return false;
  if (until && e.recorded_at >= *until) return false;
  if (!correlation_id.empty() && e.metadata.correlation_id != correlation_id) return false;
  return true;
}

}  // namespace herald
