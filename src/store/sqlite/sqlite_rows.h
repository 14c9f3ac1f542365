// Rows of the SQLite backend's tables decoded into the contract's types.
#pragma once

#include <string>
#include <string_view>

#include "herald/event.h"
#include "herald/process_state.h"
#include "store/sqlite/sqlite_connection.h"

namespace herald::detail::sqlite {

// Decodes a row selected with the event columns of sqlite_sql.h (position, stream_id, version,
// event_id, type, payload, correlation_id, causation_id, actor, extra_metadata, recorded_at) into
// `e`, reusing its strings' capacity. corruption for malformed extra metadata.
Status read_event_row(const Stmt& s, RecordedEvent& e);

// Event ids as stored: a canonical (lower-case) UUID as its 16 bytes, any other id as its text.
// The column has BLOB affinity, so SQLite keeps each as given; 16 bytes instead of 36 in the row
// and again in the events_by_id index (schema version 2). An id reads back exactly as appended.
class StoredEventId {
 public:
  explicit StoredEventId(std::string_view id);
  // Binds it as parameter `i` (a copy of the bytes, or the caller's text, which must outlive the step).
  void bind(Stmt& s, int i) const;

 private:
  bool compact_ = false;
  unsigned char bytes_[16] = {};
  std::string_view text_;
};

// The id in column `col`, as StoredEventId wrote it, into `out`.
void read_event_id(const Stmt& s, int col, std::string& out);

// The 16 bytes of a canonical lower-case UUID; false for anything else (which is stored as text).
bool compact_uuid(std::string_view id, unsigned char (&bytes)[16]);

// Decodes a row selected with the dead-letter columns of sqlite_sql.h.
DeadLetter read_dead_letter_row(const Stmt& s);

}  // namespace herald::detail::sqlite
