// /health, /livez, /readyz, /metrics and the admin API. Every handler validates all of its input
// before touching the store or the bus, so bad input answers 4xx and writes nothing.
#include "system/system_routes.h"

#include <charconv>

#include "core/json_codec.h"
#include "herald/sqlite_store.h"
#include "herald/system.h"

namespace herald {

using http::Request;
using http::Response;

namespace {

constexpr std::int64_t kDefaultLimit = 100;
constexpr std::int64_t kMaxLimit = 1000;

Response bad_request(const std::string& message) { return Response::error(400, "invalid_argument", message); }

std::optional<Timestamp> parse_time(const Request& req, const std::string& name, std::string& error) {
  auto v = req.query_param(name);
  if (!v) return std::nullopt;
  Timestamp t{};
  if (!parse_rfc3339(*v, t)) {
    error = "query parameter '" + name + "' must be an RFC 3339 time such as 2026-11-25T12:00:00Z";
    return std::nullopt;
  }
  return t;
}

// A path parameter that names a dead letter: a non-negative decimal integer.
std::optional<std::int64_t> parse_id(const std::string& text) {
  std::int64_t v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc{} || ptr != text.data() + text.size() || v < 0) return std::nullopt;
  return v;
}

nlohmann::json handler_to_json(const HandlerStatus& h) {
  return {{"name", h.name},
          {"status", to_string(h.state)},
          {"lanes", h.lanes},
          {"active_lanes", h.active_lanes},
          {"checkpoint", h.checkpoint},
          {"lag", h.lag},
          {"processed", h.processed},
          {"failed", h.failed},
          {"retried", h.retried},
          {"dead_lettered", h.dead_lettered},
          {"parked", h.parked},
          {"last_error", h.last_error}};
}

Result<ExpectedVersion> parse_expected(const nlohmann::json& body) {
  auto it = body.find("expected_version");
  if (it == body.end() || it->is_null()) return ExpectedVersion::any();
  if (it->is_string()) {
    auto s = it->get<std::string>();
    if (s == "any") return ExpectedVersion::any();
    if (s == "no_stream") return ExpectedVersion::no_stream();
    if (s == "exists" || s == "stream_exists") return ExpectedVersion::stream_exists();
  } else if (it->is_number_integer() || it->is_number_unsigned()) {
    auto v = http::get_int(body, "expected_version", 0);
    if (v) return ExpectedVersion::exact(*v);
  }
  return Status::invalid_argument(
      "field 'expected_version' must be \"any\", \"no_stream\", \"exists\" or an integer >= 0");
}

Result<std::vector<EventData>> parse_events(const nlohmann::json& body) {
  auto it = body.find("events");
  if (it == body.end() || !it->is_array() || it->empty()) {
    return Status::invalid_argument("field 'events' must be a non-empty array");
  }
  std::vector<EventData> out;
  out.reserve(it->size());
  for (std::size_t i = 0; i < it->size(); ++i) {
    const auto& e = (*it)[i];
    std::string where = "events[" + std::to_string(i) + "]";
    if (!e.is_object()) return Status::invalid_argument(where + " must be an object");
    EventData d;
    auto type = http::get_string(e, "type");
    if (!type) return Status::invalid_argument(where + ": " + type.status().message());
    d.type = *type;
    auto data = e.find("data");
    if (data == e.end()) return Status::invalid_argument(where + ": field 'data' is required");
    d.payload = data->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    auto id = http::get_optional_string(e, "id");
    if (!id) return Status::invalid_argument(where + ": " + id.status().message());
    d.id = id->value_or("");
    if (auto md = e.find("metadata"); md != e.end() && !md->is_null()) {
      if (!md->is_object() || !detail::metadata_from_json(*md, d.metadata)) {
        return Status::invalid_argument(where + ": field 'metadata' must be an object of string values");
      }
    }
    out.push_back(std::move(d));
  }
  return out;
}

}  // namespace

nlohmann::json event_to_json(const RecordedEvent& e) {
  nlohmann::json data = nlohmann::json::parse(e.payload, nullptr, false);
  if (data.is_discarded()) data = e.payload;  // the store guarantees JSON; keep the bytes if not
  return {{"position", e.position},
          {"stream", e.stream_id},
          {"version", e.version},
          {"id", e.id},
          {"type", e.type},
          {"recorded_at", format_rfc3339(e.recorded_at)},
          {"data", std::move(data)},
          {"metadata", detail::metadata_to_json(e.metadata)}};
}

nlohmann::json dead_letter_to_json(const DeadLetter& d) {
  return {{"id", d.id},
          {"handler", d.handler},
          {"position", d.position},
          {"event_id", d.event_id},
          {"event_type", d.event_type},
          {"stream", d.stream_id},
          {"parked", d.parked},
          {"attempts", d.attempts},
          {"last_error", d.last_error},
          {"first_failed_at", format_rfc3339(d.first_failed_at)},
          {"last_failed_at", format_rfc3339(d.last_failed_at)}};
}

