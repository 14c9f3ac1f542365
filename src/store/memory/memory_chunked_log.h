// The memory backend's log storage: events in fixed-size chunks that never move, so readers can
// hold pages of them without copying, and the string-keyed hash map its indexes use.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "herald/event.h"

namespace herald::detail::memory {

// Deliberately not noexcept: libstdc++ then stores each node's hash code, so a lookup compares
// codes instead of re-hashing neighbouring keys and chasing their heap strings. With a million
// event ids that halves the cost of an append's id check.
struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
template <class V>
using StringMap = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;

// One stored event plus the bounds of the append batch that wrote it (for idempotent retries).
struct Slot {
  RecordedEvent event;
  std::int64_t batch_first = 0;  // position of the batch's first event
  std::int64_t batch_last = 0;   // position of the batch's last event
};

// The global log, in fixed-size chunks (index = global position). A chunk reserves its slots
// once, so they never move, and a slot never changes after it is written: a reader that took a
// chunk under the store's mutex may keep reading the slots that existed then without the mutex
// (read_all_shared hands them out without copying). A single vector would also move every event
// each time it grew. Not thread-safe itself: the store's mu_ guards it.
class ChunkedLog {
 public:
  static constexpr std::size_t kChunkSlots = 4096;
  struct Chunk {
    Chunk() { slots.reserve(kChunkSlots); }
    std::vector<Slot> slots;  // capacity kChunkSlots, filled in order
  };

  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  const Slot& operator[](std::size_t position) const {
    return chunks_[position / kChunkSlots]->slots[position % kChunkSlots];
  }
  const Slot& front() const { return (*this)[0]; }
  const Slot& back() const { return (*this)[size_ - 1]; }
  // The chunk holding `position` (< size()), shared with whoever reads it.
  const std::shared_ptr<const Chunk>& chunk_of(std::size_t position) const {
    return chunks_[position / kChunkSlots];
  }

  // Allocates whatever `n` more slots need, so that n push_backs cannot throw.
  void reserve_more(std::size_t n) {
    while (chunks_.size() * kChunkSlots < size_ + n) chunks_.push_back(std::make_shared<Chunk>());
  }
  // REQUIRES: reserve_more covered this slot.
  void push_back(Slot&& slot) {
    // const_cast: the chunks are shared as const with readers, but only appended to here, past
    // every slot a reader can see.
    auto& chunk = const_cast<Chunk&>(*chunks_[size_ / kChunkSlots]);
    chunk.slots.push_back(std::move(slot));
    ++size_;
  }

 private:
  std::vector<std::shared_ptr<const Chunk>> chunks_;
  std::size_t size_ = 0;
};

}  // namespace herald::detail::memory
