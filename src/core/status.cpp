#include "herald/status.h"

namespace herald {

std::string_view to_string(StatusCode code) noexcept {
  switch (code) {
    case StatusCode::ok: return "ok";
    case StatusCode::invalid_argument: return "invalid_argument";
    case StatusCode::not_found: return "not_found";
    case StatusCode::already_exists: return "already_exists";
    case StatusCode::wrong_expected_version: return "wrong_expected_version";
    case StatusCode::failed_precondition: return "failed_precondition";
    case StatusCode::unavailable: return "unavailable";
    case StatusCode::timeout: return "timeout";
    case StatusCode::cancelled: return "cancelled";
    case StatusCode::corruption: return "corruption";
    case StatusCode::permanent: return "permanent";
    case StatusCode::internal: return "internal";
    case StatusCode::lease_lost: return "lease_lost";
  }
  return "unknown";
}

std::string Status::to_string() const {
  if (is_ok()) return "ok";
  std::string out(herald::to_string(code_));
  if (!message_.empty()) {
    out += ": ";
    out += message_;
  }
  return out;
}

}  // namespace herald
