#include "store/sqlite/sqlite_reads.h"

#include <algorithm>
#include <string>
#include <utility>

#include "store/sqlite/sqlite_reader_pool.h"
#include "store/sqlite/sqlite_rows.h"
#include "store/sqlite/sqlite_sql.h"
#include "store/sqlite/sqlite_tail_cache.h"

namespace herald::detail::sqlite {
namespace {

// The stream's first version whose position is >= `from` (its version + 1 when none is), by
// binary search over versions: O(log^2 n) index probes instead of walking the stream from
// version 0 on every page.
Result<std::int64_t> first_version_from(Connection& c, std::string_view stream_id,
                                                std::int64_t from) {
  std::int64_t hi = 0;  // one past the last version
  {
    HERALD_PREPARE(s, c, kStreamVersion);
    s.bind(1, stream_id);
    int rc = s.step();
    if (rc == SQLITE_DONE) return std::int64_t{0};
    if (rc != SQLITE_ROW) return c.error(rc, "reading a stream's version");
    hi = s.int64(0) + 1;
  }
  std::int64_t lo = 0;
  HERALD_PREPARE(s, c, kPositionOfVersion);
  while (lo < hi) {
    const std::int64_t mid = lo + (hi - lo) / 2;
    s.bind(1, stream_id);
    s.bind(2, mid);
    int rc = s.step();
    // A version the streams table promises but this snapshot lacks counts as "after".
    const bool at_or_after = rc != SQLITE_ROW || s.int64(0) >= from;
    sqlite3_reset(s.get());
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return c.error(rc, "locating a stream position");
    if (at_or_after) {
      hi = mid;
    } else {
      lo = mid + 1;
    }
  }
  return lo;
}

Result<AllSlice> read_all_of_stream(Connection& c, std::int64_t from, std::size_t max_count,
                                    const ReadFilter& filter, std::int64_t head) {
  AllSlice slice;
  slice.next_position = from;
  const std::size_t scan = std::max(max_count, kFilteredScanLimit);
  auto first_version = first_version_from(c, filter.stream_id, from);
  if (!first_version) return first_version.status();
  HERALD_PREPARE(s, c, kReadAllOfStream);
  s.bind(1, filter.stream_id);
  s.bind(2, *first_version);
  s.bind(3, from);
  s.bind(4, head);
  s.bind(5, clamp_limit(scan));
  std::size_t examined = 0;
  RecordedEvent e;
  int rc = SQLITE_DONE;
  while (slice.events.size() < max_count && (rc = s.step()) == SQLITE_ROW) {
    ++examined;
    HERALD_RETURN_IF_ERROR(read_event_row(s, e));
    slice.next_position = e.position + 1;
    if (filter.matches(e)) slice.events.push_back(std::move(e));
  }
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return c.error(rc, "reading a stream's events");
  // Every event of the stream up to the head was examined: skip the other streams' events too.
  if (slice.events.size() < max_count && examined < scan) {
    slice.next_position = std::max(slice.next_position, head + 1);
  }
  slice.end_of_log = slice.next_position > head;
  return slice;
}

}  // namespace

Result<std::vector<RecordedEvent>> read_stream_rows(Connection& c, std::string_view stream_id,
                                                    std::int64_t from_version, std::size_t max_count,
                                                    ReadDirection direction) {
  std::vector<RecordedEvent> out;
  if (max_count > 0) {
    HERALD_PREPARE(s, c, direction == ReadDirection::forwards ? kReadForwards : kReadBackwards);
    s.bind(1, stream_id);
    s.bind(2, from_version);
    s.bind(3, clamp_limit(max_count));
    out.reserve(std::min<std::size_t>(max_count, 1024));
    int rc;
    while ((rc = s.step()) == SQLITE_ROW) {
      HERALD_RETURN_IF_ERROR(read_event_row(s, out.emplace_back()));
    }
    if (rc != SQLITE_DONE) return c.error(rc, "reading a stream");
    if (!out.empty()) return out;
  }
  // Nothing returned: tell an empty range of an existing stream from an absent stream.
  HERALD_PREPARE(v, c, kStreamVersion);
  v.bind(1, stream_id);
  int rc = v.step();
  if (rc == SQLITE_DONE) return Status::not_found("stream '" + std::string(stream_id) + "' does not exist");
  if (rc != SQLITE_ROW) return c.error(rc, "reading a stream's version");
  return out;
}


Result<AllSlice> read_log_rows(Connection& c, std::int64_t from_position, std::size_t max_count,
                               const ReadFilter& filter, std::int64_t head) {
  AllSlice slice;
  if (!filter.stream_id.empty()) return read_all_of_stream(c, from_position, max_count, filter, head);

  // Unfiltered, a page examines max_count events; filtered, up to kFilteredScanLimit (so a
  // sparse filter returns a short page that still makes progress).
  const bool filtered = !filter.empty();
  const std::size_t scan = filtered ? std::max(max_count, kFilteredScanLimit) : max_count;
  HERALD_PREPARE(s, c, kReadAll);
  s.bind(1, from_position);
  s.bind(2, head);
  s.bind(3, clamp_limit(scan));
  slice.next_position = from_position;
  if (!filtered) slice.events.reserve(std::min<std::size_t>(max_count, 65536));
  std::size_t examined = 0;
  RecordedEvent scratch;
  int rc = SQLITE_DONE;
  while (slice.events.size() < max_count && (rc = s.step()) == SQLITE_ROW) {
    ++examined;
    if (!filtered) {
      HERALD_RETURN_IF_ERROR(read_event_row(s, slice.events.emplace_back()));
      slice.next_position = slice.events.back().position + 1;
    } else {
      HERALD_RETURN_IF_ERROR(read_event_row(s, scratch));
      slice.next_position = scratch.position + 1;
      if (filter.matches(scratch)) slice.events.push_back(std::move(scratch));
    }
  }
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return c.error(rc, "reading the log");
  // Every event up to the head was examined: the next page starts after it.
  if (slice.events.size() < max_count && examined < scan) {
    slice.next_position = std::max(slice.next_position, head + 1);
  }
  slice.end_of_log = slice.next_position > head;
  return slice;
}

Result<std::int64_t> read_stream_version(Connection& c, std::string_view stream_id) {
  HERALD_PREPARE(s, c, kStreamVersion);
  s.bind(1, stream_id);
  int rc = s.step();
  if (rc == SQLITE_DONE) return kNoStreamVersion;
  if (rc != SQLITE_ROW) return c.error(rc, "reading a stream's version");
  return s.int64(0);
}

Status read_log_stats(Connection& c, StoreStats& st) {
  {
    ReadTxn txn(c);
    HERALD_RETURN_IF_ERROR(txn.begin());
    {
      HERALD_PREPARE(s, c, kStreamCount);
      int rc = s.step();
      if (rc != SQLITE_ROW) return c.error(rc, "counting streams");
      st.stream_count = s.int64(0);
    }
    {
      HERALD_PREPARE(s, c, kTypeCounts);
      int rc;
      while ((rc = s.step()) == SQLITE_ROW) st.events_by_type.emplace(std::string(s.text(0)), s.int64(1));
      if (rc != SQLITE_DONE) return c.error(rc, "counting event types");
    }
    {
      HERALD_PREPARE(s, c, kFirstLast);
      int rc = s.step();
      if (rc != SQLITE_ROW) return c.error(rc, "reading the log's bounds");
      if (!s.is_null(0)) {
        st.first_position = s.int64(0);
        st.last_position = s.int64(1);
        st.total_events = st.last_position - st.first_position + 1;
      }
    }
    if (st.first_position >= 0) {
      for (auto [pos, out] : {std::pair{st.first_position, &st.first_recorded_at},
                              std::pair{st.last_position, &st.last_recorded_at}}) {
        HERALD_PREPARE(s, c, kRecordedAt);
        s.bind(1, pos);
        int rc = s.step();
        if (rc != SQLITE_ROW) return c.error(rc, "reading a recorded time");
        *out = timestamp_from_micros(s.int64(0));
      }
    }
  }
  return {};
}

}  // namespace herald::detail::sqlite
