#include "store/sqlite/sqlite_schema.h"

#include <string>
#include <string_view>

#include "store/sqlite/sqlite_rows.h"

namespace herald::detail::sqlite {

namespace {

// Migration i (0-based) takes the schema from version i to i + 1. Append new ones; never edit old
// ones: databases in the field were created by them.
//
// Index choice, with append throughput in mind: every appended event costs one insert into the
// events table (rowid = position, so read_all is a range scan of the table itself) plus two index
// entries: (stream_id, version) for read_stream and for the database to enforce gap-free stream
// versions, and event_id for already_exists / idempotent retries. Nothing else is indexed;
// read_all filters other than stream_id scan by position.
constexpr const char* kMigrations[] = {
    // 0 -> 1: the initial schema.
    R"sql(
CREATE TABLE events(
  position       INTEGER PRIMARY KEY,  -- 0-based, gap-free; the rowid
  stream_id      TEXT    NOT NULL,
  version        INTEGER NOT NULL,     -- 0-based within the stream
  event_id       TEXT    NOT NULL,
  type           TEXT    NOT NULL,
  payload        TEXT    NOT NULL,     -- JSON text
  correlation_id TEXT,                 -- NULL when empty
  causation_id   TEXT,
  actor          TEXT,
  extra_metadata TEXT,                 -- JSON object of string pairs; NULL when empty
  recorded_at    INTEGER NOT NULL,     -- microseconds since the Unix epoch
  batch_last     INTEGER               -- on an append's first event: its last event's position
);
CREATE UNIQUE INDEX events_by_stream ON events(stream_id, version);
CREATE UNIQUE INDEX events_by_id ON events(event_id);

CREATE TABLE streams(
  stream_id TEXT PRIMARY KEY,
  version   INTEGER NOT NULL           -- the stream's last event's version
) WITHOUT ROWID;

-- Kept by append so that stats() does not scan the log.
CREATE TABLE event_type_counts(
  type  TEXT PRIMARY KEY,
  count INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE checkpoints(
  subscription TEXT PRIMARY KEY,
  position     INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE dead_letters(
  id              INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused
  handler         TEXT    NOT NULL,
  position        INTEGER NOT NULL,
  event_id        TEXT    NOT NULL,
  event_type      TEXT    NOT NULL,
  stream_id       TEXT    NOT NULL,
  parked          INTEGER NOT NULL,
  attempts        INTEGER NOT NULL,
  last_error      TEXT    NOT NULL,
  first_failed_at INTEGER NOT NULL,
  last_failed_at  INTEGER NOT NULL,
  UNIQUE(handler, event_id)
);
CREATE INDEX dead_letters_by_handler ON dead_letters(handler, position, id);

CREATE TABLE inbox(
  handler  TEXT NOT NULL,
  event_id TEXT NOT NULL,
  PRIMARY KEY(handler, event_id)
) WITHOUT ROWID;

CREATE TABLE documents(
  collection TEXT NOT NULL,
  key        TEXT NOT NULL,
  json       TEXT NOT NULL,
  PRIMARY KEY(collection, key)
) WITHOUT ROWID;

CREATE TABLE leases(
  name       TEXT PRIMARY KEY,
  owner      TEXT    NOT NULL,
  expires_at INTEGER NOT NULL          -- microseconds since the Unix epoch
) WITHOUT ROWID;
)sql",
    // 1 -> 2: event ids as 16 bytes (a canonical lower-case UUID; any other id stays text, see
    // StoredEventId in sqlite_rows.h) instead of 36 characters, in the row and in events_by_id:
    // 40 bytes less per event. The table is rebuilt (SQLite cannot change a column's type) in the
    // migration's one transaction.
    R"sql(
CREATE TABLE events_v2(
  position       INTEGER PRIMARY KEY,
  stream_id      TEXT    NOT NULL,
  version        INTEGER NOT NULL,
  event_id       BLOB    NOT NULL,     -- 16 bytes for a canonical UUID, else the id's text
  type           TEXT    NOT NULL,
  payload        TEXT    NOT NULL,
  correlation_id TEXT,
  causation_id   TEXT,
  actor          TEXT,
  extra_metadata TEXT,
  recorded_at    INTEGER NOT NULL,
  batch_last     INTEGER
);
INSERT INTO events_v2
  SELECT position, stream_id, version, herald_compact_event_id(event_id), type, payload, correlation_id,
         causation_id, actor, extra_metadata, recorded_at, batch_last
  FROM events ORDER BY position;
DROP TABLE events;
ALTER TABLE events_v2 RENAME TO events;
CREATE UNIQUE INDEX events_by_stream ON events(stream_id, version);
CREATE UNIQUE INDEX events_by_id ON events(event_id);
)sql",
    // 2 -> 3: fencing tokens. A lease row keeps its last token after it is released or expires,
    // so every grant's token is greater than the ones before (see ProcessState::try_acquire_lease).
    R"sql(
ALTER TABLE leases ADD COLUMN token INTEGER NOT NULL DEFAULT 0;
)sql",
};

static_assert(std::size(kMigrations) == kSchemaVersion, "one migration per schema version");

Result<std::int64_t> pragma_int(Connection& conn, const char* sql) {
  auto stmt = conn.prepare(sql);
  if (!stmt) return stmt.status();
  Stmt s(*stmt);
  int rc = s.step();
  if (rc != SQLITE_ROW) return conn.error(rc, sql);
  return s.int64(0);
}

// herald_compact_event_id(id): the id as StoredEventId stores it, for migration 1 -> 2.
void compact_event_id(sqlite3_context* ctx, int /*argc*/, sqlite3_value** argv) {
  const auto* text = reinterpret_cast<const char*>(sqlite3_value_text(argv[0]));
  const std::string_view id(text == nullptr ? "" : text, static_cast<std::size_t>(sqlite3_value_bytes(argv[0])));
  unsigned char bytes[16];
  if (compact_uuid(id, bytes)) {
    sqlite3_result_blob(ctx, bytes, sizeof bytes, SQLITE_TRANSIENT);
  } else {
    sqlite3_result_value(ctx, argv[0]);
  }
}

}  // namespace

