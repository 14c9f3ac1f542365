#include "store/sqlite/sqlite_rows.h"

#include <string>

#include "core/json_codec.h"

namespace herald::detail::sqlite {
namespace {

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;  // upper case too: such an id is kept as text, so it reads back as written
}

}  // namespace

bool compact_uuid(std::string_view id, unsigned char (&bytes)[16]) {
  if (id.size() != 36 || id[8] != '-' || id[13] != '-' || id[18] != '-' || id[23] != '-') return false;
  std::size_t out = 0;
  for (std::size_t i = 0; i < 36;) {
    if (id[i] == '-') {
      ++i;
      continue;
    }
    const int hi = hex_digit(id[i]);
    const int lo = hex_digit(id[i + 1]);
    if (hi < 0 || lo < 0) return false;
    bytes[out++] = static_cast<unsigned char>(hi << 4 | lo);
    i += 2;
  }
  return out == 16;
}

StoredEventId::StoredEventId(std::string_view id) : text_(id) { compact_ = compact_uuid(id, bytes_); }

void StoredEventId::bind(Stmt& s, int i) const {
  if (compact_) {
    s.bind_blob_copy(i, bytes_, sizeof bytes_);
  } else {
    s.bind(i, text_);
  }
}

void read_event_id(const Stmt& s, int col, std::string& out) {
  if (!s.is_blob(col)) {
    s.text_into(col, out);
    return;
  }
  const std::string_view b = s.blob(col);
  if (b.size() != 16) {
    out.assign(b.data(), b.size());  // not written by StoredEventId; shown as stored
    return;
  }
  static constexpr char kHex[] = "0123456789abcdef";
  out.resize(36);
  std::size_t o = 0;
  for (std::size_t i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out[o++] = '-';
    const auto byte = static_cast<unsigned char>(b[i]);
    out[o++] = kHex[byte >> 4];
    out[o++] = kHex[byte & 0xf];
  }
}

Status read_event_row(const Stmt& s, RecordedEvent& e) {
  e.position = s.int64(0);
  s.text_into(1, e.stream_id);
  e.version = s.int64(2);
  read_event_id(s, 3, e.id);
  s.text_into(4, e.type);
  s.text_into(5, e.payload);
  s.text_into(6, e.metadata.correlation_id);
  s.text_into(7, e.metadata.causation_id);
  s.text_into(8, e.metadata.actor);
  if (s.is_null(9)) {
    e.metadata.extra.clear();
  } else if (!decode_extra(s.text(9), e.metadata)) {
    return Status::corruption("event at position " + std::to_string(e.position) +
                              " has malformed extra metadata");
  }
  e.recorded_at = timestamp_from_micros(s.int64(10));
  return {};
}

DeadLetter read_dead_letter_row(const Stmt& s) {
  DeadLetter d;
  d.id = s.int64(0);
  s.text_into(1, d.handler);
  d.position = s.int64(2);
  s.text_into(3, d.event_id);
  s.text_into(4, d.event_type);
  s.text_into(5, d.stream_id);
  d.parked = s.int64(6) != 0;
  d.attempts = static_cast<std::int32_t>(s.int64(7));
  s.text_into(8, d.last_error);
  d.first_failed_at = timestamp_from_micros(s.int64(9));
  d.last_failed_at = timestamp_from_micros(s.int64(10));
  return d;
}

}  // namespace herald::detail::sqlite