Status register_system_routes(http::Router& router, EventSystem& system) {
  EventSystem* sys = &system;

  HERALD_RETURN_IF_ERROR(router.get("/health", [sys](const Request&) {
    auto report = sys->health();
    return Response::json(report.up ? 200 : 503, report.to_json());
  }));

  // Liveness: answering at all is the proof; it checks nothing else, so a slow database never gets
  // a healthy process restarted.
  HERALD_RETURN_IF_ERROR(router.get("/livez", [](const Request&) { return Response::ok({{"status", "alive"}}); }));

  // Readiness: whether to route traffic here (store open, bus running, not shutting down).
  HERALD_RETURN_IF_ERROR(router.get("/readyz", [sys](const Request&) {
    auto report = sys->readiness();
    return Response::json(report.up ? 200 : 503, report.to_json());
  }));

  HERALD_RETURN_IF_ERROR(router.get("/metrics", [sys](const Request&) {
    return Response::text(200, sys->metrics(), "text/plain; version=0.0.4; charset=utf-8");
  }));

  HERALD_RETURN_IF_ERROR(router.get("/admin/events", [sys](const Request& req) {
    ReadFilter filter;
    filter.event_types = req.query_list("type");
    filter.category = req.query_param("category").value_or("");
    filter.stream_id = req.query_param("stream").value_or("");
    filter.correlation_id = req.query_param("correlation_id").value_or("");
    std::string error;
    filter.since = parse_time(req, "since", error);
    if (error.empty()) filter.until = parse_time(req, "until", error);
    if (!error.empty()) return bad_request(error);
    auto from = http::query_int(req, "from", 0, 0);
    if (!from) return Response::from_status(from.status());
    auto limit = http::query_int(req, "limit", kDefaultLimit, 1, kMaxLimit);
    if (!limit) return Response::from_status(limit.status());
    auto slice = sys->store().read_all(*from, static_cast<std::size_t>(*limit), filter);
    if (!slice) return Response::from_status(slice.status());
    nlohmann::json events = nlohmann::json::array();
    for (const auto& e : slice->events) events.push_back(event_to_json(e));
    return Response::ok({{"events", std::move(events)},
                         {"next", slice->next_position},
                         {"end_of_log", slice->end_of_log}});
  }, http::Access::admin));

  HERALD_RETURN_IF_ERROR(router.get("/admin/streams/{stream}", [sys](const Request& req) {
    const auto& stream = req.param("stream");
    auto dir_text = req.query_param("direction").value_or("forwards");
    ReadDirection direction{};
    if (dir_text == "forwards") {
      direction = ReadDirection::forwards;
    } else if (dir_text == "backwards") {
      direction = ReadDirection::backwards;
    } else {
      return bad_request("query parameter 'direction' must be forwards or backwards");
    }
    auto from = http::query_int(req, "from", direction == ReadDirection::forwards ? 0 : kStreamEnd, 0);
    if (!from) return Response::from_status(from.status());
    auto limit = http::query_int(req, "limit", kDefaultLimit, 1, kMaxLimit);
    if (!limit) return Response::from_status(limit.status());
    auto events = sys->store().read_stream(stream, *from, static_cast<std::size_t>(*limit), direction);
    if (!events) return Response::from_status(events.status());
    nlohmann::json list = nlohmann::json::array();
    for (const auto& e : *events) list.push_back(event_to_json(e));
    nlohmann::json next = nullptr;  // where the next page starts; null when this page was the last
    if (static_cast<std::int64_t>(events->size()) == *limit && !events->empty()) {
      std::int64_t last = events->back().version;
      if (direction == ReadDirection::forwards) {
        next = last + 1;
      } else if (last > 0) {
        next = last - 1;
      }
    }
    return Response::ok({{"stream", stream}, {"direction", dir_text}, {"events", std::move(list)}, {"next", next}});
  }, http::Access::admin));

  HERALD_RETURN_IF_ERROR(router.post("/admin/streams/{stream}", [sys](const Request& req) {
    auto body = req.json_object();
    if (!body) return Response::from_status(body.status());
    auto expected = parse_expected(*body);
    if (!expected) return Response::from_status(expected.status());
    auto events = parse_events(*body);
    if (!events) return Response::from_status(events.status());
    auto written = sys->bus().publish(req.param("stream"), *expected, std::move(*events));
    if (!written) return Response::from_status(written.status());
    return Response::created({{"first_position", written->first_position},
                              {"last_position", written->last_position},
                              {"next_version", written->stream_version + 1}});
  }, http::Access::admin));

  HERALD_RETURN_IF_ERROR(router.get("/admin/stats", [sys](const Request&) {
    auto stats = sys->store().stats();
    if (!stats) return Response::from_status(stats.status());
    auto opt_time = [](const std::optional<Timestamp>& t) -> nlohmann::json {
      return t ? nlohmann::json(format_rfc3339(*t)) : nlohmann::json(nullptr);
    };
    auto bus = sys->bus().stats();
    return Response::ok({{"store",
                          {{"url", sys->store().url()},
                           {"total_events", stats->total_events},
                           {"stream_count", stats->stream_count},
                           {"events_by_type", stats->events_by_type},
                           {"first_position", stats->first_position},
                           {"last_position", stats->last_position},
                           {"first_recorded_at", opt_time(stats->first_recorded_at)},
                           {"last_recorded_at", opt_time(stats->last_recorded_at)},
                           {"bytes_on_disk", stats->bytes_on_disk}}},
                         {"bus",
                          {{"published_events", bus.published_events},
                           {"publish_calls", bus.publish_calls},
                           {"publish_failures", bus.publish_failures},
                           {"live_deliveries", bus.live_deliveries}}}});
  }, http::Access::admin));

  HERALD_RETURN_IF_ERROR(router.get("/admin/handlers", [sys](const Request&) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& h : sys->bus().handler_statuses()) {
      list.push_back(handler_to_json(h));
      list.back()["instance"] = sys->bus().instance_id();  // which instance answered (leases)
    }
    return Response::ok(list);
  }, http::Access::admin));

  HERALD_RETURN_IF_ERROR(router.get("/admin/handlers/{name}", [sys](const Request& req) {
    auto h = sys->bus().handler_status(req.param("name"));
    if (!h) return Response::from_status(h.status());
    auto j = handler_to_json(*h);
    j["instance"] = sys->bus().instance_id();
    return Response::ok(j);
  }, http::Access::admin));

  HERALD_RETURN_IF_ERROR(router.post("/admin/handlers/{name}/replay", [sys](const Request& req) {
    auto body = req.json_object();
    if (!body) return Response::from_status(body.status());
    const auto& name = req.param("name");
    Status s;
    nlohmann::json answer{{"handler", name}};
    if (auto t = body->find("from_time"); t != body->end() && !body->contains("from_position")) {
      Timestamp when{};
      if (!t->is_string() || !parse_rfc3339(t->get<std::string>(), when)) {
        return bad_request("field 'from_time' must be an RFC 3339 time");
      }
      s = sys->bus().reset_checkpoint_to_time(name, when);
      answer["from_time"] = *t;
    } else {
      auto from = http::get_int(*body, "from_position", 0);
      if (!from) return Response::from_status(from.status());
      s = sys->bus().reset_checkpoint(name, *from);
      answer["from_position"] = *from;
    }
    if (!s) return Response::from_status(s);
    return Response::accepted(answer);
  }, http::Access::admin));

  HERALD_RETURN_IF_ERROR(router.get("/admin/dead-letters", [sys](const Request& req) {
    auto list = sys->bus().dead_letters(req.query_param("handler").value_or(""));
    if (!list) return Response::from_status(list.status());
    nlohmann::json out = nlohmann::json::array();
    for (const auto& d : *list) out.push_back(dead_letter_to_json(d));
    return Response::ok({{"dead_letters", std::move(out)}});
  }, http::Access::admin));

  HERALD_RETURN_IF_ERROR(router.post("/admin/dead-letters/{id}/redrive", [sys](const Request& req) {
    auto id = parse_id(req.param("id"));
    if (!id) return bad_request("dead letter id must be a non-negative integer");
    auto s = sys->bus().redrive(*id);
    if (!s) return Response::from_status(s);
    return Response::ok({{"redriven", *id}});
  }, http::Access::admin));

  HERALD_RETURN_IF_ERROR(router.del("/admin/dead-letters/{id}", [sys](const Request& req) {
    auto id = parse_id(req.param("id"));
    if (!id) return bad_request("dead letter id must be a non-negative integer");
    auto s = sys->bus().discard(*id);
    if (!s) return Response::from_status(s);
    return Response::ok({{"discarded", *id}});
  }, http::Access::admin));

  // An online backup of the SQLite store into a new file on this host (herald/sqlite_store.h).
  HERALD_RETURN_IF_ERROR(router.post("/admin/backup", [sys](const Request& req) {
    auto body = req.json_object();
    if (!body) return Response::from_status(body.status());
    auto path = http::get_string(*body, "path");
    if (!path) return Response::from_status(path.status());
    if (!path->starts_with("/")) return bad_request("field 'path' must be an absolute path");
    const auto started = std::chrono::steady_clock::now();
    auto backup = backup_sqlite_store(sys->store(), *path);
    if (!backup) {
      // Another backend is a precondition failure of the request, not a malformed request.
      if (backup.status().code() == StatusCode::invalid_argument && !sys->store().url().starts_with("sqlite://")) {
        return Response::from_status(Status::failed_precondition(backup.status().message()));
      }
      return Response::from_status(backup.status());
    }
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
    return Response::created({{"path", backup->path},
                              {"head_position", backup->head_position},
                              {"bytes", backup->bytes},
                              {"pages", backup->pages},
                              {"duration_ms", ms.count()}});
  }, http::Access::admin));

  HERALD_RETURN_IF_ERROR(router.get("/admin/routes", [sys](const Request&) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& r : sys->router().routes()) {
      list.push_back({{"method", http::to_string(r.method)},
                      {"pattern", r.pattern},
                      {"access", r.access == http::Access::admin  ? "admin"
                                 : r.access == http::Access::user ? "user"
                                                                   : "public"}});
    }
    return Response::ok({{"routes", std::move(list)}});
  }, http::Access::admin));

  return Status::ok();
}

}  // namespace herald
