// shop/orders — orders and the order saga (process manager).
//
// Stream "order-<id>": OrderCreated, then OrderConfirmed or OrderCancelled. POST /api/orders
// checks the cart out (CartCheckedOut on the cart stream, concurrency-checked) and appends
// OrderCreated with an id derived from the order id; "orders.place_from_checkout" appends the very
// same event from CartCheckedOut, so a crash between the two appends still yields the order.
//
// "orders.saga" drives each order by events; its progress is the state of the order, reservation
// and payment streams, so a restart resumes where the events say:
//   OrderCreated               → request an inventory reservation
//   InventoryReserved          → request the payment
//   InventoryReservationFailed → cancel the order (reason "out_of_stock: …")
//   PaymentCaptured            → confirm the order, then commit the reserved stock
//   PaymentDeclined            → release the reserved stock, cancel the order ("payment_declined: …")
// Every step checks state first and appends with ids derived from (handler, causing event), so a
// redelivered event appends nothing new.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "carts/carts.h"
#include "common/paging.h"
#include "herald/aggregate.h"
#include "herald/system.h"

namespace shop::orders {

using carts::OrderLine;

struct OrderCreated {
  static constexpr std::string_view kType = "OrderCreated";
  std::string order_id, user_id;
  std::vector<OrderLine> items;
  std::int64_t total_cents = 0;
  std::string payment_token;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(OrderCreated, order_id, user_id, items, total_cents, payment_token)

struct OrderConfirmed {
  static constexpr std::string_view kType = "OrderConfirmed";
  std::string order_id, user_id;
  std::int64_t total_cents = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(OrderConfirmed, order_id, user_id, total_cents)

struct OrderCancelled {
  static constexpr std::string_view kType = "OrderCancelled";
  std::string order_id, user_id, reason;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(OrderCancelled, order_id, user_id, reason)

enum class OrderStatus { none, pending, confirmed, cancelled };
std::string_view to_string(OrderStatus s);

class Order final : public herald::AggregateRoot {
 public:
  herald::Status create(const OrderCreated& e, std::string event_id);
  // No-ops unless pending.
  herald::Status confirm(std::string event_id);
  herald::Status cancel(const std::string& why, std::string event_id);

  OrderStatus status = OrderStatus::none;
  std::string user_id, reason, payment_token;
  std::vector<OrderLine> items;
  std::int64_t total_cents = 0;
  nlohmann::json to_json() const;

 protected:
  herald::Status apply(const herald::RecordedEvent& e, const nlohmann::json& p) override;
};

herald::Repository<Order> order_repository(herald::EventStore& store);

// Checks out the user's cart into a new pending order. Success: the order id.
// invalid_argument for a malformed user id or payment token; not_found for an unknown user or a
// cart not initialized yet; failed_precondition for an empty cart; store errors.
herald::Result<std::string> place_order(herald::EventStore& store, const std::string& user_id,
                                        const std::string& payment_token, const herald::EventMetadata& metadata);

// The handlers, for tests that drive them without a bus.
std::shared_ptr<herald::EventHandler> make_saga();                       // "orders.saga"
std::shared_ptr<herald::EventHandler> make_place_from_checkout_handler(); // "orders.place_from_checkout"
std::shared_ptr<herald::EventHandler> make_orders_view_handler();         // "orders.view"
inline constexpr std::string_view kOrdersCollection = "orders";
// Per user: {"orders": [order ids in id order]}, written by "orders.view" with each order.
inline constexpr std::string_view kOrdersByUserCollection = "orders_by_user";

// One page of the orders view, in one transaction: {"orders": [...], "next": cursor or null}; only
// the orders of `user_id` when it is not empty, read through its kOrdersByUserCollection index
// (the cost is the page's, never a scan of every order).
herald::Result<nlohmann::json> list_orders(herald::EventStore& store, const PageRequest& page,
                                           const std::string& user_id = {});

std::unique_ptr<herald::Module> make_module();

}  // namespace shop::orders
