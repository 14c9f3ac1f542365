#include "common/common.h"

#include <algorithm>

#include "common/text.h"
#include "herald/id.h"

namespace shop {

herald::EventMetadata request_metadata(const herald::http::Request& req) {
  herald::EventMetadata m;
  m.correlation_id = req.request_id;
  m.causation_id = req.request_id;
  m.actor = "http";
  return m;
}

herald::EventMetadata caused_by(const herald::RecordedEvent& cause, std::string_view handler) {
  herald::EventMetadata m;
  m.correlation_id = cause.metadata.correlation_id.empty() ? cause.id : cause.metadata.correlation_id;
  m.causation_id = cause.id;
  m.actor = std::string(handler);
  return m;
}

std::string follow_up_id(std::string_view handler, const herald::RecordedEvent& cause, std::string_view what) {
  std::string name = cause.id;
  if (!what.empty()) {
    name += '/';
    name += what;
  }
  return herald::derived_uuid(handler, name);
}

herald::Result<nlohmann::json> read_document(herald::EventStore& store, std::string_view collection,
                                             std::string_view key) {
  // Outside any transaction: on SQLite a GET no longer queues behind the writer's commits.
  auto text = store.read_document(collection, key);
  if (!text) return text.status();
  auto j = nlohmann::json::parse(*text, nullptr, false);
  if (j.is_discarded()) return herald::Status::corruption("document " + std::string(key) + " is not JSON");
  return j;
}

herald::Status update_document(herald::StoreTransaction& tx, std::string_view collection, std::string_view key,
                               const nlohmann::json& initial,
                               const std::function<void(nlohmann::json&)>& update) {
  nlohmann::json doc = initial;
  auto existing = tx.get_document(collection, key);
  if (existing) {
    doc = nlohmann::json::parse(*existing, nullptr, false);
    if (doc.is_discarded()) {
      return herald::Status::corruption("document " + std::string(collection) + "/" + std::string(key) +
                                        " is not JSON");
    }
  } else if (existing.status().code() != herald::StatusCode::not_found) {
    return existing.status();
  }
  update(doc);
  return tx.put_document(collection, key, doc.dump());
}

herald::Status check_email_address(std::string_view field, std::string_view address) {
  HERALD_RETURN_IF_ERROR(check_plain_text(field, address));
  constexpr std::string_view kForbidden = " <>\",;()\\";
  if (address.find_first_of(kForbidden) != std::string_view::npos) {
    return herald::Status::invalid_argument("field '" + std::string(field) +
                                            "' must not contain spaces or any of < > \" , ; ( ) \\");
  }
  const auto at = address.find('@');
  const bool shape_ok = at != std::string_view::npos && at > 0 && at + 1 < address.size() &&
                        address.find('@', at + 1) == std::string_view::npos &&
                        address.find('.', at + 1) != std::string_view::npos && address.back() != '.' &&
                        address.size() <= 250;
  if (!shape_ok) {
    return herald::Status::invalid_argument("field '" + std::string(field) +
                                            "' must be an e-mail address like name@example.com");
  }
  return {};
}

herald::Result<std::string> normalize_email(std::string_view email) {
  // Only spaces are trimmed: a CR, LF or other control character is refused by the check below
  // rather than silently dropped.
  while (!email.empty() && email.front() == ' ') email.remove_prefix(1);
  while (!email.empty() && email.back() == ' ') email.remove_suffix(1);
  std::string out(email);
  // ASCII letters only: bytes of multi-byte UTF-8 sequences are all >= 0x80 and stay as they are.
  std::transform(out.begin(), out.end(), out.begin(), [](char c) {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
  });
  HERALD_RETURN_IF_ERROR(check_email_address("email", out));
  return out;
}

herald::Status check_id(std::string_view what, std::string_view id) {
  if (!herald::is_uuid(id)) {
    return herald::Status::invalid_argument(std::string(what) + " '" + std::string(id) + "' is not a valid id");
  }
  return {};
}

herald::Status check_own(std::string_view what, std::string_view owner_id, const herald::http::Request& request,
                         std::string_view shown_id) {
  if (!request.principal.empty() && owner_id == request.principal) return {};
  return herald::Status::not_found(std::string(what) + " " + std::string(shown_id.empty() ? owner_id : shown_id) +
                                   " not found");
}

herald::HandlerOptions parallel_lanes(const herald::HandlerOptions& defaults, int lanes) {
  herald::HandlerOptions o = defaults;
  o.lanes = std::max(o.lanes, lanes);
  return o;
}

}  // namespace shop
