// herald/id.h — event ids.
#pragma once

#include <string>
#include <string_view>

namespace herald {

// A fresh UUIDv7 (RFC 9562) in canonical lower-case text form. Ids made by one process are
// strictly increasing in text order, even within one millisecond (a 12-bit counter, method 1 of
// RFC 9562 6.2); the other 62 bits are fresh from the kernel's CSPRNG (getrandom) for every id, so
// one id tells nothing about the next. Thread-safe; fork-safe (a child never reuses the parent's
// random bytes). Aborts only if the kernel refuses randomness, which Linux >= 3.17 never does.
std::string new_uuid_v7();

// A deterministic UUID (version 8, RFC 9562 "custom") derived from `name` within `ns`: the same
// inputs always give the same id. Used for idempotent follow-up events and e-mails.
std::string derived_uuid(std::string_view ns, std::string_view name);

// Whether `text` is a canonical UUID: 36 characters, hex digits and dashes at 8-4-4-4-12.
bool is_uuid(std::string_view text);

}  // namespace herald
