// shop/carts — one cart per user, stream "cart-<user_id>". The cart is created by the
// "carts.initialize_user_cart" handler when a user registers; checking out empties it and records
// the priced lines of the new order (CartCheckedOut), from which the orders module places it.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "herald/aggregate.h"
#include "herald/system.h"

namespace shop::carts {

// A priced line of a checked-out cart (and of the order made from it).
struct OrderLine {
  std::string product_id, sku, name;
  std::int64_t quantity = 0;
  std::int64_t price_cents = 0;
  bool operator==(const OrderLine&) const = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(OrderLine, product_id, sku, name, quantity, price_cents)

struct CartInitialized {
  static constexpr std::string_view kType = "CartInitialized";
  std::string user_id;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(CartInitialized, user_id)

struct CartItemAdded {
  static constexpr std::string_view kType = "CartItemAdded";
  std::string user_id, product_id;
  std::int64_t quantity = 0;  // added to what the cart held
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(CartItemAdded, user_id, product_id, quantity)

struct CartItemRemoved {
  static constexpr std::string_view kType = "CartItemRemoved";
  std::string user_id, product_id;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(CartItemRemoved, user_id, product_id)

struct CartCheckedOut {
  static constexpr std::string_view kType = "CartCheckedOut";
  std::string user_id, order_id, payment_token;
  std::vector<OrderLine> items;
  std::int64_t total_cents = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(CartCheckedOut, user_id, order_id, payment_token, items, total_cents)

inline constexpr std::int64_t kMaxLineQuantity = 1000;

class Cart final : public herald::AggregateRoot {
 public:
  // No-op when already initialized.
  herald::Status initialize(const std::string& user_id, std::string event_id);
  // not_found before initialization; invalid_argument when the line would exceed kMaxLineQuantity.
  herald::Status add_item(const std::string& product_id, std::int64_t quantity);
  // not_found when the product is not in the cart.
  herald::Status remove_item(const std::string& product_id);
  // failed_precondition for an empty cart. `lines` are the cart's items, priced by the caller.
  herald::Status check_out(const std::string& order_id, const std::string& payment_token,
                           std::vector<OrderLine> lines);

  bool initialized = false;
  std::map<std::string, std::int64_t> items;  // product id -> quantity
  nlohmann::json to_json() const;

 protected:
  herald::Status apply(const herald::RecordedEvent& e, const nlohmann::json& p) override;
};

herald::Repository<Cart> cart_repository(herald::EventStore& store);

// Read model of carts (collection "carts"), fed by "carts.view".
inline constexpr std::string_view kCartsCollection = "carts";
std::shared_ptr<herald::EventHandler> make_initialize_cart_handler();  // "carts.initialize_user_cart"
std::shared_ptr<herald::EventHandler> make_cart_view_handler();        // "carts.view"

std::unique_ptr<herald::Module> make_module();

}  // namespace shop::carts
