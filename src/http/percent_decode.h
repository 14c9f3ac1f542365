// The one percent-decoder of the HTTP layer, for the path (normalize_path) and the query string.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace herald::http::detail {

// `text` with every %XX replaced by its byte, once; '+' becomes a space when `plus_is_space`
// (form-encoded query keys and values). nullopt for a '%' not followed by two hex digits.
std::optional<std::string> percent_decode(std::string_view text, bool plus_is_space);

}  // namespace herald::http::detail
