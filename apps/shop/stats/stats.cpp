#include "stats/stats.h"

#include "common/common.h"
#include "herald/typed_handler.h"
#include "orders/orders.h"
#include "users/users.h"

namespace shop::stats {

using herald::RecordedEvent;
using herald::Status;
namespace http = herald::http;

namespace {

const nlohmann::json& user_stats_zero() {
  static const nlohmann::json z = {{"total_users", 0}, {"last_registered_at", nullptr}};
  return z;
}
const nlohmann::json& order_stats_zero() {
  static const nlohmann::json z = {{"created", 0},   {"pending", 0},       {"confirmed", 0},
                                   {"cancelled", 0}, {"revenue_cents", 0}, {"cancel_reasons", nlohmann::json::object()}};
  return z;
}

std::int64_t num(const nlohmann::json& d, const char* key) { return d.value(key, std::int64_t{0}); }

class UpdateUserStats final : public herald::BaseEventHandler<users::UserRegistered> {
 public:
  std::string name() const override { return "stats.update_user_stats"; }
  Status on(const users::UserRegistered&, const RecordedEvent& raw, herald::HandlerContext& ctx) override {
    return ctx.exactly_once(raw, [&](herald::StoreTransaction& tx) {
      return update_document(tx, kStatsCollection, "users", user_stats_zero(), [&](nlohmann::json& d) {
        d["total_users"] = num(d, "total_users") + 1;
        d["last_registered_at"] = herald::format_rfc3339(raw.recorded_at);
      });
    });
  }
};

class UpdateOrderStats final
    : public herald::BaseEventHandler<orders::OrderCreated, orders::OrderConfirmed, orders::OrderCancelled> {
 public:
  std::string name() const override { return "stats.update_order_stats"; }
  Status on(const orders::OrderCreated&, const RecordedEvent& raw, herald::HandlerContext& ctx) override {
    return change(raw, ctx, [](nlohmann::json& d) {
      d["created"] = num(d, "created") + 1;
      d["pending"] = num(d, "pending") + 1;
    });
  }
  Status on(const orders::OrderConfirmed& e, const RecordedEvent& raw, herald::HandlerContext& ctx) override {
    return change(raw, ctx, [&](nlohmann::json& d) {
      d["pending"] = num(d, "pending") - 1;
      d["confirmed"] = num(d, "confirmed") + 1;
      d["revenue_cents"] = num(d, "revenue_cents") + e.total_cents;
    });
  }
  Status on(const orders::OrderCancelled& e, const RecordedEvent& raw, herald::HandlerContext& ctx) override {
    return change(raw, ctx, [&](nlohmann::json& d) {
      d["pending"] = num(d, "pending") - 1;
      d["cancelled"] = num(d, "cancelled") + 1;
      // "out_of_stock: product … " → "out_of_stock": the reason's code, not its details.
      const std::string code = e.reason.substr(0, e.reason.find(':'));
      auto& reasons = d["cancel_reasons"];
      if (!reasons.is_object()) reasons = nlohmann::json::object();
      reasons[code] = reasons.value(code, std::int64_t{0}) + 1;
    });
  }

 private:
  Status change(const RecordedEvent& raw, herald::HandlerContext& ctx, const std::function<void(nlohmann::json&)>& fn) {
    return ctx.exactly_once(raw, [&](herald::StoreTransaction& tx) {
      return update_document(tx, kStatsCollection, "orders", order_stats_zero(), fn);
    });
  }
};

http::Response stats_doc(herald::EventStore& store, std::string_view key, const nlohmann::json& zero) {
  auto doc = read_document(store, kStatsCollection, key);
  if (doc) return http::Response::ok(*doc);
  if (doc.status().code() == herald::StatusCode::not_found) return http::Response::ok(zero);
  return error_response(doc.status());
}

class StatsModule final : public herald::Module {
 public:
  std::string name() const override { return "stats"; }
  Status register_handlers(herald::HandlerRegistrar& r, herald::ModuleContext&) override {
    // Four, not eight: every lane updates the one counters document (PostgreSQL retries the
    // conflicting transactions; SQLite serialises them on its writer).
    HERALD_RETURN_IF_ERROR(r.add(make_user_stats_handler(), parallel_lanes(r.defaults(), 4)));
    return r.add(make_order_stats_handler());
  }
  Status register_routes(http::Router& router, herald::ModuleContext& ctx) override {
    herald::EventStore* store = &ctx.store();
    HERALD_RETURN_IF_ERROR(router.get("/api/stats/users", [store](const http::Request&) {
      return stats_doc(*store, "users", user_stats_zero());
    }));
    return router.get("/api/stats/orders",
                      [store](const http::Request&) { return stats_doc(*store, "orders", order_stats_zero()); });
  }
};

}  // namespace

std::shared_ptr<herald::EventHandler> make_user_stats_handler() { return std::make_shared<UpdateUserStats>(); }
std::shared_ptr<herald::EventHandler> make_order_stats_handler() { return std::make_shared<UpdateOrderStats>(); }
std::unique_ptr<herald::Module> make_module() { return std::make_unique<StatsModule>(); }

}  // namespace shop::stats
