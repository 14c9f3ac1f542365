// shop/common/text — the one check for user-supplied text that can reach an e-mail header or a
// body line (user names, addresses, product names, SKUs): valid UTF-8, no control characters, a
// length counted in code points.
//
// Control characters are refused rather than stripped: a CR or LF in a name is an attempt to add
// a header (Bcc:) or replace the body, never a real name, and the client should learn its input
// was wrong. The set is every character a mail reader, terminal or log viewer may treat as a line
// break or a command: C0 (U+0000-U+001F, TAB included), DEL, C1 (U+0080-U+009F; U+0085 NEL is a
// line break to some parsers) and U+2028 / U+2029 (line and paragraph separators).
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

#include "herald/status.h"

namespace shop {

// The number of code points in `text` when it is valid UTF-8 (shortest forms only, no surrogates,
// nothing above U+10FFFF); nullopt otherwise.
std::optional<std::size_t> utf8_length(std::string_view text);

// The byte length of the UTF-8 sequence that starts with `lead`, for text already known to be
// valid (1 for ASCII and, harmlessly, for a stray continuation byte).
std::size_t utf8_sequence_length(unsigned char lead) noexcept;

// True when valid UTF-8 `text` holds one of the control characters above.
bool has_control_character(std::string_view text);

// ok, or invalid_argument naming the field: "field 'name' must be valid UTF-8", "... must not
// contain control characters".
herald::Status check_plain_text(std::string_view field, std::string_view text);

// As above, and `text` has min_chars to max_chars code points ("field 'name' must be 1 to 200
// characters").
herald::Status check_plain_text(std::string_view field, std::string_view text, std::size_t min_chars,
                                std::size_t max_chars);

}  // namespace shop
