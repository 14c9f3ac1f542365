// A RecordedEvent as a JetStream message and back: the subject, the headers (see
// herald/jetstream.h) and the body. Internal to herald_jetstream.
#pragma once

#include <nats/nats.h>

#include <string>
#include <string_view>

#include "herald/event.h"
#include "herald/status.h"

namespace herald::jetstream::detail {

inline constexpr const char* kHeaderMsgId = "Nats-Msg-Id";
inline constexpr const char* kHeaderPosition = "Herald-Position";
inline constexpr const char* kHeaderStream = "Herald-Stream";
inline constexpr const char* kHeaderVersion = "Herald-Version";
inline constexpr const char* kHeaderType = "Herald-Type";
inline constexpr const char* kHeaderRecordedAt = "Herald-Recorded-At";
inline constexpr const char* kHeaderCorrelation = "Herald-Correlation-Id";
inline constexpr const char* kHeaderCausation = "Herald-Causation-Id";
inline constexpr const char* kHeaderActor = "Herald-Actor";
inline constexpr const char* kHeaderExtra = "Herald-Extra";

// A subject token: bytes outside [A-Za-z0-9_-] become '_'; an empty text becomes "_".
std::string subject_token(std::string_view text);

// Percent-encoding of header values: bytes outside printable ASCII, and '%', become %XX.
std::string header_encode(std::string_view value);
// The reverse; false for a malformed escape.
bool header_decode(std::string_view text, std::string& out);

// A message for `event` on `subject`, with every header set. The caller owns the message.
Result<natsMsg*> make_event_message(const std::string& subject, const RecordedEvent& event);

// The event a message carries. invalid_argument naming what is wrong for a message that is not a
// Herald event: a missing or malformed header, or a body that is not JSON.
Result<RecordedEvent> decode_event_message(natsMsg* msg);

// The Herald-Position header of a message; -1 when absent or malformed.
std::int64_t position_of(natsMsg* msg);

}  // namespace herald::jetstream::detail