Status migrate(Connection& conn, int target_version) {
  if (target_version < 0 || target_version > kSchemaVersion) {
    return Status::invalid_argument("no schema version " + std::to_string(target_version));
  }
  const int rc = sqlite3_create_function_v2(conn.db(), "herald_compact_event_id", 1,
                                            SQLITE_UTF8 | SQLITE_DETERMINISTIC, nullptr, &compact_event_id,
                                            nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return conn.error(rc, "registering the migration's functions");
  HERALD_RETURN_IF_ERROR(conn.exec("BEGIN IMMEDIATE"));
  auto version = pragma_int(conn, "PRAGMA user_version");
  auto app_id = pragma_int(conn, "PRAGMA application_id");
  auto objects = pragma_int(conn, "SELECT count(*) FROM sqlite_schema");
  if (!version || !app_id || !objects) {
    (void)conn.exec("ROLLBACK");
    return !version ? version.status() : !app_id ? app_id.status() : objects.status();
  }
  if (*objects > 0 && *app_id != kApplicationId) {
    (void)conn.exec("ROLLBACK");
    return Status::corruption("the database holds tables but is not a Herald event store");
  }
  if (*version > kSchemaVersion) {
    (void)conn.exec("ROLLBACK");
    return Status::corruption("the database schema is version " + std::to_string(*version) +
                              "; this build understands up to " + std::to_string(kSchemaVersion));
  }
  // All missing migrations run in this one transaction: a crash leaves the old schema intact.
  for (auto v = *version; v < target_version; ++v) {
    Status s = conn.exec(kMigrations[v]);
    if (s.is_ok()) {
      const std::string set_version = "PRAGMA user_version = " + std::to_string(v + 1);
      s = conn.exec(set_version.c_str());
    }
    if (!s.is_ok()) {
      (void)conn.exec("ROLLBACK");
      return s;
    }
  }
  if (*version < target_version) {
    const std::string set_app = "PRAGMA application_id = " + std::to_string(kApplicationId);
    Status s = conn.exec(set_app.c_str());
    if (!s.is_ok()) {
      (void)conn.exec("ROLLBACK");
      return s;
    }
  }
  return conn.exec("COMMIT");
}

}  // namespace herald::detail::sqlite
