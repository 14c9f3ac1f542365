// Internal: recent read_all_shared pages shared between the bus's readers (every lane of every
// handler, and the live feed). Handlers that keep up with the log read the same positions at
// about the same time; sharing a page saves each of them a database read and a copy of every
// event, which is most of the cost of dispatching an event to a no-op handler. (The memory
// store's pages are copy-free already; the cache then only saves the store's lock.)
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "herald/event_store.h"

namespace herald::bus {

// A run of matching events at and after some position: events[first..] of a shared page.
struct Page {
  std::shared_ptr<const SharedSlice> slice;
  std::size_t first = 0;  // index of the first event at or after the requested position

  std::size_t size() const { return slice ? slice->events.size() - first : 0; }
  const RecordedEvent& operator[](std::size_t i) const { return *slice->events[first + i]; }
  std::int64_t next_position() const { return slice->next_position; }
  bool end_of_log() const { return slice->end_of_log; }
};

class BatchCache {
 public:
  explicit BatchCache(std::shared_ptr<EventStore> store) : store_(std::move(store)) {}

  // The matching events from `from` on, like store.read_all_shared(from, max_count, filter) but
  // possibly fewer (a cached page that covers `from`). Only the filter's event_types may be set: it is
  // the cache key.
  Result<Page> read(std::int64_t from, std::size_t max_count, const ReadFilter& filter);

 private:
  struct Entry {
    std::string key;  // the filter's event types, joined
    std::int64_t start = 0;
    std::shared_ptr<const SharedSlice> slice;
  };
  static constexpr std::size_t kEntries = 32;

  const std::shared_ptr<EventStore> store_;
  std::mutex mu_;               // guards entries_ and next_victim_
  std::vector<Entry> entries_;  // at most kEntries, replaced round-robin
  std::size_t next_victim_ = 0;
};

}  // namespace herald::bus
