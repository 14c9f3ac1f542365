#include "store/postgres/pg_support.h"

#include <cctype>
#include <charconv>

namespace herald::detail::pg {

std::int64_t Rows::i64(int row, int col) const {
  std::string_view t = text(row, col);
  std::int64_t v = 0;
  std::from_chars(t.data(), t.data() + t.size(), v);
  return v;
}

std::int64_t Rows::affected() const {
  const char* n = PQcmdTuples(r_.get());
  std::int64_t v = 0;
  if (n != nullptr) std::from_chars(n, n + std::char_traits<char>::length(n), v);
  return v;
}

std::vector<const char*> Params::pointers() const {
  std::vector<const char*> out;
  out.reserve(values_.size());
  for (const auto& v : values_) out.push_back(v ? v->c_str() : nullptr);
  return out;
}

void ArrayLiteral::add_text(std::string_view s) {
  if (!first_) text_.push_back(',');
  first_ = false;
  text_.push_back('"');
  for (char c : s) {
    if (c == '"' || c == '\\') text_.push_back('\\');
    text_.push_back(c);
  }
  text_.push_back('"');
}

void ArrayLiteral::add_int(std::int64_t v) {
  if (!first_) text_.push_back(',');
  first_ = false;
  text_ += std::to_string(v);
}

std::string ArrayLiteral::finish() {
  std::string out;
  out.swap(text_);
  out.push_back('}');
  // push_back rather than assigning "{": g++ 12 -O3 reports a false -Wrestrict on the latter.
  text_.push_back('{');
  first_ = true;
  return out;
}

namespace {

// PostgreSQL's binary formats are big-endian.
void store_be32(char* out, std::uint32_t v) {
  out[0] = static_cast<char>(v >> 24);
  out[1] = static_cast<char>(v >> 16);
  out[2] = static_cast<char>(v >> 8);
  out[3] = static_cast<char>(v);
}

}  // namespace

void BinaryArray::put32(std::uint32_t v) {
  char b[4];
  store_be32(b, v);
  data_.append(b, 4);
}

void BinaryArray::add_text(std::string_view s) {
  put32(static_cast<std::uint32_t>(s.size()));
  data_.append(s);
  ++count_;
}

void BinaryArray::add_int8(std::int64_t v) {
  const auto u = static_cast<std::uint64_t>(v);
  put32(8);
  put32(static_cast<std::uint32_t>(u >> 32));
  put32(static_cast<std::uint32_t>(u));
  ++count_;
}

void BinaryArray::add_int4(std::int32_t v) {
  put32(4);
  put32(static_cast<std::uint32_t>(v));
  ++count_;
}

std::string BinaryArray::finish() {
  std::string out;
  out.swap(data_);
  const std::uint32_t header[5] = {count_ == 0 ? 0u : 1u, 0u, element_type_,
                                   static_cast<std::uint32_t>(count_), 1u};
  // An empty array has no dimensions: then only ndim, flags and the element type are sent.
  const std::size_t words = count_ == 0 ? 3 : 5;
  for (std::size_t i = 0; i < words; ++i) store_be32(&out[i * 4], header[i]);
  if (count_ == 0) out.resize(12);
  data_.resize(kHeader);
  count_ = 0;
  return out;
}

std::string sqlstate(const PGresult* r) {
  if (r == nullptr) return {};
  const char* s = PQresultErrorField(r, PG_DIAG_SQLSTATE);
  return s == nullptr ? std::string() : std::string(s);
}

bool broken(PGconn* conn) { return conn == nullptr || PQstatus(conn) != CONNECTION_OK; }

Status error_status(PGconn* conn, const PGresult* r, std::string_view what) {
  std::string detail;
  if (r != nullptr && PQresultErrorMessage(r) != nullptr) detail = PQresultErrorMessage(r);
  if (detail.empty() && conn != nullptr && PQerrorMessage(conn) != nullptr) detail = PQerrorMessage(conn);
  while (!detail.empty() && (detail.back() == '\n' || detail.back() == ' ')) detail.pop_back();
  const std::string state = sqlstate(r);
  std::string msg = "postgres " + std::string(what) + " failed";
  if (!state.empty()) msg += " [" + state + "]";
  if (!detail.empty()) msg += ": " + detail;

  if (state.empty() || broken(conn)) {
    // No SQLSTATE: libpq itself failed (connection lost, out of memory talking to the server).
    return Status::unavailable(std::move(msg));
  }
  const std::string_view cls = std::string_view(state).substr(0, 2);
  if (cls == "08" || state == "57P01" || state == "57P02" || state == "57P03" || cls == "53" ||
      state == "40001" || state == "40P01" || state == "55P03" || state == "57014") {
    return Status::unavailable(std::move(msg));
  }
  if (state == "23505") return Status::already_exists(std::move(msg));
  if (state == "XX001" || state == "XX002") return Status::corruption(std::move(msg));
  if (cls == "22" || cls == "23") return Status::invalid_argument(std::move(msg));
  return Status::internal(std::move(msg));
}

Result<Rows> exec(PGconn* conn, const char* sql, const Params& params, std::string_view what) {
  if (conn == nullptr) return Status::unavailable("postgres " + std::string(what) + ": no connection");
  std::vector<const char*> values = params.pointers();
  PGresult* r = PQexecParams(conn, sql, params.size(), nullptr, values.data(), nullptr, nullptr, 0);
  const ExecStatusType st = r == nullptr ? PGRES_FATAL_ERROR : PQresultStatus(r);
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return Rows(r);
  Status s = error_status(conn, r, what);
  PQclear(r);
  return s;
}

Status prepare(PGconn* conn, const char* name, const char* sql, const std::vector<Oid>& types,
               std::string_view what) {
  if (conn == nullptr) return Status::unavailable("postgres " + std::string(what) + ": no connection");
  PGresult* r = PQprepare(conn, name, sql, static_cast<int>(types.size()), types.data());
  const ExecStatusType st = r == nullptr ? PGRES_FATAL_ERROR : PQresultStatus(r);
  Status s;
  if (st != PGRES_COMMAND_OK) s = error_status(conn, r, what);
  PQclear(r);
  return s;
}

Result<Rows> exec_prepared(PGconn* conn, const char* name, const std::vector<std::string>& values,
                           const std::vector<bool>& binary, std::string_view what) {
  if (conn == nullptr) return Status::unavailable("postgres " + std::string(what) + ": no connection");
  std::vector<const char*> ptrs;
  std::vector<int> lengths;
  std::vector<int> formats;
  ptrs.reserve(values.size());
  lengths.reserve(values.size());
  formats.reserve(values.size());
  for (std::size_t i = 0; i < values.size(); ++i) {
    const bool bin = i < binary.size() && binary[i];
    ptrs.push_back(values[i].c_str());
    lengths.push_back(static_cast<int>(values[i].size()));
    formats.push_back(bin ? 1 : 0);
  }
  PGresult* r = PQexecPrepared(conn, name, static_cast<int>(values.size()), ptrs.data(), lengths.data(),
                               formats.data(), 0);
  const ExecStatusType st = r == nullptr ? PGRES_FATAL_ERROR : PQresultStatus(r);
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return Rows(r);
  Status s = error_status(conn, r, what);
  PQclear(r);
  return s;
}

Status exec_simple(PGconn* conn, const char* sql, std::string_view what) {
  if (conn == nullptr) return Status::unavailable("postgres " + std::string(what) + ": no connection");
  PGresult* r = PQexec(conn, sql);
  const ExecStatusType st = r == nullptr ? PGRES_FATAL_ERROR : PQresultStatus(r);
  Status s;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) s = error_status(conn, r, what);
  PQclear(r);
  return s;
}

