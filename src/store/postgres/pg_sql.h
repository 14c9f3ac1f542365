// The SQL the PostgreSQL backend sends at run time (the schema and the server functions are in
// pg_schema.cpp). Statements built per call (read_stream's direction, read_all's filter) are
// assembled from these pieces where they are used.
#pragma once

namespace herald::detail::pg::sql {

// ---- the event log ----

// Columns of an event row, in the order decode_event (pg_rows.h) reads them.
inline constexpr char kEventColumns[] =
    "e.position, e.stream_id, e.version, e.recorded_at, e.id, e.type, e.payload, "
    "e.correlation_id, e.causation_id, e.actor, e.extra";

// The last position written (-1 for an empty log).
inline constexpr char kReadHead[] = "SELECT next_position - 1 FROM herald_log";

// read_stream after kEventColumns: $1 stream id, $2 from version, $3 limit.
inline constexpr char kStreamEventsFrom[] = " FROM herald_events e WHERE e.stream_id = $1 AND ";
inline constexpr char kStreamForwards[] = "e.version >= $2 ORDER BY e.version LIMIT $3";
inline constexpr char kStreamBackwards[] = "e.version <= $2 ORDER BY e.version DESC LIMIT $3";
inline constexpr char kStreamExists[] = "SELECT 1 FROM herald_streams WHERE stream_id = $1";
inline constexpr char kStreamVersion[] = "SELECT version FROM herald_streams WHERE stream_id = $1";

// read_all: $1 from position, $2 end of the scanned window, $3 limit; the filter's conditions are
// appended to kReadAllWindow. One row with NULL event columns when nothing matched (the LEFT JOIN
// still carries the head).
inline constexpr char kReadAllWindow[] = "e.position >= $1 AND e.position < $2";
inline constexpr char kReadAllHead[] = "SELECT h.next_position, ";
inline constexpr char kReadAllFrom[] = " FROM herald_log h LEFT JOIN (SELECT * FROM herald_events e WHERE ";
inline constexpr char kReadAllTail[] = " ORDER BY e.position LIMIT $3) e ON true ORDER BY e.position";

// The prepared call of the writer's connection; its 19 parameters are built in pg_writer.cpp.
inline constexpr char kAppendStatement[] = "herald_append";
inline constexpr char kAppendBatch[] =
    "SELECT r_code, r_first, r_last, r_version, r_msg FROM herald_append_batch("
    "$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)";

// ---- stats (one REPEATABLE READ snapshot) ----

inline constexpr char kStatsSnapshot[] = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";
inline constexpr char kStatsHead[] =
    "SELECT h.next_position, "
    "(SELECT recorded_at FROM herald_events WHERE position = 0), "
    "(SELECT recorded_at FROM herald_events WHERE position = h.next_position - 1), "
    "(SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
    " JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE n.nspname = current_schema() AND c.relkind = 'r')"
    " FROM herald_log h";
// Per type over positions [$1, $2): events, and streams started (version 0).
inline constexpr char kStatsCountTypes[] =
    "SELECT type, count(*), count(*) FILTER (WHERE version = 0) FROM herald_events"
    " WHERE position >= $1 AND position < $2 GROUP BY type";

// ---- the listener ----

inline constexpr char kCurrentSchema[] = "SELECT current_schema()";
inline constexpr char kListen[] = "LISTEN herald_events";

// ---- process state ----

inline constexpr char kTransactionBegin[] = "BEGIN ISOLATION LEVEL REPEATABLE READ";

inline constexpr char kInboxRecord[] =
    "INSERT INTO herald_inbox (handler, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING";

inline constexpr char kGetDocument[] = "SELECT json FROM herald_documents WHERE collection = $1 AND key = $2";
inline constexpr char kPutDocument[] =
    "INSERT INTO herald_documents (collection, key, json) VALUES ($1, $2, $3) "
    "ON CONFLICT (collection, key) DO UPDATE SET json = excluded.json";
inline constexpr char kDeleteDocument[] = "DELETE FROM herald_documents WHERE collection = $1 AND key = $2";
inline constexpr char kListDocuments[] =
    "SELECT key, json FROM herald_documents WHERE collection = $1 AND key > $2 ORDER BY key LIMIT $3";

inline constexpr char kLoadCheckpoint[] = "SELECT position FROM herald_checkpoints WHERE subscription = $1";
// Forward only: a save at or below the stored position changes nothing.
inline constexpr char kSaveCheckpoint[] =
    "INSERT INTO herald_checkpoints (subscription, position) VALUES ($1, $2) "
    "ON CONFLICT (subscription) DO UPDATE SET position = excluded.position "
    "WHERE herald_checkpoints.position < excluded.position";
inline constexpr char kResetCheckpoint[] =
    "INSERT INTO herald_checkpoints (subscription, position) VALUES ($1, $2) "
    "ON CONFLICT (subscription) DO UPDATE SET position = excluded.position";

// Columns of a dead letter row, in the order decode_dead_letter (pg_rows.h) reads them.
inline constexpr char kDeadLetterColumns[] =
    "id, handler, position, event_id, event_type, stream_id, parked, attempts, last_error, "
    "first_failed_at, last_failed_at";
inline constexpr char kAddDeadLetter[] =
    "INSERT INTO herald_dead_letters (handler, position, event_id, event_type, "
    "stream_id, parked, attempts, last_error, first_failed_at, last_failed_at) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) "
    "ON CONFLICT (handler, event_id) DO NOTHING RETURNING id";
inline constexpr char kDeadLettersFrom[] = " FROM herald_dead_letters";
inline constexpr char kDeadLetterById[] = " WHERE id = $1";
inline constexpr char kDeadLettersOfHandler[] = " WHERE handler = $1";
inline constexpr char kDeadLettersOrder[] = " ORDER BY handler, position, id";
inline constexpr char kUpdateDeadLetter[] =
    "UPDATE herald_dead_letters SET attempts = $2, parked = $3, last_error = $4, "
    "last_failed_at = $5 WHERE id = $1";
inline constexpr char kRemoveDeadLetter[] = "DELETE FROM herald_dead_letters WHERE id = $1";

// $1 name, $2 owner, $3 ttl in microseconds. Expiry is set and judged by the server's clock
// (clock_timestamp(), read once: excluded.expires_at - $3 is "now"), never a client's. The upsert
// takes the row lock, so two owners racing for an expired lease cannot both win, and it waits for
// transactions fencing on the old token (kLeaseToken's FOR SHARE). A row comes back, with the
// fencing token, only when this owner holds the lease: a renewal of a live lease keeps the token,
// any other grant increments it.
inline constexpr char kAcquireLease[] =
    "INSERT INTO herald_leases (name, owner, expires_at, token) "
    "VALUES ($1, $2, (extract(epoch FROM clock_timestamp()) * 1000000)::bigint + $3, 1) "
    "ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at, "
    "token = CASE WHEN herald_leases.expires_at > excluded.expires_at - $3 "
    "THEN herald_leases.token ELSE herald_leases.token + 1 END "
    "WHERE herald_leases.owner = excluded.owner OR herald_leases.expires_at <= excluded.expires_at - $3 "
    "RETURNING token";
// The row stays (expired) so that the next grant's token is still greater than this one's.
inline constexpr char kReleaseLease[] = "UPDATE herald_leases SET expires_at = 0 WHERE name = $1 AND owner = $2";
// FOR SHARE: a grant to another owner (an UPDATE of this row) waits until the fencing
// transaction ends, and one that committed after the transaction's snapshot fails it with 40001.
inline constexpr char kLeaseToken[] = "SELECT token FROM herald_leases WHERE name = $1 FOR SHARE";

}  // namespace herald::detail::pg::sql
