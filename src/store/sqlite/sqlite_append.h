// Appending on the SQLite writer connection: one append inside its savepoint, and the idempotent
// retry rule (the same ids, in the same order, as one whole earlier append, with an expected version
// that held just before it).
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "herald/event_log.h"
#include "store/sqlite/sqlite_connection.h"

namespace herald::detail::sqlite {

// One append's input (already checked by prepare_append) and, after apply_append, its result.
struct AppendRequest {
  std::string_view stream_id;
  ExpectedVersion expected = ExpectedVersion::any();
  std::vector<EventData>* events = nullptr;  // consumed by a successful apply_append
  AppendResult result;
};

// Appends r's events at `next_position` on `c`, inside the savepoint named "request" that the
// caller opened, all stamped `recorded_at` (microseconds). On success fills r.result, advances
// next_position and moves the new events, as recorded, to the end of `written`; an idempotent
// retry fills r.result and writes nothing. Failure: wrong_expected_version, already_exists, or the
// database's error; the caller rolls back to the savepoint.
Status apply_append(Connection& c, AppendRequest& r, std::int64_t recorded_at, std::int64_t& next_position,
                    std::vector<RecordedEvent>& written);

}  // namespace herald::detail::sqlite
