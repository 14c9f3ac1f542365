// Input checks every backend applies before touching its database, so that bad input is rejected
// the same way everywhere and writes nothing.
#pragma once

#include <chrono>
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

// ---- process state: one message per check, whichever backend runs it ----

// invalid_argument "<what> is empty" for an empty name.
Status validate_name(std::string_view what, std::string_view name);

// A checkpoint's subscription name (not empty) and, when saving, its position (>= 0).
Status validate_checkpoint_name(std::string_view subscription);
Status validate_checkpoint(std::string_view subscription, std::int64_t position);

// A document's collection and key (neither empty); for put, also its JSON (parses, depth bounded).
Status validate_document_key(std::string_view collection, std::string_view key);
Status validate_collection(std::string_view collection);
Status validate_document(std::string_view collection, std::string_view key, std::string_view json);

// An inbox record's handler and event id (neither empty).
Status validate_inbox_record(std::string_view handler, std::string_view event_id);

// A new dead letter: a handler and an event id.
Status validate_dead_letter(const DeadLetter& entry);

// A lease's name and owner (neither empty) and, when acquiring, its ttl (positive).
Status validate_lease_names(std::string_view name, std::string_view owner);
Status validate_lease(std::string_view name, std::string_view owner, std::chrono::milliseconds ttl);
// The name StoreTransaction::check_lease is given (not empty).
Status validate_lease_name(std::string_view name);

// The lease_lost every backend answers when `token` is not lease `name`'s current token
// (`current`, 0 when the lease was never granted).
Status lease_lost_error(std::string_view name, std::int64_t token, std::int64_t current);

// Whether a batch of stored events (in version order) carries exactly the ids of `events`.
bool same_ids(const std::vector<RecordedEvent>& stored, const std::vector<EventData>& events);

}  // namespace herald::detail
