// Versioned schema of the PostgreSQL backend.
#pragma once

#include <libpq-fe.h>

#include "herald/status.h"

namespace herald::detail::pg {

// The schema version this build writes and understands.
inline constexpr int kSchemaVersion = 3;

// Brings the database to kSchemaVersion, one migration per transaction, serialised across
// processes by a session advisory lock. corruption when the database is at a newer version than
// this build knows (a newer Herald wrote it: refusing beats misreading it); unavailable when the
// server fails.
Status migrate(PGconn* conn);
// The same, up to `target_version` only (1..kSchemaVersion): for tests that need a database as an
// older release left it. invalid_argument for a version this build does not have.
Status migrate(PGconn* conn, int target_version);

// The version recorded in herald_schema_version (0 when the table is absent).
Result<int> schema_version(PGconn* conn);

}  // namespace herald::detail::pg
