// Input checks every backend applies before touching its database, so that bad input is rejected
// the same way everywhere and writes nothing.
#pragma once

#include <string_view>
#include <vector>

#include "herald/event_store.h"

namespace herald::detail {

inline constexpr std::size_t kMaxStreamIdBytes = 256;

// invalid_argument for an empty stream id or one over kMaxStreamIdBytes.
Status validate_stream_id(std::string_view stream_id);

// invalid_argument for a bad stream id (as validate_stream_id) or a negative from_version.
Status validate_read_stream(std::string_view stream_id, std::int64_t from_version);

// invalid_argument for a negative from_position of read_all / read_all_shared.
Status validate_read_all(std::int64_t from_position);

// Checks an append's input against `options` and gives every event without an id a fresh UUIDv7.
// invalid_argument (naming the offending event index) for: a negative exact expected version, no
// events, too many events, an empty or over-long type, a payload over the limit or not JSON, a
// malformed id, a duplicate id.
Status prepare_append(std::string_view stream_id, ExpectedVersion expected,
                      std::vector<EventData>& events, const StoreOptions& options);

// Whether a batch of stored events (in version order) carries exactly the ids of `events`.
bool same_ids(const std::vector<RecordedEvent>& stored, const std::vector<EventData>& events);

}  // namespace herald::detail
