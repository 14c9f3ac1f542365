// The SQLite backend's schema and its migrations (see sqlite_schema.cpp for the tables).
#pragma once

#include "herald/status.h"
#include "store/sqlite/sqlite_connection.h"

namespace herald::detail::sqlite {

// The schema version this build writes (PRAGMA user_version). Each migration raises it by one.
inline constexpr int kSchemaVersion = 3;

// Marks a database as Herald's (PRAGMA application_id, "HRLD").
inline constexpr int kApplicationId = 0x48524C44;

// Brings the database behind `conn` (the writer connection, outside any transaction) to
// `target_version` (tests build older schemas with it), applying every missing migration in one
// transaction, so a crash leaves the old schema intact.
//   1: the initial schema;  2: event ids as 16 bytes (StoredEventId).
// corruption when the schema is newer than this build or the file belongs to another application;
// invalid_argument for a target this build does not know; unavailable / corruption from the
// database otherwise.
Status migrate(Connection& conn, int target_version = kSchemaVersion);

}  // namespace herald::detail::sqlite
