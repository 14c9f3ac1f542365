#include "store/sqlite/sqlite_tail_cache.h"

#include <algorithm>
#include <mutex>

namespace herald::detail::sqlite {
namespace {

std::size_t approx_bytes(const RecordedEvent& e) {
  std::size_t n = sizeof(RecordedEvent) + e.stream_id.capacity() + e.id.capacity() +
                  e.type.capacity() + e.payload.capacity() + e.metadata.correlation_id.capacity() +
                  e.metadata.causation_id.capacity() + e.metadata.actor.capacity();
  for (const auto& [k, v] : e.metadata.extra) n += 64 + k.size() + v.size();
  return n;
}

}  // namespace

void TailCache::restart_at(std::int64_t head) {
  std::unique_lock lk(mu_);
  cache_.clear();
  cache_bytes_ = 0;
  cache_first_ = head + 1;
  head_.publish(head);
}

void TailCache::publish(std::vector<RecordedEvent> events, std::int64_t last) {
  {
    std::unique_lock lk(mu_);
    try {
      for (RecordedEvent& e : events) {
        cache_bytes_ += approx_bytes(e);
        cache_.push_back(std::move(e));
      }
    } catch (...) {
      // Out of memory: drop the cache rather than leave it short of the head; SQLite serves.
      cache_.clear();
      cache_bytes_ = 0;
      cache_first_ = last + 1;
    }
    while (!cache_.empty() && (cache_bytes_ > max_bytes_ || cache_.size() > max_events_)) {
      cache_bytes_ -= approx_bytes(cache_.front());
      cache_.pop_front();
      ++cache_first_;
    }
    // Still under mu_: the cache's end and the head move together.
    head_.publish(last);
  }
}

bool TailCache::serve(std::int64_t from, std::size_t max_count, const ReadFilter& filter,
                      AllSlice& slice) const {
  std::shared_lock lk(mu_);
  if (from < cache_first_) return false;
  const std::int64_t end = cache_first_ + static_cast<std::int64_t>(cache_.size());  // head + 1
  slice.next_position = from;
  if (from < end) {
    auto it = cache_.begin() + (from - cache_first_);
    if (filter.empty()) {
      const auto n = static_cast<std::ptrdiff_t>(
          std::min<std::size_t>(max_count, static_cast<std::size_t>(end - from)));
      slice.events.assign(it, it + n);
      slice.next_position = from + n;
    } else {
      const std::size_t scan = std::max(max_count, kFilteredScanLimit);
      for (std::size_t examined = 0;
           it != cache_.end() && examined < scan && slice.events.size() < max_count;
           ++it, ++examined) {
        slice.next_position = it->position + 1;
        if (filter.matches(*it)) slice.events.push_back(*it);
      }
    }
  }
  slice.end_of_log = slice.next_position >= end;
  return true;
}

std::int64_t TailCache::size() const {
  std::shared_lock lk(mu_);
  return static_cast<std::int64_t>(cache_.size());
}

}  // namespace herald::detail::sqlite
