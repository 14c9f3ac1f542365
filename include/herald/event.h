// herald/event.h — the event model: what callers append and what the store hands back.
//
// The storage boundary carries bytes: a payload is JSON text, opaque to the store except that it
// must parse. Typed codecs live above the store (see herald/handler.h).
//
//   herald::EventData e;
//   e.type = "UserRegistered";
//   e.payload = R"({"email":"a@b.c"})";
//   e.metadata.correlation_id = request_id;
//   store.append("user-42", herald::ExpectedVersion::no_stream(), {e});
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace herald {

// Wall-clock instant with microsecond precision (what the store records).
using Timestamp = std::chrono::time_point<std::chrono::system_clock, std::chrono::microseconds>;

// Microseconds since the Unix epoch <-> Timestamp.
inline Timestamp timestamp_from_micros(std::int64_t us) { return Timestamp{std::chrono::microseconds{us}}; }
inline std::int64_t to_micros(Timestamp t) { return t.time_since_epoch().count(); }
// RFC 3339 in UTC with microseconds, e.g. "2026-11-25T12:00:00.000123Z".
std::string format_rfc3339(Timestamp t);
// Parses RFC 3339 ("…Z" or "…+hh:mm", fraction optional). Returns false on malformed input.
bool parse_rfc3339(std::string_view text, Timestamp& out);

// How deeply a payload's arrays and objects may nest; the store refuses deeper ones
// (invalid_argument), and the HTTP layer applies the same bound to request bodies. JSON libraries
// serialise and compare recursively, so an unbounded depth is a stack overflow waiting for one
// hostile input; 128 levels is far more than any real document needs.
inline constexpr std::size_t kMaxJsonDepth = 128;

// Who and why: carried with every event.
struct EventMetadata {
  std::string correlation_id;  // the request or flow this event belongs to
  std::string causation_id;    // the id of the event or command that caused it
  std::string actor;           // who did it (user id, service name)
  std::map<std::string, std::string> extra;  // free-form string pairs

  bool operator==(const EventMetadata&) const = default;
};

// What a caller appends. An empty id is replaced by a fresh UUIDv7 at append time.
struct EventData {
  std::string id;       // UUID text; stable across retries for idempotency
  std::string type;     // e.g. "OrderCreated"; must not be empty
  std::string payload;  // JSON text; must parse
  EventMetadata metadata;
};

// An event as stored.
struct RecordedEvent {
  std::string stream_id;
  std::int64_t version = 0;   // 0-based within its stream
  std::int64_t position = 0;  // 0-based, gap-free and increasing across the whole store
  Timestamp recorded_at{};
  std::string id;
  std::string type;
  std::string payload;
  EventMetadata metadata;

  // The stream's category: the prefix before the first '-' ("order" for "order-42"); the whole id
  // when it has no '-'.
  std::string_view category() const;
};

// Category of a stream id, as RecordedEvent::category().
std::string_view stream_category(std::string_view stream_id);

// The version of a stream that does not exist.
inline constexpr std::int64_t kNoStreamVersion = -1;

// Optimistic-concurrency condition for an append.
// Thread-safety: a value type.
class ExpectedVersion {
 public:
  enum class Kind : std::uint8_t { any, no_stream, stream_exists, exact };

  static constexpr ExpectedVersion any() { return ExpectedVersion{Kind::any, 0}; }
  static constexpr ExpectedVersion no_stream() { return ExpectedVersion{Kind::no_stream, 0}; }
  static constexpr ExpectedVersion stream_exists() { return ExpectedVersion{Kind::stream_exists, 0}; }
  // The stream's last event must have version `v` (v >= 0).
  static constexpr ExpectedVersion exact(std::int64_t v) { return ExpectedVersion{Kind::exact, v}; }

  constexpr Kind kind() const { return kind_; }
  constexpr std::int64_t version() const { return version_; }  // meaningful for exact only

  // Whether a stream currently at `current` (kNoStreamVersion when absent) satisfies this.
  constexpr bool matches(std::int64_t current) const {
    switch (kind_) {
      case Kind::any: return true;
      case Kind::no_stream: return current == kNoStreamVersion;
      case Kind::stream_exists: return current != kNoStreamVersion;
      case Kind::exact: return current == version_;
    }
    return false;
  }

  std::string to_string() const;  // "any", "no_stream", "stream_exists" or the number
  constexpr bool operator==(const ExpectedVersion&) const = default;

 private:
  constexpr ExpectedVersion(Kind k, std::int64_t v) : kind_(k), version_(v) {}
  Kind kind_;
  std::int64_t version_;
};

}  // namespace herald
