#include "carts/carts.h"

#include "catalog/catalog.h"
#include "common/common.h"
#include "herald/typed_handler.h"
#include "users/users.h"

namespace shop::carts {

using herald::RecordedEvent;
using herald::Status;
namespace http = herald::http;

Status Cart::initialize(const std::string& user_id, std::string event_id) {
  if (initialized) return {};
  return record(CartInitialized{user_id}, std::move(event_id));
}

Status Cart::add_item(const std::string& product_id, std::int64_t quantity) {
  if (!initialized) return Status::not_found("cart of user " + id() + " not found");
  if (quantity < 1 || quantity > kMaxLineQuantity) {
    return Status::invalid_argument("field 'quantity' must be an integer in [1, 1000]");
  }
  auto it = items.find(product_id);
  if (it != items.end() && it->second + quantity > kMaxLineQuantity) {
    return Status::invalid_argument("a cart line may hold at most 1000 units");
  }
  return record(CartItemAdded{id(), product_id, quantity});
}

Status Cart::remove_item(const std::string& product_id) {
  if (!initialized) return Status::not_found("cart of user " + id() + " not found");
  if (items.count(product_id) == 0) return Status::not_found("product " + product_id + " is not in the cart");
  return record(CartItemRemoved{id(), product_id});
}

Status Cart::check_out(const std::string& order_id, const std::string& payment_token, std::vector<OrderLine> lines) {
  if (!initialized) return Status::not_found("cart of user " + id() + " not found");
  if (items.empty()) return Status::failed_precondition("the cart is empty");
  std::int64_t total = 0;
  for (const auto& l : lines) total += l.quantity * l.price_cents;
  return record(CartCheckedOut{id(), order_id, payment_token, std::move(lines), total});
}

Status Cart::apply(const RecordedEvent& e, const nlohmann::json& p) {
  if (e.type == CartInitialized::kType) {
    initialized = true;
  } else if (e.type == CartItemAdded::kType) {
    items[p.at("product_id").get<std::string>()] += p.at("quantity").get<std::int64_t>();
  } else if (e.type == CartItemRemoved::kType) {
    items.erase(p.at("product_id").get<std::string>());
  } else if (e.type == CartCheckedOut::kType) {
    items.clear();
  } else {
    return Status::corruption("cart stream holds unknown event " + e.type);
  }
  return {};
}

nlohmann::json Cart::to_json() const {
  nlohmann::json lines = nlohmann::json::array();
  for (const auto& [pid, q] : items) lines.push_back({{"product_id", pid}, {"quantity", q}});
  return {{"user_id", id()}, {"items", std::move(lines)}};
}

herald::Repository<Cart> cart_repository(herald::EventStore& store) {
  return herald::Repository<Cart>(store, herald::RepositoryOptions("cart"));
}

namespace {

class InitializeUserCart final : public herald::BaseEventHandler<users::UserRegistered> {
 public:
  std::string name() const override { return "carts.initialize_user_cart"; }
  Status on(const users::UserRegistered& e, const RecordedEvent& raw, herald::HandlerContext& ctx) override {
    return cart_repository(ctx.store())
        .execute(e.user_id, [&](Cart& c) { return c.initialize(e.user_id, follow_up_id(name(), raw)); },
                 caused_by(raw, name()))
        .status();
  }
};

class CartView final
    : public herald::BaseEventHandler<CartInitialized, CartItemAdded, CartItemRemoved, CartCheckedOut> {
 public:
  std::string name() const override { return "carts.view"; }
  Status on(const CartInitialized& e, const RecordedEvent& raw, herald::HandlerContext& ctx) override {
    return change(raw, ctx, e.user_id, [](nlohmann::json&) {});
  }
  Status on(const CartItemAdded& e, const RecordedEvent& raw, herald::HandlerContext& ctx) override {
    return change(raw, ctx, e.user_id, [&](nlohmann::json& items) {
      items[e.product_id] = items.value(e.product_id, std::int64_t{0}) + e.quantity;
    });
  }
  Status on(const CartItemRemoved& e, const RecordedEvent& raw, herald::HandlerContext& ctx) override {
    return change(raw, ctx, e.user_id, [&](nlohmann::json& items) { items.erase(e.product_id); });
  }
  Status on(const CartCheckedOut& e, const RecordedEvent& raw, herald::HandlerContext& ctx) override {
    return change(raw, ctx, e.user_id, [](nlohmann::json& items) { items = nlohmann::json::object(); });
  }

 private:
  // The document keeps items as {product_id: quantity}; routes turn it into a list.
  Status change(const RecordedEvent& raw, herald::HandlerContext& ctx, const std::string& user_id,
                const std::function<void(nlohmann::json&)>& fn) {
    return ctx.exactly_once(raw, [&](herald::StoreTransaction& tx) {
      const nlohmann::json initial = {{"user_id", user_id}, {"items", nlohmann::json::object()}};
      return update_document(tx, kCartsCollection, user_id, initial, [&](nlohmann::json& d) {
        fn(d["items"]);
        d["version"] = raw.version;
      });
    });
  }
};

nlohmann::json view_json(const nlohmann::json& doc) {
  nlohmann::json lines = nlohmann::json::array();
  for (const auto& [pid, q] : doc.at("items").items()) lines.push_back({{"product_id", pid}, {"quantity", q}});
  return {{"user_id", doc.value("user_id", "")}, {"items", std::move(lines)}};
}

class CartsModule final : public herald::Module {
 public:
  std::string name() const override { return "carts"; }

