// The SQLite backend's reads of the log, on a reader connection the caller holds: one stream,
// pages of the global log (filtered, or one stream's, by its index), versions and counts.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "herald/event_log.h"
#include "store/sqlite/sqlite_connection.h"

namespace herald::detail::sqlite {

// EventLog::read_stream's rows (the input is already checked). not_found for an absent stream.
Result<std::vector<RecordedEvent>> read_stream_rows(Connection& c, std::string_view stream_id,
                                                    std::int64_t from_version, std::size_t max_count,
                                                    ReadDirection direction);

// EventLog::read_all's page from the database, bounded by `head`, the published head, not by what
// the snapshot holds: so a page's end_of_log and next_position agree with head_position(), since
// every position up to the published head is committed, hence in this snapshot.
Result<AllSlice> read_log_rows(Connection& c, std::int64_t from_position, std::size_t max_count,
                               const ReadFilter& filter, std::int64_t head);

// The stream's version, or kNoStreamVersion.
Result<std::int64_t> read_stream_version(Connection& c, std::string_view stream_id);

// Fills the counts and bounds of `st` from one snapshot (not the file sizes).
Status read_log_stats(Connection& c, StoreStats& st);

}  // namespace herald::detail::sqlite
