// combine_stores: an EventStore whose log and process state are two objects, possibly of two
// backends: EventStoreWrapper over the pair, so each call goes to the half that owns it and each
// half's contract (errors, durability, thread-safety) is the combined store's.
#include <utility>

#include "herald/event_store.h"
#include "herald/event_store_wrapper.h"

namespace herald {

std::unique_ptr<EventStore> combine_stores(std::shared_ptr<EventLog> log, std::shared_ptr<ProcessState> state) {
  return std::make_unique<EventStoreWrapper>(std::move(log), std::move(state));
}

}  // namespace herald
