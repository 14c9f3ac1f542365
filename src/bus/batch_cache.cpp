#include "bus/batch_cache.h"

#include <algorithm>

namespace herald::bus {
namespace {

std::string key_of(const ReadFilter& filter) {
  std::string key;
  for (const auto& t : filter.event_types) {
    key += t;
    key += '\x1f';  // cannot appear in a sane type name; keeps {"ab"} apart from {"a","b"}
  }
  return key;
}

}  // namespace

Result<Page> BatchCache::read(std::int64_t from, std::size_t max_count, const ReadFilter& filter) {
  std::string key = key_of(filter);
  {
    std::lock_guard lock(mu_);
    for (const auto& e : entries_) {
      // Recorded events never change, so any cached page covering `from` is still right about
      // [from, next_position); only its end_of_log may be stale, which costs the reader one more
      // (uncached) read.
      if (e.key != key || from < e.start || from >= e.slice->next_position) continue;
      const auto& events = e.slice->events;
      auto it = std::lower_bound(events.begin(), events.end(), from,
                                 [](const RecordedEvent* ev, std::int64_t p) { return ev->position < p; });
      // An empty remainder is an answer too: no match in [from, next_position).
      return Page{e.slice, static_cast<std::size_t>(it - events.begin())};
    }
  }
  auto slice = store_->read_all_shared(from, max_count, filter);
  if (!slice) return slice.status();
  auto shared = std::make_shared<const SharedSlice>(std::move(*slice));
  if (!shared->events.empty()) {
    std::lock_guard lock(mu_);
    Entry entry{std::move(key), from, shared};
    if (entries_.size() < kEntries) {
      entries_.push_back(std::move(entry));
    } else {
      entries_[next_victim_] = std::move(entry);
      next_victim_ = (next_victim_ + 1) % kEntries;
    }
  }
  return Page{std::move(shared), 0};
}

}  // namespace herald::bus
