// The defaults of EventLog's and ProcessState's overridable methods: read_all_shared as one read_all result owned by
// the slice itself, and the document reads as one transaction each. Backends override them for speed.
#include "herald/event_log.h"
#include "herald/process_state.h"

namespace herald {

Result<SharedSlice> EventLog::read_all_shared(std::int64_t from_position, std::size_t max_count,
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

Result<std::string> ProcessState::read_document(std::string_view collection, std::string_view key) {
  std::string out;
  Status s = transact([&](StoreTransaction& tx) -> Status {
    auto doc = tx.get_document(collection, key);
    if (!doc) return doc.status();
    out = std::move(*doc);
    return {};
  });
  if (!s) return s;
  return out;
}

Result<std::vector<Document>> ProcessState::read_documents(std::string_view collection, std::string_view after_key,
                                                           std::size_t limit) {
  std::vector<Document> out;
  Status s = transact([&](StoreTransaction& tx) -> Status {
    auto page = tx.list_documents(collection, after_key, limit);
    if (!page) return page.status();
    out = std::move(*page);
    return {};
  });
  if (!s) return s;
  return out;
}

}  // namespace herald
