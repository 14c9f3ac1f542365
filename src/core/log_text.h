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

// Appends `value` to `out` as the contents of a JSON string (no quotes), harmless in a log in the
// same way: '"', '\\' and C0 controls get JSON escapes (\n, \u001b), DEL, the C1 controls, U+2028
// and U+2029 become \uXXXX, each byte that is not valid UTF-8 becomes \ufffd. A JSON parser gives
// back the original text, invalid bytes excepted.
void append_json_escaped(std::string_view value, std::string& out);

}  // namespace herald::detail
