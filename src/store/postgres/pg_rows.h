// Decoding the backend's result rows into herald types. The column orders are those of
// pg_sql.h's kEventColumns and kDeadLetterColumns.
#pragma once

#include "herald/event_store.h"
#include "store/postgres/pg_support.h"

namespace herald::detail::pg {

// The event in `row` whose kEventColumns start at column `first_column`. corruption when its
// metadata cannot be read.
Result<RecordedEvent> decode_event(const Rows& rows, int row, int first_column);

// The dead letter in `row` (kDeadLetterColumns from column 0).
DeadLetter decode_dead_letter(const Rows& rows, int row);

// The other way: kAddDeadLetter's parameters for `entry`, and its already_exists when the
// insert came back empty (the handler had dead-lettered the event before).
Params dead_letter_params(const DeadLetter& entry);
Status dead_letter_exists(const DeadLetter& entry);

}  // namespace herald::detail::pg