Result<Conn> connect(const std::string& conninfo) {
  // Defaults first: values given in the URL come later and win.
  const char* keys[] = {"connect_timeout", "application_name", "client_encoding", "dbname", nullptr};
  const char* values[] = {"10", "herald", "UTF8", conninfo.c_str(), nullptr};
  Conn conn(PQconnectdbParams(keys, values, /*expand_dbname=*/1));
  if (!conn) return Status::unavailable("postgres: out of memory opening a connection");
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    std::string detail = PQerrorMessage(conn.get());
    while (!detail.empty() && (detail.back() == '\n' || detail.back() == ' ')) detail.pop_back();
    // A malformed URL is the caller's mistake, not a transient failure.
    if (detail.find("invalid URI") != std::string::npos ||
        detail.find("invalid connection option") != std::string::npos ||
        detail.find("missing \"=\"") != std::string::npos) {
      return Status::invalid_argument("postgres URL " + redact_url(conninfo) + ": " + detail);
    }
    return Status::unavailable("cannot connect to " + redact_url(conninfo) + ": " + detail);
  }
  // libpq prints server notices (and the FATAL of a terminated session) to stderr by default;
  // errors reach callers as Status values instead.
  PQsetNoticeProcessor(conn.get(), [](void*, const char*) {}, nullptr);
  return conn;
}

namespace {

// Whether a query parameter "key=value" sets the password. libpq percent-decodes the key
// ("pass%77ord=…" is the password); a key that does not decode counts as one, to be safe.
bool is_password_parameter(std::string_view part) {
  const std::string_view key = part.substr(0, part.find('='));
  std::string decoded;
  for (std::size_t i = 0; i < key.size(); ++i) {
    if (key[i] != '%') {
      decoded.push_back(key[i]);
      continue;
    }
    if (i + 2 >= key.size() || !std::isxdigit(static_cast<unsigned char>(key[i + 1])) ||
        !std::isxdigit(static_cast<unsigned char>(key[i + 2]))) {
      return true;
    }
    decoded.push_back(static_cast<char>(std::stoi(std::string(key.substr(i + 1, 2)), nullptr, 16)));
    i += 2;
  }
  return decoded == "password";
}

}  // namespace