  Status register_handlers(herald::HandlerRegistrar& r, herald::ModuleContext&) override {
    HERALD_RETURN_IF_ERROR(r.add(make_initialize_cart_handler(), parallel_lanes(r.defaults(), 8)));
    return r.add(make_cart_view_handler(), parallel_lanes(r.defaults(), 8));  // per-user carts: order per stream suffices
  }

  Status register_routes(http::Router& router, herald::ModuleContext& ctx) override {
    herald::EventStore* store = &ctx.store();
    // Access::user: only the signed-in user's own cart; another user's answers 404 like a missing one.
    HERALD_RETURN_IF_ERROR(router.get("/api/carts/{user_id}", [store](const http::Request& req) {
      const std::string& user_id = req.param("user_id");
      if (Status s = check_id("user id", user_id); !s) return error_response(s);
      if (Status s = check_own("cart of user", user_id, req); !s) return error_response(s);
      auto doc = read_document(*store, kCartsCollection, user_id);
      if (!doc) {
        if (doc.status().code() == herald::StatusCode::not_found) {
          return error_response(Status::not_found("cart of user " + user_id + " not found"));
        }
        return error_response(doc.status());
      }
      return http::Response::ok(view_json(*doc));
    }, http::Access::user));
    HERALD_RETURN_IF_ERROR(router.post("/api/carts/{user_id}/items", [store](const http::Request& req) {
      const std::string& user_id = req.param("user_id");
      if (Status s = check_id("user id", user_id); !s) return error_response(s);
      if (Status s = check_own("cart of user", user_id, req); !s) return error_response(s);
      auto body = req.json_object();
      if (!body) return error_response(body.status());
      auto product_id = http::get_string(*body, "product_id");
      if (!product_id) return error_response(product_id.status());
      auto quantity = http::get_int(*body, "quantity", 1, kMaxLineQuantity);
      if (!quantity) return error_response(quantity.status());
      if (Status s = check_id("product id", *product_id); !s) return error_response(s);
      auto product = catalog::product_repository(*store).get(*product_id);
      if (!product) return error_response(product.status());
      auto cart = cart_repository(*store).execute(
          user_id, [&](Cart& c) { return c.add_item(*product_id, *quantity); }, request_metadata(req));
      if (!cart) return error_response(cart.status());
      return http::Response::ok(cart->to_json());
    }, http::Access::user));
    return router.del("/api/carts/{user_id}/items/{product_id}", [store](const http::Request& req) {
      const std::string& user_id = req.param("user_id");
      const std::string& product_id = req.param("product_id");
      if (Status s = check_id("user id", user_id); !s) return error_response(s);
      if (Status s = check_own("cart of user", user_id, req); !s) return error_response(s);
      if (Status s = check_id("product id", product_id); !s) return error_response(s);
      auto cart = cart_repository(*store).execute(
          user_id, [&](Cart& c) { return c.remove_item(product_id); }, request_metadata(req));
      if (!cart) return error_response(cart.status());
      return http::Response::ok(cart->to_json());
    }, http::Access::user);
  }
};

}  // namespace

std::shared_ptr<herald::EventHandler> make_initialize_cart_handler() { return std::make_shared<InitializeUserCart>(); }
std::shared_ptr<herald::EventHandler> make_cart_view_handler() { return std::make_shared<CartView>(); }
std::unique_ptr<herald::Module> make_module() { return std::make_unique<CartsModule>(); }

}  // namespace shop::carts
