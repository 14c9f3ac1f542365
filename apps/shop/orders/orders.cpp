#include "orders/orders.h"

#include <algorithm>

#include "catalog/catalog.h"
#include "common/common.h"
#include "common/paging.h"
#include "herald/id.h"
#include "herald/typed_handler.h"
#include "inventory/inventory.h"
#include "payments/payments.h"
#include "users/users.h"

namespace shop::orders {

using herald::RecordedEvent;
using herald::Status;
namespace http = herald::http;

std::string_view to_string(OrderStatus s) {
  switch (s) {
    case OrderStatus::none: return "none";
    case OrderStatus::pending: return "pending";
    case OrderStatus::confirmed: return "confirmed";
    case OrderStatus::cancelled: return "cancelled";
  }
  return "none";
}

Status Order::create(const OrderCreated& e, std::string event_id) {
  if (!is_new()) return Status::already_exists("order " + e.order_id + " exists");
  return record(e, std::move(event_id));
}

Status Order::confirm(std::string event_id) {
  if (status != OrderStatus::pending) return {};
  return record(OrderConfirmed{id(), user_id, total_cents}, std::move(event_id));
}

Status Order::cancel(const std::string& why, std::string event_id) {
  if (status != OrderStatus::pending) return {};
  return record(OrderCancelled{id(), user_id, why}, std::move(event_id));
}

Status Order::apply(const RecordedEvent& e, const nlohmann::json& p) {
  if (e.type == OrderCreated::kType) {
    status = OrderStatus::pending;
    user_id = p.at("user_id").get<std::string>();
    items = p.at("items").get<std::vector<OrderLine>>();
    total_cents = p.at("total_cents").get<std::int64_t>();
    payment_token = p.at("payment_token").get<std::string>();
  } else if (e.type == OrderConfirmed::kType) {
    status = OrderStatus::confirmed;
  } else if (e.type == OrderCancelled::kType) {
    status = OrderStatus::cancelled;
    reason = p.at("reason").get<std::string>();
  } else {
    return Status::corruption("order stream holds unknown event " + e.type);
  }
  return {};
}

nlohmann::json Order::to_json() const {
  return {{"id", id()},          {"user_id", user_id},     {"status", to_string(status)},
          {"reason", reason},    {"items", items},         {"total_cents", total_cents}};
}

herald::Repository<Order> order_repository(herald::EventStore& store) {
  return herald::Repository<Order>(store, herald::RepositoryOptions("order"));
}

namespace {

// The OrderCreated that a checkout implies, and its id: both deterministic, so the HTTP path and
// "orders.place_from_checkout" append the identical event and the second is an idempotent retry.
OrderCreated order_from(const carts::CartCheckedOut& c) {
  return OrderCreated{c.order_id, c.user_id, c.items, c.total_cents, c.payment_token};
}
std::string order_created_id(const std::string& order_id) { return herald::derived_uuid("orders.checkout", order_id); }

Status append_order(herald::EventStore& store, const carts::CartCheckedOut& c, const herald::EventMetadata& meta) {
  auto r = order_repository(store).execute(
      c.order_id,
      [&](Order& o) {
        if (!o.is_new()) return Status{};  // placed before (by the other path)
        return o.create(order_from(c), order_created_id(c.order_id));
      },
      meta);
  return r.status();
}

}  // namespace

namespace {

// One page of `user_id`'s orders through their index document: the order ids after the cursor,
// then each order's document. Costs the page, not the whole orders view.
Status user_orders_page(herald::StoreTransaction& tx, const PageRequest& request, const std::string& user_id,
                        nlohmann::json& out) {
  std::vector<std::string> ids;
  auto index = tx.get_document(kOrdersByUserCollection, user_id);
  if (index) {
    auto doc = nlohmann::json::parse(*index, nullptr, false);
    if (doc.is_discarded() || !doc.contains("orders") || !doc["orders"].is_array()) {
      return Status::corruption("orders index of user " + user_id + " is malformed");
    }
    ids = doc["orders"].get<std::vector<std::string>>();
  } else if (index.status().code() != herald::StatusCode::not_found) {
    return index.status();
  }
  auto it = request.after.empty() ? ids.begin() : std::upper_bound(ids.begin(), ids.end(), request.after);
  nlohmann::json orders = nlohmann::json::array();
  std::string last;
  for (; it != ids.end() && orders.size() < request.limit; ++it) {
    auto text = tx.get_document(kOrdersCollection, *it);
    if (!text) return text.status();
    auto order = nlohmann::json::parse(*text, nullptr, false);
    if (order.is_discarded()) return Status::corruption("order " + *it + " is not JSON");
    orders.push_back(std::move(order));
    last = *it;
  }
  const bool more = it != ids.end();
  out = {{"orders", std::move(orders)}, {"next", more ? nlohmann::json(last) : nlohmann::json()}};
  return {};
}

}  // namespace

herald::Result<nlohmann::json> list_orders(herald::EventStore& store, const PageRequest& request,
                                           const std::string& user_id) {
  nlohmann::json out;
  Status s = store.transact([&](herald::StoreTransaction& tx) -> Status {
    if (!user_id.empty()) return user_orders_page(tx, request, user_id, out);
    auto page = read_page(tx, kOrdersCollection, request);
    if (!page) return page.status();
    nlohmann::json orders = nlohmann::json::array();
    for (auto& item : page->items) orders.push_back(std::move(item.doc));
    out = {{"orders", std::move(orders)}, {"next", page->next ? nlohmann::json(*page->next) : nlohmann::json()}};
    return {};
  });
  if (!s) return s;
  return out;
}

herald::Result<std::string> place_order(herald::EventStore& store, const std::string& user_id,
                                        const std::string& payment_token, const herald::EventMetadata& metadata) {
  HERALD_RETURN_IF_ERROR(check_id("user id", user_id));
  if (payment_token.empty() || payment_token.size() > 200) {
    return Status::invalid_argument("field 'payment_token' must be 1 to 200 characters");
  }
  auto user = users::user_repository(store).get(user_id);
  if (!user) return user.status();
  const std::string order_id = herald::new_uuid_v7();
  std::optional<carts::CartCheckedOut> checked_out;
  auto cart = carts::cart_repository(store).execute(
      user_id,
      [&](carts::Cart& c) -> Status {
        if (!c.initialized) return Status::not_found("cart of user " + user_id + " not found");
        std::vector<OrderLine> lines;
        for (const auto& [product_id, quantity] : c.items) {
          auto product = catalog::product_repository(store).get(product_id);
          if (!product) return product.status();
          lines.push_back(OrderLine{product_id, product->sku, product->name, quantity, product->price_cents});
        }
        HERALD_RETURN_IF_ERROR(c.check_out(order_id, payment_token, lines));
        auto decoded = nlohmann::json::parse(c.pending_events().back().payload).get<carts::CartCheckedOut>();
        checked_out = std::move(decoded);
        return {};
      },
      metadata);
  if (!cart) return cart.status();
  HERALD_RETURN_IF_ERROR(append_order(store, *checked_out, metadata));
  return order_id;
}

namespace {

class PlaceFromCheckout final : public herald::BaseEventHandler<carts::CartCheckedOut> {
 public:
  std::string name() const override { return "orders.place_from_checkout"; }
  Status on(const carts::CartCheckedOut& e, const RecordedEvent& raw, herald::HandlerContext& ctx) override {
    return append_order(ctx.store(), e, caused_by(raw, name()));
  }
};

class Saga final
    : public herald::BaseEventHandler<OrderCreated, inventory::InventoryReserved, inventory::InventoryReservationFailed,
                                      payments::PaymentCaptured, payments::PaymentDeclined> {
 public:
  std::string name() const override { return "orders.saga"; }

  Status on(const OrderCreated& e, const RecordedEvent& raw, herald::HandlerContext& ctx) override {
    auto order = order_repository(ctx.store()).get(e.order_id);
    if (!order) return order.status();
    if (order->status != OrderStatus::pending) return {};
    std::vector<inventory::StockLine> lines;
    for (const auto& l : e.items) lines.push_back({l.product_id, l.quantity});
    return inventory::request_reservation(ctx.store(), e.order_id, lines, caused_by(raw, name()),
                                          follow_up_id(name(), raw, "reserve"));
  }

  Status on(const inventory::InventoryReserved& e, const RecordedEvent& raw, herald::HandlerContext& ctx) override {
    auto order = order_repository(ctx.store()).get(e.order_id);
    if (!order) return order.status();
    if (order->status != OrderStatus::pending) return {};
    return payments::request_payment(ctx.store(), e.order_id, order->total_cents, order->payment_token,
                                     caused_by(raw, name()), follow_up_id(name(), raw, "pay"));
  }

  Status on(const inventory::InventoryReservationFailed& e, const RecordedEvent& raw,
            herald::HandlerContext& ctx) override {
    return order_repository(ctx.store())
        .execute(e.order_id, [&](Order& o) { return o.cancel(e.reason, follow_up_id(name(), raw, "cancel")); },
                 caused_by(raw, name()))
        .status();
  }

  Status on(const payments::PaymentCaptured& e, const RecordedEvent& raw, herald::HandlerContext& ctx) override {
    auto confirmed = order_repository(ctx.store())
                         .execute(e.order_id,
                                  [&](Order& o) { return o.confirm(follow_up_id(name(), raw, "confirm")); },
                                  caused_by(raw, name()));
    if (!confirmed) return confirmed.status();
    return inventory::request_commit(ctx.store(), e.order_id, caused_by(raw, name()),
                                     follow_up_id(name(), raw, "commit"));
  }

  Status on(const payments::PaymentDeclined& e, const RecordedEvent& raw, herald::HandlerContext& ctx) override {
    // Compensate first: the stock is given back even if cancelling has to be retried.
    HERALD_RETURN_IF_ERROR(inventory::request_release(ctx.store(), e.order_id, "payment_declined",
                                                      caused_by(raw, name()), follow_up_id(name(), raw, "release")));
    return order_repository(ctx.store())
        .execute(e.order_id,
                 [&](Order& o) { return o.cancel("payment_declined: " + e.reason, follow_up_id(name(), raw, "cancel")); },
                 caused_by(raw, name()))
        .status();
  }
};

class OrdersView final : public herald::BaseEventHandler<OrderCreated, OrderConfirmed, OrderCancelled> {
 public:
  std::string name() const override { return "orders.view"; }
  Status on(const OrderCreated& e, const RecordedEvent& raw, herald::HandlerContext& ctx) override {
    return ctx.exactly_once(raw, [&](herald::StoreTransaction& tx) {
      nlohmann::json doc = {{"id", e.order_id},     {"user_id", e.user_id}, {"status", "pending"},
                            {"reason", ""},         {"items", e.items},     {"total_cents", e.total_cents},
                            {"created_at", herald::format_rfc3339(raw.recorded_at)}};
      HERALD_RETURN_IF_ERROR(tx.put_document(kOrdersCollection, e.order_id, doc.dump()));
      // The user's index, kept in id order (UUIDv7: creation order) so pages can start after a cursor.
      return update_document(tx, kOrdersByUserCollection, e.user_id, {{"orders", nlohmann::json::array()}},
                             [&](nlohmann::json& index) {
                               auto& ids = index["orders"];
                               if (!ids.is_array()) ids = nlohmann::json::array();
                               auto pos = std::lower_bound(ids.begin(), ids.end(), nlohmann::json(e.order_id));
                               if (pos == ids.end() || *pos != e.order_id) ids.insert(pos, e.order_id);
                             });
    });
  }
  Status on(const OrderConfirmed& e, const RecordedEvent& raw, herald::HandlerContext& ctx) override {
    return set_status(raw, ctx, e.order_id, "confirmed", "");
  }
  Status on(const OrderCancelled& e, const RecordedEvent& raw, herald::HandlerContext& ctx) override {
    return set_status(raw, ctx, e.order_id, "cancelled", e.reason);
  }

