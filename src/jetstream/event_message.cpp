#include "jetstream/event_message.h"

#include <charconv>
#include <cstdio>

#include "core/json_codec.h"
#include "herald/id.h"
#include "herald/jetstream.h"

namespace herald::jetstream {

int partition_of(std::string_view stream_id, int partitions) {
  // FNV-1a, as the bus's lanes: stable across builds, so a stream keeps its partition for ever.
  std::uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : stream_id) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return static_cast<int>(h % static_cast<std::uint64_t>(partitions < 1 ? 1 : partitions));
}

std::string subject_for(const StreamSettings& settings, const RecordedEvent& event) {
  std::string s = settings.subject_prefix;
  s += '.';
  s += detail::subject_token(event.category());
  s += ".p";
  s += std::to_string(partition_of(event.stream_id, settings.partitions));
  s += '.';
  s += detail::subject_token(event.type);
  return s;
}

}  // namespace herald::jetstream

namespace herald::jetstream::detail {

namespace {

bool parse_int(std::string_view text, std::int64_t& out) {
  if (text.empty()) return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc{} && end == text.data() + text.size();
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// The header's value, or null when absent.
const char* header(natsMsg* msg, const char* key) {
  const char* v = nullptr;
  if (natsMsgHeader_Get(msg, key, &v) != NATS_OK) return nullptr;
  return v;
}

Status set_header(natsMsg* msg, const char* key, const std::string& value) {
  natsStatus s = natsMsgHeader_Set(msg, key, value.c_str());
  if (s != NATS_OK) return Status::internal(std::string("set header ") + key + ": " + natsStatus_GetText(s));
  return Status::ok();
}

}  // namespace

std::string subject_token(std::string_view text) {
  if (text.empty()) return "_";
  std::string out(text);
  for (char& c : out) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    if (!ok) c = '_';
  }
  return out;
}

std::string header_encode(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (unsigned char c : value) {
    if (c < 0x20 || c > 0x7e || c == '%') {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  // A header value's leading or trailing blanks would be trimmed on the wire.
  if (!out.empty() && out.front() == ' ') out.replace(0, 1, "%20");
  if (!out.empty() && out.back() == ' ') out.replace(out.size() - 1, 1, "%20");
  return out;
}

bool header_decode(std::string_view text, std::string& out) {
  out.clear();
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out += text[i];
      continue;
    }
    if (i + 2 >= text.size()) return false;
    const int hi = hex_digit(text[i + 1]), lo = hex_digit(text[i + 2]);
    if (hi < 0 || lo < 0) return false;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return true;
}

Result<natsMsg*> make_event_message(const std::string& subject, const RecordedEvent& event) {
  // Messages may be made before any connection opened the library (which connecting does).
  static const natsStatus opened = nats_Open(-1);
  if (opened != NATS_OK) return Status::internal(std::string("libnats: ") + natsStatus_GetText(opened));
  natsMsg* msg = nullptr;
  natsStatus s = natsMsg_Create(&msg, subject.c_str(), nullptr, event.payload.data(),
                                static_cast<int>(event.payload.size()));
  if (s != NATS_OK) return Status::internal(std::string("create message: ") + natsStatus_GetText(s));
  auto fill = [&]() -> Status {
    HERALD_RETURN_IF_ERROR(set_header(msg, kHeaderMsgId, header_encode(event.id)));
    HERALD_RETURN_IF_ERROR(set_header(msg, kHeaderPosition, std::to_string(event.position)));
    HERALD_RETURN_IF_ERROR(set_header(msg, kHeaderStream, header_encode(event.stream_id)));
    HERALD_RETURN_IF_ERROR(set_header(msg, kHeaderVersion, std::to_string(event.version)));
    HERALD_RETURN_IF_ERROR(set_header(msg, kHeaderType, header_encode(event.type)));
    HERALD_RETURN_IF_ERROR(set_header(msg, kHeaderRecordedAt, format_rfc3339(event.recorded_at)));
    const EventMetadata& m = event.metadata;
    if (!m.correlation_id.empty()) HERALD_RETURN_IF_ERROR(set_header(msg, kHeaderCorrelation, header_encode(m.correlation_id)));
    if (!m.causation_id.empty()) HERALD_RETURN_IF_ERROR(set_header(msg, kHeaderCausation, header_encode(m.causation_id)));
    if (!m.actor.empty()) HERALD_RETURN_IF_ERROR(set_header(msg, kHeaderActor, header_encode(m.actor)));
    if (!m.extra.empty()) HERALD_RETURN_IF_ERROR(set_header(msg, kHeaderExtra, header_encode(herald::detail::encode_extra(m))));
    return Status::ok();
  };
  Status st = fill();
  if (!st.is_ok()) {
    natsMsg_Destroy(msg);
    return st;
  }
  return msg;
}

Result<RecordedEvent> decode_event_message(natsMsg* msg) {
  RecordedEvent e;
  auto text_header = [&](const char* key, std::string& out, bool required) -> Status {
    const char* v = header(msg, key);
    if (v == nullptr) {
      if (required) return Status::invalid_argument(std::string("not a Herald event: no ") + key + " header");
      return Status::ok();
    }
    if (!header_decode(v, out)) return Status::invalid_argument(std::string("not a Herald event: malformed ") + key + " header");
    return Status::ok();
  };
  auto int_header = [&](const char* key, std::int64_t& out) -> Status {
    const char* v = header(msg, key);
    if (v == nullptr) return Status::invalid_argument(std::string("not a Herald event: no ") + key + " header");
    if (!parse_int(v, out) || out < 0) {
      return Status::invalid_argument(std::string("not a Herald event: ") + key + " is not a non-negative integer");
    }
    return Status::ok();
  };
  HERALD_RETURN_IF_ERROR(text_header(kHeaderMsgId, e.id, true));
  if (!is_uuid(e.id)) return Status::invalid_argument("not a Herald event: Nats-Msg-Id is not a UUID");
  HERALD_RETURN_IF_ERROR(int_header(kHeaderPosition, e.position));
  HERALD_RETURN_IF_ERROR(text_header(kHeaderStream, e.stream_id, true));
  if (e.stream_id.empty()) return Status::invalid_argument("not a Herald event: empty Herald-Stream");
  HERALD_RETURN_IF_ERROR(int_header(kHeaderVersion, e.version));
  HERALD_RETURN_IF_ERROR(text_header(kHeaderType, e.type, true));
  if (e.type.empty()) return Status::invalid_argument("not a Herald event: empty Herald-Type");
  const char* recorded = header(msg, kHeaderRecordedAt);
  if (recorded == nullptr) return Status::invalid_argument("not a Herald event: no Herald-Recorded-At header");
  if (!parse_rfc3339(recorded, e.recorded_at)) {
    return Status::invalid_argument("not a Herald event: Herald-Recorded-At is not RFC 3339");
  }
  HERALD_RETURN_IF_ERROR(text_header(kHeaderCorrelation, e.metadata.correlation_id, false));
  HERALD_RETURN_IF_ERROR(text_header(kHeaderCausation, e.metadata.causation_id, false));
  HERALD_RETURN_IF_ERROR(text_header(kHeaderActor, e.metadata.actor, false));
  std::string extra;
  HERALD_RETURN_IF_ERROR(text_header(kHeaderExtra, extra, false));
  if (!extra.empty() && !herald::detail::decode_extra(extra, e.metadata)) {
    return Status::invalid_argument("not a Herald event: Herald-Extra is not a JSON object of strings");
  }
  const char* data = natsMsg_GetData(msg);
  const int len = natsMsg_GetDataLength(msg);
  e.payload.assign(data == nullptr ? "" : data, static_cast<std::size_t>(len < 0 ? 0 : len));
  if (!herald::detail::is_valid_json(e.payload)) return Status::invalid_argument("not a Herald event: the body is not JSON");
  return e;
}

std::int64_t position_of(natsMsg* msg) {
  const char* v = header(msg, kHeaderPosition);
  std::int64_t p = -1;
  if (v == nullptr || !parse_int(v, p)) return -1;
  return p;
}

}  // namespace herald::jetstream::detail
