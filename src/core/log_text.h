// Text from outside the process (paths, headers, payload fragments in error messages) reaches the
// logs; escaped here, it can neither forge a log line nor drive the terminal that shows it.
#pragma once

#include <string>
#include <string_view>

namespace herald::detail {

// `value` with every byte that could forge a log line or drive a terminal shown as \xNN: C0
// controls (newlines included), DEL, backslash (so the escaping stays unambiguous), bytes that are
// not valid UTF-8, and the C1 controls, U+2028 and U+2029 of valid UTF-8. Other UTF-8 is kept.
std::string escape_for_log(std::string_view value);

// Whether escape_for_log(value) == value, without building it.
bool is_log_safe(std::string_view value) noexcept;

}  // namespace herald::detail