 private:
  Status set_status(const RecordedEvent& raw, herald::HandlerContext& ctx, const std::string& order_id,
                    const std::string& status, const std::string& reason) {
    return ctx.exactly_once(raw, [&](herald::StoreTransaction& tx) {
      return update_document(tx, kOrdersCollection, order_id, {{"id", order_id}}, [&](nlohmann::json& d) {
        d["status"] = status;
        d["reason"] = reason;
      });
    });
  }
};

class OrdersModule final : public herald::Module {
 public:
  std::string name() const override { return "orders"; }

  Status register_handlers(herald::HandlerRegistrar& r, herald::ModuleContext&) override {
    HERALD_RETURN_IF_ERROR(r.add(make_place_from_checkout_handler()));
    HERALD_RETURN_IF_ERROR(r.add(make_saga()));
    return r.add(make_orders_view_handler());
  }

  Status register_routes(http::Router& router, herald::ModuleContext& ctx) override {
    herald::EventStore* store = &ctx.store();
    // Access::user, all three: the signed-in user's orders only. Another user's order, or a user
    // id that is not the caller's, answers 404 exactly as one that does not exist.
    HERALD_RETURN_IF_ERROR(router.post("/api/orders", [store](const http::Request& req) {
      auto body = req.json_object();
      if (!body) return error_response(body.status());
      auto user_id = http::get_optional_string(*body, "user_id");
      if (!user_id) return error_response(user_id.status());
      if (*user_id) {
        if (Status s = check_id("user id", **user_id); !s) return error_response(s);
        if (Status s = check_own("user", **user_id, req); !s) return error_response(s);
      }
      auto token = http::get_string(*body, "payment_token");
      if (!token) return error_response(token.status());
      auto id = place_order(*store, req.principal, *token, request_metadata(req));
      if (!id) return error_response(id.status());
      return http::Response::accepted({{"id", *id}, {"status", "pending"}});
    }, http::Access::user));
    // From the read model through the user's index: the caller's orders, oldest first (order ids
    // are UUIDv7, so id order is creation order), a page at a time.
    HERALD_RETURN_IF_ERROR(router.get("/api/orders", [store](const http::Request& req) {
      if (auto user_id = req.query_param("user_id")) {
        if (Status s = check_id("user id", *user_id); !s) return error_response(s);
        if (Status s = check_own("user", *user_id, req); !s) return error_response(s);
      }
      auto page = parse_page_request(req);
      if (!page) return error_response(page.status());
      auto orders = list_orders(*store, *page, req.principal);
      if (!orders) return error_response(orders.status());
      return http::Response::ok(*orders);
    }, http::Access::user));
    // One order, from its stream: always current.
    return router.get("/api/orders/{id}", [store](const http::Request& req) {
      const std::string& id = req.param("id");
      if (Status s = check_id("order id", id); !s) return error_response(s);
      auto order = order_repository(*store).get(id);
      if (!order) {
        if (order.status().code() != herald::StatusCode::not_found) return error_response(order.status());
        return error_response(Status::not_found("order " + id + " not found"));
      }
      if (Status s = check_own("order", order->user_id, req, id); !s) return error_response(s);
      return http::Response::ok(order->to_json());
    }, http::Access::user);
  }
};

}  // namespace

std::shared_ptr<herald::EventHandler> make_saga() { return std::make_shared<Saga>(); }
std::shared_ptr<herald::EventHandler> make_place_from_checkout_handler() {
  return std::make_shared<PlaceFromCheckout>();
}
std::shared_ptr<herald::EventHandler> make_orders_view_handler() { return std::make_shared<OrdersView>(); }
std::unique_ptr<herald::Module> make_module() { return std::make_unique<OrdersModule>(); }

}  // namespace shop::orders
