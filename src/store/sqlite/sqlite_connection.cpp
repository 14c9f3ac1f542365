#include "store/sqlite/sqlite_connection.h"

#include <utility>

namespace herald::detail::sqlite {

Status to_status(int rc, sqlite3* db, std::string_view what) {
  std::string msg(what);
  msg += ": ";
  msg += sqlite3_errstr(rc);
  if (db != nullptr) {
    const char* detail = sqlite3_errmsg(db);
    if (detail != nullptr && std::string_view(detail) != sqlite3_errstr(rc)) {
      msg += " (";
      msg += detail;
      msg += ")";
    }
  }
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_FULL:
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_PROTOCOL:
    case SQLITE_NOMEM:
    case SQLITE_SCHEMA:
      return Status::unavailable(std::move(msg));
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
    case SQLITE_FORMAT:
      return Status::corruption(std::move(msg));
    case SQLITE_CONSTRAINT:
      return Status::already_exists(std::move(msg));
    case SQLITE_TOOBIG:
    case SQLITE_MISMATCH:
    case SQLITE_RANGE:
      return Status::invalid_argument(std::move(msg));
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH:
      return Status::failed_precondition(std::move(msg));
    case SQLITE_INTERRUPT:
    case SQLITE_ABORT:
      return Status::cancelled(std::move(msg));
    default:
      return Status::internal(std::move(msg));
  }
}

Connection::~Connection() { close(); }

Connection::Connection(Connection&& other) noexcept
    : db_(std::exchange(other.db_, nullptr)), cache_(std::move(other.cache_)) {
  other.cache_.clear();
}

Connection& Connection::operator=(Connection&& other) noexcept {
  if (this != &other) {
    close();
    db_ = std::exchange(other.db_, nullptr);
    cache_ = std::move(other.cache_);
    other.cache_.clear();
  }
  return *this;
}

void Connection::close() {
  for (auto& [sql, stmt] : cache_) sqlite3_finalize(stmt);
  cache_.clear();
  if (db_ != nullptr) {
    sqlite3_close_v2(db_);
    db_ = nullptr;
  }
}

Result<Connection> Connection::open(const std::string& path, bool create, const std::string& vfs) {
  sqlite3* raw = nullptr;
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
  if (create) flags |= SQLITE_OPEN_CREATE;
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags, vfs.empty() ? nullptr : vfs.c_str());
  Connection conn(raw);  // closes `raw` on every early return, even a failed open's handle
  if (rc != SQLITE_OK) return to_status(rc, raw, "opening " + path);
  sqlite3_extended_result_codes(raw, 1);
  // Readers and the writer share the file; a checkpoint or recovery may briefly hold a lock.
  sqlite3_busy_timeout(raw, 5000);
  // temp_store=MEMORY keeps savepoint sub-journals off the disk. mmap lets reads use the OS page
  // cache directly instead of a pread and a copy per page.
  HERALD_RETURN_IF_ERROR(conn.exec(
      "PRAGMA temp_store=MEMORY; PRAGMA foreign_keys=OFF; PRAGMA mmap_size=1073741824;"));
  return conn;
}

Status Connection::exec(const char* sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
  if (err != nullptr) sqlite3_free(err);
  if (rc != SQLITE_OK) return error(rc, sql);
  return {};
}

Result<sqlite3_stmt*> Connection::prepare(const char* sql) {
  auto it = cache_.find(sql);
  if (it != cache_.end()) return it->second;
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(stmt);
    return error(rc, std::string("preparing ") + sql);
  }
  cache_.emplace(sql, stmt);
  return stmt;
}

Status step(Connection& c, const char* sql) {
  HERALD_PREPARE(s, c, sql);
  return run(c, s, sql);
}

}  // namespace herald::detail::sqlite
