// One NATS connection and its JetStream context, owned together, and the translation of libnats
// errors into herald::Status. Internal to herald_jetstream.
#pragma once

#include <nats/nats.h>

#include <memory>
#include <string>
#include <string_view>

#include "herald/jetstream.h"
#include "herald/status.h"

namespace herald::jetstream::detail {

// A libnats failure as a Status: unavailable for a lost or absent server (the caller retries),
// timeout for a request that got no answer in time, failed_precondition for JetStream's own
// refusals; the message names `what`, libnats's text and JetStream's error code when known.
Status nats_error(natsStatus s, std::string_view what, jsErrCode js_code = static_cast<jsErrCode>(0));

// Options of the JetStream context a session makes.
struct SessionOptions {
  std::string url;             // comma-separated server URLs
  std::string name;            // connection name shown by the server
  std::int64_t request_wait_ms = 5000;
  // Async publish acks (the relay): called on a libnats thread for every async publish; the
  // handler owns `msg` (it must destroy it).
  jsPubAckHandler ack_handler = nullptr;
  void* ack_closure = nullptr;
  std::int64_t max_pending_async = 0;  // 0: libnats's default
};

// A connected session. Reconnects by itself (forever, every 250 ms) while it lives; requests made
// while disconnected fail with unavailable. Not copyable; destroying it closes the connection.
// Thread-safety: libnats objects may be used from any thread.
class Session {
 public:
  static Result<std::unique_ptr<Session>> open(const SessionOptions& options);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  natsConnection* connection() const { return nc_; }
  jsCtx* js() const { return js_; }
  bool connected() const { return natsConnection_Status(nc_) == NATS_CONN_STATUS_CONNECTED; }

 private:
  Session() = default;
  natsConnection* nc_ = nullptr;
  jsCtx* js_ = nullptr;
};

// Creates `settings`' stream or verifies the existing one (see herald::jetstream::ensure_stream).
Status ensure_stream(jsCtx* js, const StreamSettings& settings);

// The subjects the stream holds: "<prefix>.>".
std::string stream_subjects(const StreamSettings& settings);

}  // namespace herald::jetstream::detail
