// shop/common — small helpers every shop module uses: metadata for commands and follow-up
// events, deterministic follow-up ids, read-model documents, and typed-event shortcuts.
#pragma once

#include <nlohmann/json.hpp>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "herald/event.h"
#include "herald/event_bus.h"
#include "herald/event_store.h"
#include "herald/handler.h"
#include "herald/http.h"
#include "herald/status.h"
#include "herald/typed_handler.h"

namespace shop {

// Metadata of events caused by an HTTP request: correlated by its request id.
herald::EventMetadata request_metadata(const herald::http::Request& req);
// Metadata of events a handler appends in reaction to `cause`: same correlation, causation = the
// cause's id, actor = the handler.
herald::EventMetadata caused_by(const herald::RecordedEvent& cause, std::string_view handler);

// The id of the follow-up event that `handler` appends for `cause` (`what` tells several apart).
// Deterministic, so a redelivered cause appends nothing new (the store sees an idempotent retry).
std::string follow_up_id(std::string_view handler, const herald::RecordedEvent& cause,
                         std::string_view what = {});

// Reads document (collection, key) outside any handler. not_found when absent.
herald::Result<nlohmann::json> read_document(herald::EventStore& store, std::string_view collection,
                                             std::string_view key);
// Lists of documents: common/paging.h (a page at a time, never silently cut).
// Inside a transaction: loads (collection, key) (or `initial` when absent), lets `update` change
// it and writes it back.
herald::Status update_document(herald::StoreTransaction& tx, std::string_view collection,
                               std::string_view key, const nlohmann::json& initial,
                               const std::function<void(nlohmann::json&)>& update);

// ok when `address` can stand in an e-mail header and an SMTP command as it is: local@domain,
// at most 250 bytes, valid UTF-8 without control characters (common/text.h), spaces or any of
// < > " , ; ( ) \ (which would let it carry a second address or a display name).
// invalid_argument naming `field` otherwise.
herald::Status check_email_address(std::string_view field, std::string_view address);
// Lower-cased (ASCII letters), space-trimmed address that passes check_email_address("email", …).
herald::Result<std::string> normalize_email(std::string_view email);

// Handler options for a handler whose events of different streams are independent (one user's
// welcome e-mail or cart never waits for another's): the registrar's defaults with at least
// `lanes` lanes, so that a slow effect per event (an fsync, a transaction) runs `lanes` at a time
// and the store's group commit takes them together. Measured on the registration flow: one lane
// fell 87,000 events behind in 30 s at 1,500 registrations/s and drained at ~70/s; eight stayed
// within about a second of work and drained at once. A `[handler.NAME] lanes` setting still wins.
herald::HandlerOptions parallel_lanes(const herald::HandlerOptions& defaults, int lanes);

// The answer to a failed command.
inline herald::http::Response error_response(const herald::Status& s) {
  return herald::http::Response::from_status(s);
}

// Ids that come from a URL or body: must be a UUID (anything else cannot exist, so not_found
// would be honest too; invalid_argument tells the client its input is malformed).
herald::Status check_id(std::string_view what, std::string_view id);

// For Access::user routes: ok when `owner_id` is the signed-in user (request.principal), else
// not_found "<what> <id> not found", exactly as for an id that does not exist, so another user's
// ids cannot be probed.
herald::Status check_own(std::string_view what, std::string_view owner_id, const herald::http::Request& request,
                         std::string_view shown_id = {});

}  // namespace shop
