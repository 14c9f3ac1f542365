#include "store/sqlite/sqlite_append.h"

#include <algorithm>
#include <optional>
#include <string>
#include <utility>

#include "core/json_codec.h"
#include "store/sqlite/sqlite_rows.h"
#include "store/sqlite/sqlite_sql.h"

namespace herald::detail::sqlite {
namespace {

// If the request's events (same ids, same order) were appended earlier to the same stream at a
// version its expected version allows, that append's result; nullopt otherwise.
Result<std::optional<AppendResult>> find_earlier_append(Connection& c, const AppendRequest& r) {
  const std::vector<EventData>& events = *r.events;
  std::int64_t first_version = 0;
  {
    HERALD_PREPARE(s, c, kEventById);
    StoredEventId(events.front().id).bind(s, 1);
    int rc = s.step();
    if (rc == SQLITE_DONE) return std::optional<AppendResult>{};
    if (rc != SQLITE_ROW) return c.error(rc, "looking up an event id");
    if (s.text(0) != r.stream_id) return std::optional<AppendResult>{};
    // Only a whole earlier append is retried: the id must start a batch of the same size.
    if (s.is_null(3) ||
        s.int64(3) - s.int64(2) + 1 != static_cast<std::int64_t>(events.size())) {
      return std::optional<AppendResult>{};
    }
    first_version = s.int64(1);
  }
  if (!r.expected.matches(first_version - 1)) return std::optional<AppendResult>{};
  HERALD_PREPARE(s, c, kIdsFromVersion);
  s.bind(1, r.stream_id);
  s.bind(2, first_version);
  s.bind(3, static_cast<std::int64_t>(events.size()));
  AppendResult result;
  std::size_t i = 0;
  std::string stored_id;
  int rc;
  while ((rc = s.step()) == SQLITE_ROW) {
    read_event_id(s, 0, stored_id);
    if (stored_id != events[i].id) return std::optional<AppendResult>{};
    if (i == 0) result.first_position = s.int64(1);
    result.last_position = s.int64(1);
    ++i;
  }
  if (rc != SQLITE_DONE) return c.error(rc, "reading earlier events");
  if (i != events.size()) return std::optional<AppendResult>{};
  result.stream_version = first_version + static_cast<std::int64_t>(events.size()) - 1;
  return std::optional<AppendResult>{result};
}

// An event id of the request is already stored: either this is a retry of an earlier append
// (return its result) or the id is taken (already_exists). A retry is recognised when (1) its
// first id starts a stored append batch (batch_last is set) of the same stream, (2) that batch
// holds exactly these ids in this order, and (3) `expected` would have matched the stream just
// before that batch (version first_version - 1) — the same rule as the memory backend.
Status already_stored(Connection& c, AppendRequest& r) {
  // Undo this request's inserts so far: the retry check must see the store as it was.
  HERALD_RETURN_IF_ERROR(step(c, kRollbackTo));
  auto again = find_earlier_append(c, r);
  if (!again) return again.status();
  if (*again) {
    r.result = **again;
    return {};
  }
  // Name the first taken id (the failing statement may have held several).
  HERALD_PREPARE(s, c, kEventById);
  for (const EventData& e : *r.events) {
    StoredEventId(e.id).bind(s, 1);
    int rc = s.step();
    if (rc == SQLITE_ROW) {
      return Status::already_exists("event id " + e.id + " is already stored in stream '" +
                                    std::string(s.text(0)) + "' at version " +
                                    std::to_string(s.int64(1)));
    }
    sqlite3_reset(s.get());
    if (rc != SQLITE_DONE) return c.error(rc, "looking up an event id");
  }
  return Status::already_exists("an event id of this append is already stored");
}

}  // namespace

// Appends the request's events inside the current savepoint. On success advances
// next_position and moves the new events (as recorded) to the end of `written`.
Status apply_append(Connection& c, AppendRequest& r, std::int64_t recorded_at, std::int64_t& next_position,
                    std::vector<RecordedEvent>& written) {
  std::vector<EventData>& events = *r.events;
  std::int64_t current = kNoStreamVersion;
  {
    HERALD_PREPARE(s, c, kStreamVersion);
    s.bind(1, r.stream_id);
    int rc = s.step();
    if (rc == SQLITE_ROW) {
      current = s.int64(0);
    } else if (rc != SQLITE_DONE) {
      return c.error(rc, "reading a stream's version");
    }
  }
  if (!r.expected.matches(current)) {
    auto again = find_earlier_append(c, r);
    if (!again) return again.status();
    if (*again) {
      r.result = **again;
      return {};
    }
    return Status::wrong_expected_version(
        current, "stream '" + std::string(r.stream_id) + "' is at version " +
                     std::to_string(current) + ", expected " + r.expected.to_string());
  }

  std::vector<std::string> extras(events.size());
  for (std::size_t i = 0; i < events.size(); ++i) {
    if (!events[i].metadata.extra.empty()) extras[i] = encode_extra(events[i].metadata);
  }
  // Large appends insert kInsertChunk rows per statement: a quarter less CPU per event than one
  // statement per row (fewer steps, resets and VDBE entries); the tail goes row by row.
  for (std::size_t i = 0; i < events.size();) {
    const std::size_t rows = events.size() - i >= kInsertChunk ? kInsertChunk : 1;
    HERALD_PREPARE(s, c, rows == 1 ? kInsertEvent : insert_chunk_sql());
    for (std::size_t k = 0; k < rows; ++k, ++i) {
      const EventData& e = events[i];
      const int o = static_cast<int>(k) * kInsertColumns;
      s.bind(o + 1, next_position + static_cast<std::int64_t>(i));
      s.bind(o + 2, r.stream_id);
      s.bind(o + 3, current + 1 + static_cast<std::int64_t>(i));
      StoredEventId(e.id).bind(s, o + 4);
      s.bind(o + 5, e.type);
      s.bind(o + 6, e.payload);
      s.bind_or_null(o + 7, e.metadata.correlation_id);
      s.bind_or_null(o + 8, e.metadata.causation_id);
      s.bind_or_null(o + 9, e.metadata.actor);
      s.bind_or_null(o + 10, extras[i]);
      s.bind(o + 11, recorded_at);
      if (i == 0) {
        s.bind(o + 12, next_position + static_cast<std::int64_t>(events.size()) - 1);
      } else {
        s.bind_null(o + 12);
      }
    }
    int rc = s.step();
    if (rc == SQLITE_DONE) continue;
    if (rc == SQLITE_CONSTRAINT_UNIQUE &&
        std::string_view(sqlite3_errmsg(c.db())).find("events.event_id") != std::string_view::npos) {
      return already_stored(c, r);
    }
    if ((rc & 0xff) == SQLITE_CONSTRAINT) {
      return Status::corruption("inserting events at positions from " +
                                std::to_string(next_position) +
                                " broke a constraint: " + sqlite3_errmsg(c.db()));
    }
    return c.error(rc, "inserting events");
  }
  const auto n = static_cast<std::int64_t>(events.size());
  {
    HERALD_PREPARE(s, c, kUpsertStream);
    s.bind(1, r.stream_id);
    s.bind(2, current + n);
    HERALD_RETURN_IF_ERROR(run(c, s, "updating a stream's version"));
  }
  {
    // Usually one type per append; count each distinct type once.
    std::vector<std::pair<std::string_view, std::int64_t>> types;
    for (const EventData& e : events) {
      auto it = std::find_if(types.begin(), types.end(), [&](auto& t) { return t.first == e.type; });
      if (it == types.end()) {
        types.emplace_back(e.type, 1);
      } else {
        ++it->second;
      }
    }
    HERALD_PREPARE(s, c, kCountType);
    for (const auto& [type, count] : types) {
      s.bind(1, type);
      s.bind(2, count);
      int rc = s.step();
      sqlite3_reset(s.get());
      if (rc != SQLITE_DONE) return c.error(rc, "counting an event type");
    }
  }

  r.result = AppendResult{next_position, next_position + n - 1, current + n};
  written.reserve(written.size() + events.size());
  for (std::size_t i = 0; i < events.size(); ++i) {
    EventData& e = events[i];
    RecordedEvent& rec = written.emplace_back();
    rec.stream_id = r.stream_id;
    rec.version = current + 1 + static_cast<std::int64_t>(i);
    rec.position = next_position + static_cast<std::int64_t>(i);
    rec.recorded_at = timestamp_from_micros(recorded_at);
    rec.id = std::move(e.id);
    rec.type = std::move(e.type);
    rec.payload = std::move(e.payload);
    rec.metadata = std::move(e.metadata);
  }
  next_position += n;
  return {};
}

}  // namespace herald::detail::sqlite
