// The shop's modules driven without a bus: every handler is run over the store's log in position
// order (as the bus would, one call per event), until no new event appears. Shared by the
// shop_unit_test sources; a named namespace, so every source sees the one fixture type gtest
// expects per test suite.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "bus/dispatch_context.h"
#include "carts/carts.h"
#include "catalog/catalog.h"
#include "common/common.h"
#include "herald/event_store.h"
#include "inventory/inventory.h"
#include "notifications/notifications.h"
#include "orders/orders.h"
#include "payments/payments.h"
#include "stats/stats.h"
#include "users/users.h"

namespace shop_test {

using herald::Status;

// Renders each e-mail as the real mailers do (so a message they would refuse fails here too) and
// counts it.
class CountingMailer final : public shop::notifications::Mailer {
 public:
  Status send(const shop::notifications::Email& email) override {
    auto text = shop::notifications::render_rfc5322(email);
    if (!text) return text.status();
    std::lock_guard lock(mu_);
    ++sent_[email.message_id];
    to_.push_back(email.to);
    emails_.push_back(email);
    return {};
  }
  std::vector<shop::notifications::Email> emails() const {
    std::lock_guard lock(mu_);
    return emails_;
  }
  std::map<std::string, int> sent() const {
    std::lock_guard lock(mu_);
    return sent_;
  }
  std::vector<std::string> recipients() const {
    std::lock_guard lock(mu_);
    return to_;
  }

 private:
  mutable std::mutex mu_;
  std::map<std::string, int> sent_;  // guarded by mu_
  std::vector<std::string> to_;      // guarded by mu_
  std::vector<shop::notifications::Email> emails_;  // guarded by mu_
};

class ShopHarness : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = herald::open_store("memory:");
    ASSERT_TRUE(s.is_ok());
    store = std::move(*s);
    mailer = std::make_shared<CountingMailer>();
    handlers = {shop::users::make_complete_registration_handler(),
                shop::carts::make_initialize_cart_handler(),
                shop::carts::make_cart_view_handler(),
                shop::catalog::make_products_view_handler(),
                shop::inventory::make_reservations_handler(),
                shop::inventory::make_stock_view_handler(),
                shop::orders::make_place_from_checkout_handler(),
                shop::orders::make_saga(),
                shop::orders::make_orders_view_handler(),
                shop::payments::make_processor(std::make_shared<shop::payments::SimulatedGateway>()),
                shop::notifications::make_welcome_handler(mailer),
                shop::notifications::make_order_confirmation_handler(mailer),
                shop::stats::make_user_stats_handler(),
                shop::stats::make_order_stats_handler()};
  }

  // Runs every handler over the log from `from` until quiescent; returns the failures by handler.
  std::map<std::string, Status> pump(std::int64_t from = -1) {
    std::map<std::string, Status> failures;
    std::int64_t next = from >= 0 ? from : next_;
    for (;;) {
      auto slice = store->read_all(next, 1000);
      EXPECT_TRUE(slice.is_ok());
      if (!slice || slice->events.empty()) break;
      for (const auto& e : slice->events) {
        for (auto& h : handlers) {
          if (!h->handles(e.type)) continue;
          herald::bus::DispatchContext dispatch(*store, h->name());
          Status s = h->handle(e, dispatch.context());
          if (!s) failures[h->name()] = s;
        }
      }
      next = slice->next_position;
    }
    next_ = std::max(next_, next);
    return failures;
  }

  std::string new_user(const std::string& email) {
    auto id = shop::users::register_user(*store, email, "Test User", {});
    EXPECT_TRUE(id.is_ok()) << id.status().to_string();
    EXPECT_TRUE(pump().empty());
    return *id;
  }
  std::string new_product(const std::string& sku, std::int64_t price, std::int64_t stock) {
    auto id = shop::catalog::create_product(*store, {sku, "Product " + sku, price, stock}, {});
    EXPECT_TRUE(id.is_ok()) << id.status().to_string();
    return *id;
  }
  void add_to_cart(const std::string& user, const std::string& product, std::int64_t q) {
    auto r = shop::carts::cart_repository(*store).execute(
        user, [&](shop::carts::Cart& c) { return c.add_item(product, q); });
    ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  }
  shop::orders::Order order(const std::string& id) {
    auto o = shop::orders::order_repository(*store).get(id);
    EXPECT_TRUE(o.is_ok());
    return *o;
  }
  shop::inventory::Stock stock(const std::string& product) {
    return *shop::inventory::stock_repository(*store).load(product);
  }
  nlohmann::json doc(std::string_view coll, std::string_view key) {
    auto d = shop::read_document(*store, coll, key);
    EXPECT_TRUE(d.is_ok()) << coll << "/" << key << ": " << d.status().to_string();
    return d ? *d : nlohmann::json{};
  }

  std::unique_ptr<herald::EventStore> store;
  std::shared_ptr<CountingMailer> mailer;
  std::vector<std::shared_ptr<herald::EventHandler>> handlers;
  std::int64_t next_ = 0;
};

}  // namespace shop_test