namespace {

// One pass of redact_url: the password of the user info and every password=… (or unreadable)
// parameter of the query string, both found where libpq finds them.
std::string redact_once(std::string_view url) {
  std::string out(url);
  std::size_t query_search_from = 0;
  const auto scheme = out.find("://");
  if (scheme != std::string::npos) {
    // As libpq reads it: the user info ends at the first '@' before any '/' ('?' does not end it:
    // "postgres://u:pw?x@host" has the password "pw?x"), the password at that user info's first ':'.
    const auto auth_start = scheme + 3;
    query_search_from = auth_start;
    const auto at = out.find_first_of("@/", auth_start);
    if (at != std::string::npos && out[at] == '@') {
      const auto colon = out.find(':', auth_start);
      if (colon != std::string::npos && colon < at) {
        out.erase(colon, at - colon);
        query_search_from = colon + 1;  // just past the '@', which moved to `colon`
      } else {
        query_search_from = at + 1;
      }
    }
  }
  const auto q = out.find('?', query_search_from);
  if (q != std::string::npos) {
    std::string query = out.substr(q + 1);
    std::string kept;
    std::size_t start = 0;
    while (start <= query.size()) {
      auto amp = query.find('&', start);
      if (amp == std::string::npos) amp = query.size();
      std::string_view part(query.data() + start, amp - start);
      if (!part.empty() && !is_password_parameter(part)) {
        if (!kept.empty()) kept.push_back('&');
        kept.append(part);
      }
      start = amp + 1;
    }
    out.erase(q);
    if (!kept.empty()) out += "?" + kept;
  }
  return out;
}

}  // namespace

std::string redact_url(std::string_view url) {
  // Dropping a query parameter can change how the rest parses (a dropped "x=/" was the '/' that
  // kept a later '@' out of the user info), so redact until nothing changes. Each pass that
  // changes anything makes the text shorter, so this ends.
  std::string out = redact_once(url);
  for (;;) {
    std::string again = redact_once(out);
    if (again == out) return out;
    out = std::move(again);
  }
}

Result<Pool::Lease> Pool::acquire() {
  {
    std::unique_lock lock(mu_);
    // `capacity` is soft: a caller that waited kOverflowAfter opens one more connection anyway,
    // because transact() work may call the store again while holding a connection, and a pool
    // full of such callers would otherwise wait for itself forever.
    constexpr auto kOverflowAfter = std::chrono::milliseconds(500);
    freed_.wait_for(lock, kOverflowAfter,
                    [&] { return closed_ || !idle_.empty() || open_ < capacity_; });
    if (open_ >= kHardLimit && idle_.empty() && !closed_) {
      freed_.wait(lock, [&] { return closed_ || !idle_.empty() || open_ < kHardLimit; });
    }
    if (closed_) return Status::failed_precondition("the postgres store is closed");
    if (!idle_.empty()) {
      Conn c = std::move(idle_.back());
      idle_.pop_back();
      return Lease(this, std::move(c));
    }
    ++open_;  // reserve a slot; connect without holding the lock
  }
  auto conn = connect(conninfo_);
  if (conn) {
    for (const std::string& stmt : setup_) {
      Status s = exec_simple(conn->get(), stmt.c_str(), "session setup");
      if (!s.is_ok()) {
        conn = s;
        break;
      }
    }
  }
  if (!conn) {
    std::lock_guard lock(mu_);
    --open_;
    freed_.notify_one();
    return conn.status();
  }
  return Lease(this, std::move(*conn));
}

void Pool::give_back(Conn conn) {
  std::lock_guard lock(mu_);
  // A connection in the middle of a transaction (an aborted caller) or broken is not reused.
  // Overflow connections (see acquire) are closed once the pool is back at capacity.
  const bool reusable = !closed_ && !broken(conn.get()) &&
                        PQtransactionStatus(conn.get()) == PQTRANS_IDLE && open_ <= capacity_;
  if (reusable) {
    idle_.push_back(std::move(conn));
  } else {
    conn.reset();
    --open_;
  }
  freed_.notify_one();
}

void Pool::discard_idle() {
  std::vector<Conn> doomed;
  {
    std::lock_guard lock(mu_);
    open_ -= static_cast<int>(idle_.size());
    doomed.swap(idle_);
  }
  freed_.notify_all();
}

void Pool::close() {
  std::vector<Conn> doomed;
  {
    std::lock_guard lock(mu_);
    closed_ = true;
    open_ -= static_cast<int>(idle_.size());
    doomed.swap(idle_);
  }
  freed_.notify_all();
}

}  // namespace herald::detail::pg
