// herald/typed_handler.h — typed events and BaseEventHandler, on nlohmann::json.
//
// An event type is a struct with a static kType and nlohmann to/from_json functions:
//
//   struct UserRegistered {
//     static constexpr std::string_view kType = "UserRegistered";
//     std::string user_id, email, name;
//   };
//   NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(UserRegistered, user_id, email, name)
//
//   class UpdateUserStats final : public herald::BaseEventHandler<UserRegistered, UserDeleted> {
//    public:
//     std::string name() const override { return "stats.users"; }
//     herald::Status on(const UserRegistered& e, const herald::RecordedEvent& raw,
//                       herald::HandlerContext& ctx) override;
//     herald::Status on(const UserDeleted& e, const herald::RecordedEvent& raw,
//                       herald::HandlerContext& ctx) override;
//   };
//
//   bus.publish("user-" + id, herald::ExpectedVersion::no_stream(), {herald::to_event(UserRegistered{…})});
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "herald/handler.h"

namespace herald {

// Encodes a typed event as EventData (type from E::kType, payload from to_json; `metadata` and
// `id` as given: an empty id lets the store assign one). Throws only what E's to_json throws
// (nlohmann::json errors), so call it outside handler dispatch or catch it. Pure: thread-safe.
template <class E>
EventData to_event(const E& event, EventMetadata metadata = {}, std::string id = {}) {
  EventData d;
  d.id = std::move(id);
  d.type = std::string(E::kType);
  d.payload = nlohmann::json(event).dump();
  d.metadata = std::move(metadata);
  return d;
}

// Decodes a recorded event's payload as E. Success: the value. Failure: invalid_argument when the
// type differs, the payload is not JSON or does not have E's shape (every decoding exception is
// caught; hostile payloads never throw out of it). Pure: thread-safe.
template <class E>
Result<E> from_event(const RecordedEvent& recorded) {
  if (recorded.type != E::kType) {
    return Status::invalid_argument("event " + recorded.id + " is " + recorded.type + ", not " +
                                    std::string(E::kType));
  }
  auto j = nlohmann::json::parse(recorded.payload, nullptr, false);
  if (j.is_discarded()) return Status::invalid_argument("event " + recorded.id + ": payload is not JSON");
  try {
    return j.get<E>();
  } catch (const std::exception& ex) {
    return Status::invalid_argument("event " + recorded.id + " (" + recorded.type +
                                    "): payload does not decode: " + ex.what());
  }
}

// One typed overload of BaseEventHandler: on() is called for each event of type E.kType with its
// decoded payload; same contract as EventHandler::handle (the return value decides retry or dead
// letter; `raw` and `ctx` are valid only during the call; concurrent calls with lanes > 1).
template <class E>
class TypedEventHandlerFor {
 public:
  virtual ~TypedEventHandlerFor() = default;
  virtual Status on(const E& event, const RecordedEvent& raw, HandlerContext& ctx) = 0;
};

// A handler for the event structs Events...: subscribes to their types, decodes each payload and
// calls the matching on(). A payload that does not decode, or an event of another type, is a
// permanent error (straight to the dead letters) and on() is not called. Thread-safety is the
// on() overloads'.
template <class... Events>
class BaseEventHandler : public EventHandler, public TypedEventHandlerFor<Events>... {
 public:
  using TypedEventHandlerFor<Events>::on...;

  // The kType of each of Events..., in order.
  std::vector<std::string> event_types() const override { return {std::string(Events::kType)...}; }

  // Decodes and dispatches to on() (see above); returns on()'s status.
  Status handle(const RecordedEvent& event, HandlerContext& ctx) final {
    Status result = Status::permanent("no typed handler for event type " + event.type);
    (void)((event.type == Events::kType ? (result = dispatch<Events>(event, ctx), true) : false) || ...);
    return result;
  }

 private:
  template <class E>
  Status dispatch(const RecordedEvent& event, HandlerContext& ctx) {
    auto decoded = from_event<E>(event);
    if (!decoded) return Status::permanent(decoded.status().message());
    return static_cast<TypedEventHandlerFor<E>&>(*this).on(*decoded, event, ctx);
  }
};

}  // namespace herald
