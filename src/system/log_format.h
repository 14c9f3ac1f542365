// How log lines look: text for people, or one JSON object per line for journald and log shippers
// (--log-format, SystemConfig::log_format).
#pragma once

#include <memory>
#include <optional>
#include <string_view>

#include <spdlog/formatter.h>

namespace herald::detail {

enum class LogFormat : unsigned char { text, json };

// "text" or "json"; nullopt for anything else.
std::optional<LogFormat> parse_log_format(std::string_view name) noexcept;

// Installs the escaping sinks (escaping_log_sink.h) and gives every sink of spdlog's default
// logger `format`. In json mode each line is
//   {"time":"2026-12-04T19:21:00.123456Z","level":"info","logger":"herald","message":"…",
//    "request_id":"…","handler":"…","event_id":"…","stream":"…"}
// with the last four only while the logging thread serves a request or runs a handler
// (core/log_context.h); the JSON string escaping then does what the escaping sinks do for text.
// Switching back to text restores spdlog's default pattern. Call while no other thread logs
// (during start-up), as install_escaping_log_sinks.
void apply_log_format(LogFormat format);

// The formatter json mode uses; it reads the logging thread's log context, so it suits synchronous
// sinks only (spdlog's default logger is).
std::unique_ptr<spdlog::formatter> make_json_log_formatter();

}  // namespace herald::detail
