#include "store/postgres/pg_rows.h"

#include <string>

#include "core/json_codec.h"

namespace herald::detail::pg {

Result<RecordedEvent> decode_event(const Rows& rows, int row, int first_column) {
  const int col = first_column;
  RecordedEvent e;
  e.position = rows.i64(row, col + 0);
  e.stream_id = rows.str(row, col + 1);
  e.version = rows.i64(row, col + 2);
  e.recorded_at = timestamp_from_micros(rows.i64(row, col + 3));
  e.id = rows.str(row, col + 4);
  e.type = rows.str(row, col + 5);
  e.payload = rows.str(row, col + 6);
  e.metadata.correlation_id = rows.str(row, col + 7);
  e.metadata.causation_id = rows.str(row, col + 8);
  e.metadata.actor = rows.str(row, col + 9);
  std::string_view extra = rows.text(row, col + 10);
  if (!extra.empty() && !decode_extra(extra, e.metadata)) {
    return Status::corruption("event at position " + std::to_string(e.position) +
                              " has unreadable metadata");
  }
  return e;
}

DeadLetter decode_dead_letter(const Rows& rows, int row) {
  DeadLetter d;
  d.id = rows.i64(row, 0);
  d.handler = rows.str(row, 1);
  d.position = rows.i64(row, 2);
  d.event_id = rows.str(row, 3);
  d.event_type = rows.str(row, 4);
  d.stream_id = rows.str(row, 5);
  d.parked = rows.boolean(row, 6);
  d.attempts = static_cast<std::int32_t>(rows.i64(row, 7));
  d.last_error = rows.str(row, 8);
  d.first_failed_at = timestamp_from_micros(rows.i64(row, 9));
  d.last_failed_at = timestamp_from_micros(rows.i64(row, 10));
  return d;
}

Params dead_letter_params(const DeadLetter& entry) {
  Params p;
  p.add(entry.handler).add(entry.position).add(entry.event_id).add(entry.event_type).add(entry.stream_id)
      .add(entry.parked).add(static_cast<std::int64_t>(entry.attempts)).add(entry.last_error)
      .add(to_micros(entry.first_failed_at)).add(to_micros(entry.last_failed_at));
  return p;
}

Status dead_letter_exists(const DeadLetter& entry) {
  return Status::already_exists("event " + entry.event_id + " is already dead-lettered for '" + entry.handler + "'");
}

}  // namespace herald::detail::pg
