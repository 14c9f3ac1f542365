// The SQLite backend's tail cache: the most recently committed events, in memory, from which
// read_all serves live subscribers and warm reads without decoding rows. Filled by the writer
// after each successful COMMIT, so it holds only committed events, gap-free, and always ends
// exactly at the published head (it publishes the head itself, under its own lock).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <shared_mutex>
#include <vector>

#include "herald/event_log.h"
#include "store/head_signal.h"

namespace herald::detail::sqlite {

// How many events a filtered read_all examines at most before returning a (possibly empty) page
// that still makes progress; shared by the cache and the SQLite reads.
inline constexpr std::size_t kFilteredScanLimit = 65'536;

// Thread-safe: one writer thread calls publish/restart_at, any thread serve/size.
class TailCache {
 public:
  // Holds at most `max_bytes` (approximately) and `max_events`; publishes the head to `head`.
  TailCache(std::size_t max_bytes, std::size_t max_events, HeadSignal& head)
      : max_bytes_(max_bytes), max_events_(max_events), head_(head) {}

  // Empties the cache so that it starts after `head`, and publishes `head` (on open, and when
  // another process appended to the file so the cache no longer ends at the head).
  void restart_at(std::int64_t head);

  // After a successful COMMIT: adds `events` (positions head + 1 .. last, in order) and publishes
  // `last` as the head, evicting the oldest events past the bounds. Out of memory empties the cache
  // rather than leave it short of the head.
  void publish(std::vector<RecordedEvent> events, std::int64_t last);

  // Serves read_all from the cache when it covers from_position (true, `slice` filled); false when
  // SQLite must.
  bool serve(std::int64_t from, std::size_t max_count, const ReadFilter& filter, AllSlice& slice) const;

  std::int64_t size() const;

 private:
  const std::size_t max_bytes_;
  const std::size_t max_events_;
  HeadSignal& head_;
  // Lock order: mu_ before head_'s own (publish() holds both so the cache ends at the head).
  mutable std::shared_mutex mu_;     // guards cache_, cache_first_, cache_bytes_
  std::deque<RecordedEvent> cache_;  // committed events cache_first_ .. head, in order
  std::int64_t cache_first_ = 0;
  std::size_t cache_bytes_ = 0;
};

}  // namespace herald::detail::sqlite
