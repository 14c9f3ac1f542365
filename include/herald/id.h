// herald/id.h — event ids.
#pragma once

#include <string>
#include <string_view>

namespace herald {

// A fresh UUIDv7 (RFC 9562) in canonical lower-case text form. Ids made by one process are
// strictly increasing in text order, even within one millisecond. Thread-safe.
std::string new_uuid_v7();

// A deterministic UUID (version 8, RFC 9562 "custom") derived from `name` within `ns`: the same
// inputs always give the same id. Used for idempotent follow-up events and e-mails.
std::string derived_uuid(std::string_view ns, std::string_view name);

// Whether `text` is a canonical UUID: 36 characters, hex digits and dashes at 8-4-4-4-12.
bool is_uuid(std::string_view text);

}  // namespace herald
