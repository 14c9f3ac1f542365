#include "store/postgres/pg_stats.h"

#include <utility>

#include "store/postgres/pg_sql.h"

namespace herald::detail::pg {

Result<StoreStats> PgStats::collect(PGconn* conn) {
  std::lock_guard lock(mu_);
  HERALD_RETURN_IF_ERROR(exec_simple(conn, sql::kStatsSnapshot, "stats"));
  auto result = collect_in_snapshot(conn);
  (void)exec_simple(conn, "COMMIT", "stats");
  return result;
}

Result<StoreStats> PgStats::collect_in_snapshot(PGconn* conn) {
  StoreStats s;
  auto head = exec(conn, sql::kStatsHead, {}, "stats");
  if (!head) return head.status();
  const std::int64_t next = head->i64(0, 0);
  s.total_events = next;  // positions are gap-free from 0
  if (next > 0) {
    s.first_position = 0;
    s.last_position = next - 1;
    s.first_recorded_at = timestamp_from_micros(head->i64(0, 1));
    s.last_recorded_at = timestamp_from_micros(head->i64(0, 2));
  }
  s.bytes_on_disk = head->i64(0, 3);
  // Only the events appended since the last call are counted: [0, counted_.upto) is final
  // (gap-free positions, committed in order, never changed). A stream is counted by its first
  // event (version 0): streams are created by appends and never removed.
  if (counted_.upto < next) {
    Params range;
    range.add(counted_.upto).add(next);
    auto types = exec(conn, sql::kStatsCountTypes, range, "stats");
    if (!types) return types.status();
    CountedLog updated = counted_;
    for (int i = 0; i < types->size(); ++i) {
      updated.by_type[types->str(i, 0)] += types->i64(i, 1);
      updated.streams += types->i64(i, 2);
    }
    updated.upto = next;
    counted_ = std::move(updated);
  }
  s.events_by_type.insert(counted_.by_type.begin(), counted_.by_type.end());
  s.stream_count = counted_.streams;
  return s;
}

}  // namespace herald::detail::pg
