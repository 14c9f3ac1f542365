// The SQLite backend's SQL, in one place. Each statement is an inline array, so it has one
// address in every file: Connection's statement cache is keyed by that address.
#pragma once

#include <cstddef>

namespace herald::detail::sqlite {

#define HERALD_EVENT_COLUMNS                                                                   \
  "position, stream_id, version, event_id, type, payload, correlation_id, causation_id, actor, " \
  "extra_metadata, recorded_at"

inline constexpr char kBegin[] = "BEGIN IMMEDIATE";
inline constexpr char kBeginRead[] = "BEGIN";
inline constexpr char kCommit[] = "COMMIT";
inline constexpr char kRollback[] = "ROLLBACK";
inline constexpr char kSavepoint[] = "SAVEPOINT request";
inline constexpr char kRelease[] = "RELEASE request";
inline constexpr char kRollbackTo[] = "ROLLBACK TO request";

inline constexpr char kStreamVersion[] = "SELECT version FROM streams WHERE stream_id = ?1";
inline constexpr char kUpsertStream[] =
    "INSERT INTO streams(stream_id, version) VALUES (?1, ?2) "
    "ON CONFLICT(stream_id) DO UPDATE SET version = excluded.version";
inline constexpr char kInsertEvent[] =
    "INSERT INTO events(" HERALD_EVENT_COLUMNS ", batch_last) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)";
inline constexpr char kCountType[] =
    "INSERT INTO event_type_counts(type, count) VALUES (?1, ?2) "
    "ON CONFLICT(type) DO UPDATE SET count = count + excluded.count";
inline constexpr int kInsertColumns = 12;  // parameters of one row of kInsertEvent
inline constexpr std::size_t kInsertChunk = 32;

// kInsertEvent with kInsertChunk rows of parameters; built once, stable address for the cache.
const char* insert_chunk_sql();
inline constexpr char kEventById[] =
    "SELECT stream_id, version, position, batch_last FROM events WHERE event_id = ?1";
inline constexpr char kIdsFromVersion[] =
    "SELECT event_id, position FROM events WHERE stream_id = ?1 AND version >= ?2 ORDER BY version "
    "LIMIT ?3";
inline constexpr char kHead[] = "SELECT max(position) FROM events";

inline constexpr char kReadForwards[] = "SELECT " HERALD_EVENT_COLUMNS
                                      " FROM events WHERE stream_id = ?1 AND version >= ?2 "
                                      "ORDER BY version LIMIT ?3";
inline constexpr char kReadBackwards[] = "SELECT " HERALD_EVENT_COLUMNS
                                       " FROM events WHERE stream_id = ?1 AND version <= ?2 "
                                       "ORDER BY version DESC LIMIT ?3";
inline constexpr char kReadAll[] = "SELECT " HERALD_EVENT_COLUMNS
                                 " FROM events WHERE position >= ?1 AND position <= ?2 "
                                 "ORDER BY position LIMIT ?3";
// Within a stream, version order is position order; the (stream_id, version) index serves it,
// starting at the first version at or after the page's position (see first_version_from).
inline constexpr char kReadAllOfStream[] =
    "SELECT " HERALD_EVENT_COLUMNS
    " FROM events WHERE stream_id = ?1 AND version >= ?2 AND position >= ?3 AND position <= ?4 "
    "ORDER BY version LIMIT ?5";
inline constexpr char kPositionOfVersion[] =
    "SELECT position FROM events WHERE stream_id = ?1 AND version = ?2";

inline constexpr char kStreamCount[] = "SELECT count(*) FROM streams";
inline constexpr char kTypeCounts[] = "SELECT type, count FROM event_type_counts WHERE count > 0";
// Two subqueries: SQLite answers a lone min() or max() from the B-tree's edge, both in one
// SELECT by scanning the table.
inline constexpr char kFirstLast[] =
    "SELECT (SELECT min(position) FROM events), (SELECT max(position) FROM events)";
inline constexpr char kRecordedAt[] = "SELECT recorded_at FROM events WHERE position = ?1";

inline constexpr char kLoadCheckpoint[] = "SELECT position FROM checkpoints WHERE subscription = ?1";
// Forward only: a save at or below the stored position changes nothing.
inline constexpr char kSaveCheckpoint[] =
    "INSERT INTO checkpoints(subscription, position) VALUES (?1, ?2) "
    "ON CONFLICT(subscription) DO UPDATE SET position = excluded.position "
    "WHERE excluded.position > checkpoints.position";
inline constexpr char kResetCheckpoint[] =
    "INSERT INTO checkpoints(subscription, position) VALUES (?1, ?2) "
    "ON CONFLICT(subscription) DO UPDATE SET position = excluded.position";

inline constexpr char kInboxRecord[] = "INSERT OR IGNORE INTO inbox(handler, event_id) VALUES (?1, ?2)";
inline constexpr char kGetDocument[] = "SELECT json FROM documents WHERE collection = ?1 AND key = ?2";
inline constexpr char kPutDocument[] =
    "INSERT INTO documents(collection, key, json) VALUES (?1, ?2, ?3) "
    "ON CONFLICT(collection, key) DO UPDATE SET json = excluded.json";
inline constexpr char kDeleteDocument[] = "DELETE FROM documents WHERE collection = ?1 AND key = ?2";
inline constexpr char kListDocuments[] =
    "SELECT key, json FROM documents WHERE collection = ?1 AND key > ?2 ORDER BY key LIMIT ?3";

#define HERALD_DEAD_LETTER_COLUMNS                                                               \
  "id, handler, position, event_id, event_type, stream_id, parked, attempts, last_error, "       \
  "first_failed_at, last_failed_at"
inline constexpr char kAddDeadLetter[] =
    "INSERT INTO dead_letters(handler, position, event_id, event_type, stream_id, parked, "
    "attempts, last_error, first_failed_at, last_failed_at) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";
inline constexpr char kGetDeadLetter[] =
    "SELECT " HERALD_DEAD_LETTER_COLUMNS " FROM dead_letters WHERE id = ?1";
inline constexpr char kListAllDeadLetters[] =
    "SELECT " HERALD_DEAD_LETTER_COLUMNS " FROM dead_letters ORDER BY handler, position, id";
inline constexpr char kListDeadLetters[] = "SELECT " HERALD_DEAD_LETTER_COLUMNS
                                         " FROM dead_letters WHERE handler = ?1 "
                                         "ORDER BY handler, position, id";
inline constexpr char kUpdateDeadLetter[] =
    "UPDATE dead_letters SET attempts = ?2, parked = ?3, last_error = ?4, last_failed_at = ?5 "
    "WHERE id = ?1";
inline constexpr char kRemoveDeadLetter[] = "DELETE FROM dead_letters WHERE id = ?1";

inline constexpr char kGetLease[] = "SELECT owner, expires_at, token FROM leases WHERE name = ?1";
inline constexpr char kPutLease[] =
    "INSERT INTO leases(name, owner, expires_at, token) VALUES (?1, ?2, ?3, ?4) "
    "ON CONFLICT(name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at, "
    "token = excluded.token";
// The row stays (expired) so that the next grant's token is still greater than this one's.
inline constexpr char kReleaseLease[] = "UPDATE leases SET expires_at = 0 WHERE name = ?1 AND owner = ?2";
inline constexpr char kLeaseToken[] = "SELECT token FROM leases WHERE name = ?1";


}  // namespace herald::detail::sqlite
