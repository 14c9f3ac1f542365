// A thin RAII layer over one sqlite3 connection: cached prepared statements, reset-on-scope-exit
// statement handles, and the ONE place where SQLite result codes become herald Status codes.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

#include "herald/status.h"

namespace herald::detail::sqlite {

// Translates a SQLite result code (primary or extended) into a Status. `what` names the operation
// for the message; the connection's error text is appended when `db` is given.
//   BUSY / LOCKED / FULL / IOERR / CANTOPEN / PROTOCOL / NOMEM / SCHEMA  -> unavailable (transient)
//   CORRUPT / NOTADB / FORMAT                                            -> corruption
//   CONSTRAINT                                                           -> already_exists
//   TOOBIG / MISMATCH / RANGE (bad bound value)                          -> invalid_argument
//   READONLY / PERM / AUTH                                               -> failed_precondition
//   INTERRUPT / ABORT                                                    -> cancelled
//   anything else (ERROR, MISUSE, INTERNAL: a bug in our SQL)            -> internal
Status to_status(int rc, sqlite3* db, std::string_view what);

// A cached prepared statement in use. Resets the statement (and clears bindings) when it goes out of
// scope, so a statement is never left mid-step holding a read snapshot open.
// Not thread-safe: used by the thread that owns the connection.
class Stmt {
 public:
  explicit Stmt(sqlite3_stmt* s) : s_(s) {}
  ~Stmt() {
    if (s_ != nullptr) {
      sqlite3_reset(s_);
      sqlite3_clear_bindings(s_);
    }
  }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  sqlite3_stmt* get() const { return s_; }

  // Parameters are 1-based, as in SQLite. Text is bound SQLITE_STATIC: the caller keeps it alive
  // until the statement is stepped to completion or reset (always true within one scope here).
  void bind(int i, std::int64_t v) { sqlite3_bind_int64(s_, i, v); }
  void bind(int i, std::string_view v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
  }
  // Binds NULL for an empty string (optional metadata is stored as NULL to keep rows small).
  void bind_or_null(int i, std::string_view v) {
    if (v.empty()) {
      sqlite3_bind_null(s_, i);
    } else {
      bind(i, v);
    }
  }
  void bind_null(int i) { sqlite3_bind_null(s_, i); }
  // Copies the bytes (SQLITE_TRANSIENT): for small values built just before the bind.
  void bind_blob_copy(int i, const void* data, int size) { sqlite3_bind_blob(s_, i, data, size, SQLITE_TRANSIENT); }

  // SQLITE_ROW, SQLITE_DONE or an error code.
  int step() { return sqlite3_step(s_); }

  std::int64_t int64(int col) const { return sqlite3_column_int64(s_, col); }
  bool is_null(int col) const { return sqlite3_column_type(s_, col) == SQLITE_NULL; }
  bool is_blob(int col) const { return sqlite3_column_type(s_, col) == SQLITE_BLOB; }
  std::string_view blob(int col) const {
    const auto* p = static_cast<const char*>(sqlite3_column_blob(s_, col));
    if (p == nullptr) return {};
    return {p, static_cast<std::size_t>(sqlite3_column_bytes(s_, col))};
  }
  std::string_view text(int col) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s_, col));
    if (p == nullptr) return {};
    return {p, static_cast<std::size_t>(sqlite3_column_bytes(s_, col))};
  }
  // Assigns into `out`, reusing its capacity.
  void text_into(int col, std::string& out) const {
    std::string_view v = text(col);
    out.assign(v.data(), v.size());
  }

 private:
  sqlite3_stmt* s_;
};

// One open database connection with a statement cache. Move-only; closes on destruction.
// Not thread-safe: one thread uses a connection at a time (the pool or the writer thread ensures
// it), which is why connections are opened with SQLITE_OPEN_NOMUTEX.
class Connection {
 public:
  Connection() = default;
  ~Connection();
  Connection(Connection&& other) noexcept;
  Connection& operator=(Connection&& other) noexcept;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Opens `path` (creating it when `create`) through `vfs`, sets busy_timeout and the pragmas every connection
  // needs. unavailable when it cannot be opened, corruption when it is not a database.
  // `vfs`: the SQLite VFS name, or empty for the default.
  static Result<Connection> open(const std::string& path, bool create, const std::string& vfs = {});

  sqlite3* db() const { return db_; }

  // Runs one or more SQL statements without results.
  Status exec(const char* sql);

  // A cached prepared statement for `sql`. `sql` must be a string literal (the cache is keyed by
  // its address). internal when the SQL does not compile.
  Result<sqlite3_stmt*> prepare(const char* sql);

  // Status for `rc` on this connection.
  Status error(int rc, std::string_view what) const { return to_status(rc, db_, what); }

 private:
  explicit Connection(sqlite3* db) : db_(db) {}
  void close();

  sqlite3* db_ = nullptr;
  std::unordered_map<const char*, sqlite3_stmt*> cache_;
};

// Runs a statement that returns no rows (or ignores them).
inline Status run(Connection& c, Stmt& s, const char* what) {
  int rc = s.step();
  if (rc != SQLITE_DONE && rc != SQLITE_ROW) return c.error(rc, what);
  return {};
}

// Prepares (from the cache) and runs `sql`, which returns no rows.
Status step(Connection& c, const char* sql);

// A count for a LIMIT parameter.
inline std::int64_t clamp_limit(std::size_t n) {
  return n > static_cast<std::size_t>(INT64_MAX) ? INT64_MAX : static_cast<std::int64_t>(n);
}

}  // namespace herald::detail::sqlite

// Declares `var`, a Stmt for the cached statement `sql` of `conn`; returns the error from the
// enclosing function when it does not prepare.
#define HERALD_PREPARE(var, conn, sql)                   \
  auto var##_prepared = (conn).prepare(sql);             \
  if (!var##_prepared) return var##_prepared.status();   \
  ::herald::detail::sqlite::Stmt var(*var##_prepared)
