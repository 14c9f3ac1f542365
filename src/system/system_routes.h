// The system's own HTTP routes: /health, /livez, /readyz, /metrics and the /admin/* API
// (docs/http-api.md).
#pragma once

#include <nlohmann/json.hpp>

#include "herald/event.h"
#include "herald/event_store.h"
#include "herald/http.h"
#include "herald/status.h"

namespace herald {

class EventSystem;

// Registers the system routes on `router`; the handlers call into `system`, which must outlive
// the server. Returns the first Router::add error (a duplicate route).
Status register_system_routes(http::Router& router, EventSystem& system);

// The JSON shape of an event in admin responses:
// {position, stream, version, id, type, recorded_at, data, metadata}.
nlohmann::json event_to_json(const RecordedEvent& e);
nlohmann::json dead_letter_to_json(const DeadLetter& d);

}  // namespace herald
