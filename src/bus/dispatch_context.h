// Internal: how a dispatcher makes the HandlerContext a handler's handle() gets. The bus's lanes
// use it (one per lane, readied for each call: no allocation per event), and so may any other
// dispatcher of durable handlers in this tree (a remote consumer, a test harness that runs
// handlers synchronously). Applications never see it: include/herald/handler.h only lets
// DispatchContext build a HandlerContext.
//
//   herald::bus::DispatchContext dispatch(store, handler.name());
//   dispatch.begin_call(attempt);
//   herald::Status st = herald::bus::call_handler(handler, event, dispatch.context());
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "herald/handler.h"

namespace herald::bus {

// Owns one HandlerContext. Not thread-safe: one dispatching thread uses it at a time (the bus
// holds its lane's call mutex), like the context itself.
class DispatchContext {
 public:
  // `store` is where the handler's effects go; `stopping` (may be null: never stopping) is the
  // flag HandlerContext::stopping() reads. Both must outlive this object.
  DispatchContext(EventStore& store, std::string handler_name, const std::atomic_bool* stopping = nullptr)
      : context_(store, std::move(handler_name), stopping) {}
  DispatchContext(const DispatchContext&) = delete;
  DispatchContext& operator=(const DispatchContext&) = delete;

  // Readies the context for one call: attempt() reports `attempt` (1 on the first try). When
  // `checkpoint` is not null, HandlerContext::exactly_once also saves `*checkpoint` = `position`
  // with the effects: pass it only when every earlier event of that checkpoint is settled, so
  // the checkpoint never passes an unhandled event. `*checkpoint` must outlive the call.
  void begin_call(int attempt, const std::string* checkpoint = nullptr, std::int64_t position = 0) {
    context_.attempt_ = attempt;
    context_.checkpoint_name_ = checkpoint;
    context_.checkpoint_position_ = position;
  }

  // Fences the calls from now on: exactly_once and HandlerContext::check_lease check that lease
  // `*lease` still has fencing token `token` (`*lease` must outlive the calls); a null `lease`
  // fences nothing (the default).
  void set_fence(const std::string* lease, std::int64_t token) {
    context_.fence_lease_ = lease;
    context_.fence_token_ = token;
  }

  HandlerContext& context() { return context_; }

 private:
  HandlerContext context_;
};

// Calls handler.handle(event, ctx) and returns its status; an exception thrown by the handler
// becomes internal ("handler threw: …"), so no handler exception escapes into the dispatching
// thread. Thread safety is the handler's (see EventHandler).
Status call_handler(EventHandler& handler, const RecordedEvent& event, HandlerContext& ctx);

}  // namespace herald::bus
