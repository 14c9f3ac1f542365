// The SQLite backend's schema and its migrations (see sqlite_schema.cpp for the tables).
#pragma once

#include "herald/status.h"
#include "store/sqlite/sqlite_connection.h"

namespace herald::detail::sqlite {

// The schema version this build writes (PRAGMA user_version). Each migration raises it by one.
inline constexpr int kSchemaVersion = 1;

// Marks a database as Herald's (PRAGMA application_id, "HRLD").
inline constexpr int kApplicationId = 0x48524C44;

// Brings the database behind `conn` (the writer connection, outside any transaction) to
// kSchemaVersion, applying each missing migration in its own transaction.
// corruption when the schema is newer than this build or the file belongs to another application;
// unavailable / corruption from the database otherwise.
Status migrate(Connection& conn);

}  // namespace herald::detail::sqlite
