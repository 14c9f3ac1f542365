// Internal JSON helpers shared by backends and the HTTP layer.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "herald/event.h"

namespace herald::detail {

// Whether `text` is one complete JSON value nested at most kMaxJsonDepth deep. Never throws.
bool is_valid_json(std::string_view text) noexcept;

// Whether the arrays and objects of `text` nest at most `max_depth` deep. A single iterative
// scan (strings and their escapes skipped) that stops at the first bracket too deep, so it is safe
// to run on any bytes before a recursive parser sees them; it does not check that `text` is JSON.
bool json_depth_within(std::string_view text, std::size_t max_depth) noexcept;

// The free-form part of metadata (extra) as a JSON object text; "" when empty.
std::string encode_extra(const EventMetadata& m);
// Parses what encode_extra wrote into m.extra; false when malformed.
bool decode_extra(std::string_view text, EventMetadata& m);

// Whole metadata as a JSON object {correlation_id?, causation_id?, actor?, ...extra}.
nlohmann::json metadata_to_json(const EventMetadata& m);
// Reads metadata_to_json's shape; string values only. Returns false on another shape.
bool metadata_from_json(const nlohmann::json& j, EventMetadata& out);

}  // namespace herald::detail
