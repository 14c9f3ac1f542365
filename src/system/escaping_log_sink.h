// Every log line of the process passes through one check: text from outside (a path, a header, an
// e-mail address inside a handler's error) can neither forge a line nor drive the terminal, even
// where the code that logged it forgot to escape.
#pragma once

namespace herald::detail {

// Wraps each sink of spdlog's default logger so that a message whose text is not log-safe
// (core/log_text.h) is written escaped. Idempotent; call before any other thread logs (it replaces
// the default logger, which spdlog reads without a lock).
void install_escaping_log_sinks();

// Whether those sinks escape messages (true, the default, for text lines) or pass them on as they
// are (false: the formatter writes JSON and escapes them as JSON strings; log_format.h).
void set_log_escaping(bool escape) noexcept;

}  // namespace herald::detail
