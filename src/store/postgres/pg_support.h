// libpq plumbing for the PostgreSQL backend: owned connections and results, parameter lists,
// a small connection pool, and the one place where libpq errors become herald::Status.
#pragma once

#include <libpq-fe.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "herald/status.h"

namespace herald::detail::pg {

struct ConnDeleter {
  void operator()(PGconn* c) const noexcept { PQfinish(c); }
};
using Conn = std::unique_ptr<PGconn, ConnDeleter>;

struct ResultDeleter {
  void operator()(PGresult* r) const noexcept { PQclear(r); }
};

// A successful query result (PGRES_COMMAND_OK or PGRES_TUPLES_OK). Not thread-safe.
class Rows {
 public:
  explicit Rows(PGresult* r) : r_(r) {}
  int size() const { return PQntuples(r_.get()); }
  bool is_null(int row, int col) const { return PQgetisnull(r_.get(), row, col) != 0; }
  std::string_view text(int row, int col) const {
    return {PQgetvalue(r_.get(), row, col), static_cast<std::size_t>(PQgetlength(r_.get(), row, col))};
  }
  std::string str(int row, int col) const { return std::string(text(row, col)); }
  std::int64_t i64(int row, int col) const;  // 0 for NULL
  bool boolean(int row, int col) const { return text(row, col) == "t"; }
  // Rows affected by INSERT/UPDATE/DELETE.
  std::int64_t affected() const;

 private:
  std::unique_ptr<PGresult, ResultDeleter> r_;
};

// Text-format query parameters. NULL is an absent optional.
class Params {
 public:
  Params& add(std::string_view s) {
    values_.emplace_back(std::string(s));
    return *this;
  }
  Params& add(std::int64_t v) {
    values_.emplace_back(std::to_string(v));
    return *this;
  }
  Params& add(int v) { return add(static_cast<std::int64_t>(v)); }
  Params& add(bool v) {
    values_.emplace_back(std::string(v ? "t" : "f"));
    return *this;
  }
  Params& add_null() {
    values_.emplace_back(std::nullopt);
    return *this;
  }
  std::vector<const char*> pointers() const;
  int size() const { return static_cast<int>(values_.size()); }

 private:
  std::vector<std::optional<std::string>> values_;
};

// Builds a PostgreSQL array literal ("{...}") in text format.
class ArrayLiteral {
 public:
  void add_text(std::string_view s);
  void add_int(std::int64_t v);
  std::string finish();
  void reserve(std::size_t n) { text_.reserve(n); }

 private:
  std::string text_ = "{";
  bool first_ = true;
};

// Builds a one-dimensional array parameter without NULLs in PostgreSQL's binary format (what
// array_recv reads): no quoting or escaping on either side, and the server copies each element
// instead of parsing it, which matters for big group commits of JSON payloads.
class BinaryArray {
 public:
  // Element type OIDs and the OIDs of their array types (pg_type.dat).
  static constexpr Oid kText = 25, kInt8 = 20, kInt4 = 23;
  static constexpr Oid kTextArray = 1009, kInt8Array = 1016, kInt4Array = 1007;

  explicit BinaryArray(Oid element_type) : element_type_(element_type) { data_.resize(kHeader); }
  void add_text(std::string_view s);  // element type kText
  void add_int8(std::int64_t v);      // element type kInt8
  void add_int4(std::int32_t v);      // element type kInt4
  void reserve(std::size_t bytes) { data_.reserve(kHeader + bytes); }
  // The encoded array; the builder starts over empty.
  std::string finish();

