// What the calling thread is working on, for structured log lines: the HTTP pipeline sets the
// request id around a request, the bus sets the handler and event around a handler call, and the
// JSON log formatter (src/system/log_format.cpp) adds them to every line logged meanwhile. Text
// logs do not use it: their messages already name what they are about.
#pragma once

#include <string>
#include <string_view>

#include "herald/event.h"

namespace herald::detail {

struct LogContext {
  std::string_view request_id;            // empty: not serving a request
  const std::string* handler = nullptr;   // null: not in a handler call
  const RecordedEvent* event = nullptr;   // null: not handling an event
};

// The calling thread's context. Constant-initialised, so reading or setting it is a plain
// thread-local access (the bus sets it for every event it dispatches).
extern constinit thread_local LogContext current_log_context;

// Sets fields of the thread's context for its lifetime and restores the previous context after,
// so scopes nest (a request that publishes, a handler call inside a replay). The pointed-to values
// must outlive the scope. Not copyable; used on one thread.
class ScopedLogContext {
 public:
  explicit ScopedLogContext(std::string_view request_id) noexcept : saved_(current_log_context) {
    current_log_context.request_id = request_id;
  }
  ScopedLogContext(const std::string* handler, const RecordedEvent* event) noexcept : saved_(current_log_context) {
    current_log_context.handler = handler;
    current_log_context.event = event;
  }
  ~ScopedLogContext() { current_log_context = saved_; }
  ScopedLogContext(const ScopedLogContext&) = delete;
  ScopedLogContext& operator=(const ScopedLogContext&) = delete;

 private:
  LogContext saved_;
};

}  // namespace herald::detail
