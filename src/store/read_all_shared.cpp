// The default EventStore::read_all_shared: one read_all result, owned by the slice itself.
#include "herald/event_store.h"

namespace herald {

Result<SharedSlice> EventStore::read_all_shared(std::int64_t from_position, std::size_t max_count,
                                                const ReadFilter& filter) {
  auto slice = read_all(from_position, max_count, filter);
  if (!slice) return slice.status();
  auto owned = std::make_shared<const std::vector<RecordedEvent>>(std::move(slice->events));
  SharedSlice out;
  out.events.reserve(owned->size());
  for (const RecordedEvent& e : *owned) out.events.push_back(&e);
  out.owner = std::move(owned);
  out.next_position = slice->next_position;
  out.end_of_log = slice->end_of_log;
  return out;
}

}  // namespace herald