 private:
  static constexpr std::size_t kHeader = 20;  // ndim, flags, element type, size, lower bound
  void put32(std::uint32_t v);
  Oid element_type_;
  std::string data_;
  std::int32_t count_ = 0;
};

// The one translation of libpq failures into Status codes:
//   connection lost / cannot connect (class 08, 57P0x, no result) -> unavailable
//   serialization failure, deadlock, lock timeout, too many connections (40001, 40P01, 55P03, 53xxx)
//                                                               -> unavailable (retry the call)
//   unique violation (23505)                                    -> already_exists
//   data corrupted (XX001, XX002)                               -> corruption
//   bad input the server rejected (22xxx, 23xxx other)          -> invalid_argument
//   anything else                                               -> internal
// `what` names the operation for the message.
Status error_status(PGconn* conn, const PGresult* r, std::string_view what);
// SQLSTATE of a failed result ("" when none).
std::string sqlstate(const PGresult* r);
// Whether `conn` is no longer usable (the server went away or the connection broke).
bool broken(PGconn* conn);

// Runs `sql` with `params`; ok only when the server reports success.
Result<Rows> exec(PGconn* conn, const char* sql, const Params& params = {}, std::string_view what = "query");
// Prepares `sql` as the named statement `name` on `conn` with the given parameter types.
Status prepare(PGconn* conn, const char* name, const char* sql, const std::vector<Oid>& types,
               std::string_view what = "prepare");
// Runs the prepared statement `name`; values[i] is sent in binary when binary[i] is true (then
// it must be that type's binary encoding), else as text. Results come back as text.
Result<Rows> exec_prepared(PGconn* conn, const char* name, const std::vector<std::string>& values,
                           const std::vector<bool>& binary, std::string_view what = "query");
// Runs one or more parameterless statements.
Status exec_simple(PGconn* conn, const char* sql, std::string_view what = "statement");

// Opens a connection to `conninfo` (a URL). unavailable when the server cannot be reached.
Result<Conn> connect(const std::string& conninfo);

// The URL without its password (user:secret@ -> user@, password=... query parameter removed).
std::string redact_url(std::string_view url);

// A small pool of connections to one database. Connections are opened lazily up to `capacity`
// and reused; a broken connection is dropped instead of returned. Thread-safe.
class Pool {
 public:
  Pool(std::string conninfo, int capacity, std::vector<std::string> session_setup)
      : conninfo_(std::move(conninfo)), capacity_(capacity), setup_(std::move(session_setup)) {}

  class Lease {
   public:
    Lease(Pool* pool, Conn conn) : pool_(pool), conn_(std::move(conn)) {}
    Lease(Lease&&) = default;
    Lease& operator=(Lease&&) = default;
    ~Lease() {
      if (pool_ != nullptr && conn_) pool_->give_back(std::move(conn_));
    }
    PGconn* get() const { return conn_.get(); }

   private:
    Pool* pool_;
    Conn conn_;
  };

  // Never more connections than this, overflow included.
  static constexpr int kHardLimit = 64;

  // A connection, waiting while all `capacity` are in use (then opening one beyond it after a
  // short wait, up to kHardLimit). unavailable when a new one cannot be
  // opened; failed_precondition after close().
  Result<Lease> acquire();
  // Drops every idle connection: called when one turned out broken, since its siblings were most
  // likely cut by the same event (a restarted server).
  void discard_idle();
  // Frees idle connections and makes later acquire() fail. Connections in use are freed when
  // given back.
  void close();

 private:
  void give_back(Conn conn);

  const std::string conninfo_;
  const int capacity_;
  const std::vector<std::string> setup_;  // statements run on every new connection

  // mu_ guards idle_, open_ (connections existing, idle or leased) and closed_.
  std::mutex mu_;
  std::condition_variable freed_;
  std::vector<Conn> idle_;
  int open_ = 0;
  bool closed_ = false;
};

// ---- small helpers every part of the backend shares ----

inline constexpr std::int64_t kInt64Max = std::numeric_limits<std::int64_t>::max();

// A count (a limit) as a bigint parameter, saturating.
inline std::int64_t clamp_count(std::size_t n) {
  return n > static_cast<std::size_t>(kInt64Max) ? kInt64Max : static_cast<std::int64_t>(n);
}

// The status of a Status or of a Result<T>, for code generic over both.
inline const Status& status_of(const Status& s) { return s; }
template <class T>
Status status_of(const Result<T>& r) {
  return r.status();
}

// What every call of a closed store returns.
inline Status store_closed() { return Status::failed_precondition("the postgres store is closed"); }

}  // namespace herald::detail::pg
