// Versioned schema of the PostgreSQL backend.
#pragma once

#include <libpq-fe.h>

#include "herald/status.h"

namespace herald::detail::pg {

// The schema version this build writes and understands.
inline constexpr int kSchemaVersion = 2;

// Brings the database to kSchemaVersion, one migration per transaction, serialised across
// processes by a session advisory lock. corruption when the database is at a newer version than
// this build knows (a newer Herald wrote it: refusing beats misreading it); unavailable when the
// server fails.
Status migrate(PGconn* conn);

// The version recorded in herald_schema_version (0 when the table is absent).
Result<int> schema_version(PGconn* conn);

}  // namespace herald::detail::pg
