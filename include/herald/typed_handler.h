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

// Encodes a typed event as EventData (type from E::kType, payload from to_json).
template <class E>
EventData to_event(const E& event, EventMetadata metadata = {}, std::string id = {}) {
  EventData d;
  d.id = std::move(id);
  d.type = std::string(E::kType);
  d.payload = nlohmann::json(event).dump();
  d.metadata = std::move(metadata);
  return d;
}

// Decodes a recorded event's payload as E. invalid_argument when the type differs or the payload
// does not have E's shape.
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

// One typed overload of BaseEventHandler.
template <class E>
class TypedEventHandlerFor {
 public:
  virtual ~TypedEventHandlerFor() = default;
  virtual Status on(const E& event, const RecordedEvent& raw, HandlerContext& ctx) = 0;
};

// A handler for the event structs Events...: subscribes to their types, decodes each payload and
// calls the matching on(). A payload that does not decode is a permanent error.
template <class... Events>
class BaseEventHandler : public EventHandler, public TypedEventHandlerFor<Events>... {
 public:
  using TypedEventHandlerFor<Events>::on...;

  std::vector<std::string> event_types() const override { return {std::string(Events::kType)...}; }

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
