// herald/status.h — errors as values.
//
// Every fallible call across the library boundary returns a Status or a Result<T>. Codes are chosen
// by how the caller should react (after absl::StatusCode):
//   invalid_argument        fix the input; retrying the same call fails the same way
//   not_found               the thing does not exist
//   already_exists          a unique key (event id, email, dead-letter) is taken
//   wrong_expected_version  optimistic concurrency conflict: re-read, decide again, retry at a
//                           higher level; actual_version() says what the stream is at
//   failed_precondition     the system is not in a state for this call (closed, poisoned, parked)
//   unavailable             transient: retry the same call later (database busy, network down)
//   timeout                 the deadline passed before the work was done; may be retried
//   cancelled               the caller or a shutdown stopped the work
//   corruption              stored data is unreadable or inconsistent; do not retry
//   permanent               a handler's error that retrying cannot fix (goes to dead letters)
//   internal                a bug: an invariant was broken
//
//   herald::Result<int> parse(std::string_view s);
//   auto r = parse("42");
//   if (!r) return r.status();
//   use(*r);
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace herald {

enum class StatusCode : std::uint8_t {
  ok = 0,
  invalid_argument,
  not_found,
  already_exists,
  wrong_expected_version,
  failed_precondition,
  unavailable,
  timeout,
  cancelled,
  corruption,
  permanent,
  internal,
  // A write made under a lease (its fencing token) after another owner acquired the lease.
  lease_lost,
};

// Stable lower-case name of a code, e.g. "wrong_expected_version" (used in logs and HTTP bodies).
std::string_view to_string(StatusCode code) noexcept;

// The outcome of an operation. Success carries nothing and allocates nothing.
// Thread-safety: a value type; distinct objects may be used from distinct threads.
class [[nodiscard]] Status {
 public:
  Status() noexcept = default;  // ok
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok() noexcept { return {}; }
  static Status invalid_argument(std::string m) { return {StatusCode::invalid_argument, std::move(m)}; }
  static Status not_found(std::string m) { return {StatusCode::not_found, std::move(m)}; }
  static Status already_exists(std::string m) { return {StatusCode::already_exists, std::move(m)}; }
  static Status failed_precondition(std::string m) {
    return {StatusCode::failed_precondition, std::move(m)};
  }
  static Status unavailable(std::string m) { return {StatusCode::unavailable, std::move(m)}; }
  static Status timeout(std::string m) { return {StatusCode::timeout, std::move(m)}; }
  static Status cancelled(std::string m) { return {StatusCode::cancelled, std::move(m)}; }
  static Status corruption(std::string m) { return {StatusCode::corruption, std::move(m)}; }
  static Status permanent(std::string m) { return {StatusCode::permanent, std::move(m)}; }
  static Status internal(std::string m) { return {StatusCode::internal, std::move(m)}; }
  static Status lease_lost(std::string m) { return {StatusCode::lease_lost, std::move(m)}; }
  // A conflict: the stream is at `actual_version` (-1 when it does not exist).
  static Status wrong_expected_version(std::int64_t actual_version, std::string m) {
    Status s{StatusCode::wrong_expected_version, std::move(m)};
    s.actual_version_ = actual_version;
    return s;
  }

  bool is_ok() const noexcept { return code_ == StatusCode::ok; }
  explicit operator bool() const noexcept { return is_ok(); }
  StatusCode code() const noexcept { return code_; }
  const std::string& message() const noexcept { return message_; }
  // Set only for wrong_expected_version.
  std::optional<std::int64_t> actual_version() const noexcept { return actual_version_; }

  // "code: message", or "ok".
  std::string to_string() const;

 private:
  StatusCode code_ = StatusCode::ok;
  std::string message_;
  std::optional<std::int64_t> actual_version_;
};

// A value or the Status explaining why there is none. Constructing from an ok Status is a bug and
// yields StatusCode::internal.
// Thread-safety: a value type.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  Result(Status status) : v_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    if (std::get<Status>(v_).is_ok()) v_ = Status::internal("Result constructed from ok Status");
  }

  bool is_ok() const noexcept { return std::holds_alternative<T>(v_); }
  explicit operator bool() const noexcept { return is_ok(); }

  // The error, or ok when a value is held.
  Status status() const { return is_ok() ? Status{} : std::get<Status>(v_); }

  // REQUIRES: is_ok().
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  T value_or(T fallback) const& { return is_ok() ? value() : std::move(fallback); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace herald

// Propagate a non-ok Status (or Result's status) to the caller.
#define HERALD_RETURN_IF_ERROR(expr)              \
  do {                                            \
    ::herald::Status herald_status_ = (expr);     \
    if (!herald_status_.is_ok()) return herald_status_; \
  } while (0)
