// Shop aggregates and the order saga, driven without a bus: every handler is run over the store's
// log in position order (as the bus would, one call per event), until no new event appears.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <thread>

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

namespace {

using herald::Status;
using herald::StatusCode;

class CountingMailer final : public shop::notifications::Mailer {
 public:
  Status send(const shop::notifications::Email& email) override {
    std::lock_guard lock(mu_);
    ++sent_[email.message_id];
    to_.push_back(email.to);
    return {};
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
          herald::HandlerContext ctx(*store, h->name(), 1, nullptr);
          Status s = h->handle(e, ctx);
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

TEST_F(ShopHarness, RegistrationInitializesCartSendsWelcomeAndCounts) {
  const std::string user = new_user("Ann@Example.com");
  auto u = shop::users::user_repository(*store).get(user);
  ASSERT_TRUE(u.is_ok());
  EXPECT_EQ(u->email, "ann@example.com");
  EXPECT_TRUE(shop::carts::cart_repository(*store).load(user)->initialized);
  EXPECT_EQ(mailer->recipients(), std::vector<std::string>{"ann@example.com"});
  EXPECT_EQ(doc("stats", "users")["total_users"], 1);
  EXPECT_EQ(doc("carts", user)["items"], nlohmann::json::object());
}

TEST_F(ShopHarness, DuplicateEmailIsRejectedWhateverTheCase) {
  new_user("ann@example.com");
  const auto head = store->head_position();
  auto dup = shop::users::register_user(*store, "  ANN@example.COM ", "Other", {});
  EXPECT_EQ(dup.status().code(), StatusCode::already_exists);
  EXPECT_EQ(store->head_position(), head);
}

TEST_F(ShopHarness, ConcurrentRegistrationsOfOneAddressHaveOneWinner) {
  constexpr int kThreads = 8;
  std::vector<herald::Result<std::string>> results(kThreads, Status::internal("not run"));
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] { results[i] = shop::users::register_user(*store, "race@example.com", "R", {}); });
  }
  for (auto& t : threads) t.join();
  int winners = 0;
  for (const auto& r : results) {
    if (r.is_ok()) {
      ++winners;
    } else {
      EXPECT_EQ(r.status().code(), StatusCode::already_exists) << r.status().to_string();
    }
  }
  EXPECT_EQ(winners, 1);
  auto stats = store->stats();
  ASSERT_TRUE(stats.is_ok());
  EXPECT_EQ(stats->events_by_type["UserRegistered"], 1);
  EXPECT_EQ(stats->events_by_type["EmailClaimed"], 1);
}

TEST_F(ShopHarness, ClaimWithoutUserIsCompletedByHandler) {
  // A crash between the e-mail claim and UserRegistered: the claim alone leads to the user.
  const std::string user_id = "01a2a2a2-2222-7000-8000-000000000002";
  ASSERT_TRUE(store->append("email-late@example.com", herald::ExpectedVersion::no_stream(),
                            {herald::to_event(shop::users::EmailClaimed{"late@example.com", user_id, "Late"})})
                  .is_ok());
  EXPECT_TRUE(pump().empty());
  auto u = shop::users::user_repository(*store).get(user_id);
  ASSERT_TRUE(u.is_ok()) << u.status().to_string();
  EXPECT_EQ(u->email, "late@example.com");
  EXPECT_EQ(u->name, "Late");
  EXPECT_TRUE(shop::carts::cart_repository(*store).load(user_id)->initialized);
  EXPECT_EQ(mailer->recipients(), std::vector<std::string>{"late@example.com"});
  // The address stays taken.
  EXPECT_EQ(shop::users::register_user(*store, "late@example.com", "Again", {}).status().code(),
            StatusCode::already_exists);
}

TEST_F(ShopHarness, InvalidRegistrationWritesNothing) {
  EXPECT_EQ(shop::users::register_user(*store, "not-an-email", "X", {}).status().code(), StatusCode::invalid_argument);
  EXPECT_EQ(shop::users::register_user(*store, "a@b.c", "", {}).status().code(), StatusCode::invalid_argument);
  EXPECT_EQ(store->head_position(), -1);
}

TEST_F(ShopHarness, ProductValidationAndUniqueSku) {
  EXPECT_EQ(shop::catalog::create_product(*store, {"S1", "n", -1, 1}, {}).status().code(), StatusCode::invalid_argument);
  EXPECT_EQ(shop::catalog::create_product(*store, {"S1", "n", 1, -1}, {}).status().code(), StatusCode::invalid_argument);
  EXPECT_EQ(shop::catalog::create_product(*store, {"bad sku", "n", 1, 1}, {}).status().code(),
            StatusCode::invalid_argument);
  EXPECT_EQ(store->head_position(), -1);
  new_product("S1", 100, 3);
  EXPECT_EQ(shop::catalog::create_product(*store, {"S1", "again", 1, 1}, {}).status().code(),
            StatusCode::already_exists);
}

TEST_F(ShopHarness, CartRules) {
  const std::string user = new_user("c@example.com");
  const std::string p = new_product("P", 100, 3);
  auto repo = shop::carts::cart_repository(*store);
  auto none = repo.execute("01a2a2a2-0000-7000-8000-000000000000",
                           [&](shop::carts::Cart& c) { return c.add_item(p, 1); });
  EXPECT_EQ(none.status().code(), StatusCode::not_found);
  EXPECT_EQ(repo.execute(user, [&](shop::carts::Cart& c) { return c.add_item(p, 0); }).status().code(),
            StatusCode::invalid_argument);
  add_to_cart(user, p, 2);
  add_to_cart(user, p, 3);
  EXPECT_EQ(repo.load(user)->items.at(p), 5);
  EXPECT_EQ(repo.execute(user, [&](shop::carts::Cart& c) { return c.remove_item("other"); }).status().code(),
            StatusCode::not_found);
  ASSERT_TRUE(repo.execute(user, [&](shop::carts::Cart& c) { return c.remove_item(p); }).is_ok());
  EXPECT_EQ(shop::orders::place_order(*store, user, "tok_ok", {}).status().code(), StatusCode::failed_precondition);
}

TEST_F(ShopHarness, OrderIsConfirmedStockCommittedEmailAndStats) {
  const std::string user = new_user("buyer@example.com");
  const std::string a = new_product("A", 250, 5);
  const std::string b = new_product("B", 1000, 1);
  add_to_cart(user, a, 2);
  add_to_cart(user, b, 1);
  auto id = shop::orders::place_order(*store, user, "tok_visa", {});
  ASSERT_TRUE(id.is_ok()) << id.status().to_string();
  EXPECT_EQ(order(*id).status, shop::orders::OrderStatus::pending);
  EXPECT_TRUE(shop::carts::cart_repository(*store).load(user)->items.empty());

  auto failures = pump();
  EXPECT_TRUE(failures.empty());
  auto o = order(*id);
  EXPECT_EQ(o.status, shop::orders::OrderStatus::confirmed);
  EXPECT_EQ(o.total_cents, 1500);
  EXPECT_EQ(stock(a).available(), 3);
  EXPECT_EQ(stock(a).reserved(), 0);
  EXPECT_EQ(stock(a).sold, 2);
  EXPECT_EQ(stock(b).available(), 0);
  EXPECT_EQ(doc("stock", a)["available"], 3);
  EXPECT_EQ(doc("stock", a)["sold"], 2);
  EXPECT_EQ(doc("orders", *id)["status"], "confirmed");
  auto stats = doc("stats", "orders");
  EXPECT_EQ(stats["confirmed"], 1);
  EXPECT_EQ(stats["pending"], 0);
  EXPECT_EQ(stats["revenue_cents"], 1500);
  EXPECT_EQ(mailer->recipients().size(), 2u);  // welcome + confirmation
}

TEST_F(ShopHarness, DeclinedPaymentReleasesStockAndCancels) {
  const std::string user = new_user("d@example.com");
  const std::string a = new_product("A", 100, 4);
  add_to_cart(user, a, 3);
  auto id = shop::orders::place_order(*store, user, "tok_declined", {});
  ASSERT_TRUE(id.is_ok());
  EXPECT_TRUE(pump().empty());
  auto o = order(*id);
  EXPECT_EQ(o.status, shop::orders::OrderStatus::cancelled);
  EXPECT_EQ(o.reason, "payment_declined: card_declined");
  EXPECT_EQ(stock(a).available(), 4);
  EXPECT_EQ(stock(a).reserved(), 0);
  EXPECT_EQ(stock(a).sold, 0);
  EXPECT_EQ(shop::inventory::reservation_repository(*store).load(*id)->state,
            shop::inventory::ReservationState::released);
  EXPECT_EQ(doc("stats", "orders")["cancel_reasons"]["payment_declined"], 1);
  EXPECT_EQ(mailer->recipients().size(), 1u);  // only the welcome
}

TEST_F(ShopHarness, ShortStockReleasesWhatWasReservedAndCancels) {
  const std::string user = new_user("e@example.com");
  const std::string plenty = new_product("A", 100, 10);
  const std::string scarce = new_product("B", 100, 1);
  add_to_cart(user, plenty, 4);
  add_to_cart(user, scarce, 2);
  auto id = shop::orders::place_order(*store, user, "tok_ok", {});
  ASSERT_TRUE(id.is_ok());
  EXPECT_TRUE(pump().empty());
  auto o = order(*id);
  EXPECT_EQ(o.status, shop::orders::OrderStatus::cancelled);
  EXPECT_EQ(o.reason.rfind("out_of_stock: ", 0), 0u) << o.reason;
  EXPECT_EQ(stock(plenty).available(), 10);
  EXPECT_EQ(stock(scarce).available(), 1);
  EXPECT_EQ(shop::payments::payment_repository(*store).load(*id)->state, shop::payments::PaymentState::none);
}

TEST_F(ShopHarness, GatewayTimeoutIsRetryableAndLeavesOrderPending) {
  const std::string user = new_user("f@example.com");
  const std::string a = new_product("A", 100, 2);
  add_to_cart(user, a, 1);
  auto id = shop::orders::place_order(*store, user, "tok_timeout", {});
  ASSERT_TRUE(id.is_ok());
  auto failures = pump();
  ASSERT_EQ(failures.count("payments.processor"), 1u);
  EXPECT_EQ(failures["payments.processor"].code(), StatusCode::timeout);
  herald::RetryPolicy policy;
  EXPECT_TRUE(policy.is_retryable(failures["payments.processor"]));
  EXPECT_EQ(order(*id).status, shop::orders::OrderStatus::pending);
  EXPECT_EQ(stock(a).reserved(), 1);
}

TEST_F(ShopHarness, RedeliveringEveryEventChangesNothing) {
  const std::string user = new_user("g@example.com");
  const std::string a = new_product("A", 100, 5);
  add_to_cart(user, a, 2);
  ASSERT_TRUE(shop::orders::place_order(*store, user, "tok_ok", {}).is_ok());
  add_to_cart(user, a, 1);
  ASSERT_TRUE(shop::orders::place_order(*store, user, "tok_declined", {}).is_ok());
  EXPECT_TRUE(pump().empty());
  const auto head = store->head_position();
  const auto sent = mailer->sent();
  const auto order_stats = doc("stats", "orders");
  const auto user_stats = doc("stats", "users");
  const auto stock_view = doc("stock", a);

  // The whole log again, as after a crash that lost every checkpoint.
  EXPECT_TRUE(pump(0).empty());
  EXPECT_EQ(store->head_position(), head);
  EXPECT_EQ(mailer->sent(), sent);
  for (const auto& [id, n] : sent) EXPECT_EQ(n, 1) << id;
  EXPECT_EQ(doc("stats", "orders"), order_stats);
  EXPECT_EQ(doc("stats", "users"), user_stats);
  EXPECT_EQ(doc("stock", a), stock_view);
}

TEST_F(ShopHarness, CheckoutWithoutOrderIsCompletedByHandler) {
  // A crash between the cart's CartCheckedOut and the order's OrderCreated: the handler places it.
  const std::string user = new_user("h@example.com");
  const std::string a = new_product("A", 300, 5);
  add_to_cart(user, a, 1);
  const std::string order_id = "01a2a2a2-1111-7000-8000-000000000001";
  auto r = shop::carts::cart_repository(*store).execute(user, [&](shop::carts::Cart& c) {
    return c.check_out(order_id, "tok_ok", {{a, "A", "Product A", 1, 300}});
  });
  ASSERT_TRUE(r.is_ok());
  EXPECT_TRUE(pump().empty());
  auto o = order(order_id);
  EXPECT_EQ(o.status, shop::orders::OrderStatus::confirmed);
  EXPECT_EQ(o.total_cents, 300);
}

TEST_F(ShopHarness, ReservationInterruptedHalfwayResumesWithoutDoubleReserving) {
  const std::string user = new_user("i@example.com");
  const std::string a = new_product("A", 100, 5);
  const std::string b = new_product("B", 100, 5);
  add_to_cart(user, a, 2);
  add_to_cart(user, b, 3);
  auto id = shop::orders::place_order(*store, user, "tok_ok", {});
  ASSERT_TRUE(id.is_ok());
  // As if inventory.reservations had reserved A and then the process died: the request is in the
  // store, one stock reservation is, the outcome is not.
  ASSERT_TRUE(shop::inventory::request_reservation(*store, *id, {{a, 2}, {b, 3}}, {}, "").is_ok());
  ASSERT_TRUE(shop::inventory::stock_repository(*store)
                  .execute(a, [&](shop::inventory::Stock& s) { return s.reserve(*id, 2, ""); })
                  .is_ok());
  EXPECT_TRUE(pump().empty());
  EXPECT_EQ(order(*id).status, shop::orders::OrderStatus::confirmed);
  EXPECT_EQ(stock(a).sold, 2);
  EXPECT_EQ(stock(a).available(), 3);
  EXPECT_EQ(stock(b).sold, 3);
  auto stats = store->stats();
  ASSERT_TRUE(stats.is_ok());
  EXPECT_EQ(stats->events_by_type["StockReserved"], 2);
  EXPECT_EQ(stats->events_by_type["InventoryReservationRequested"], 1);
}

TEST_F(ShopHarness, StockAggregateReservationsAreIdempotent) {
  const std::string a = new_product("A", 100, 3);
  auto repo = shop::inventory::stock_repository(*store);
  ASSERT_TRUE(repo.execute(a, [](shop::inventory::Stock& s) { return s.reserve("o1", 2, ""); }).is_ok());
  const auto v = store->stream_version("stock-" + a);
  ASSERT_TRUE(repo.execute(a, [](shop::inventory::Stock& s) { return s.reserve("o1", 2, ""); }).is_ok());
  EXPECT_EQ(store->stream_version("stock-" + a).value(), v.value());
  EXPECT_EQ(repo.execute(a, [](shop::inventory::Stock& s) { return s.reserve("o2", 2, ""); }).status().code(),
            StatusCode::failed_precondition);
  ASSERT_TRUE(repo.execute(a, [](shop::inventory::Stock& s) { return s.commit("o1", ""); }).is_ok());
  ASSERT_TRUE(repo.execute(a, [](shop::inventory::Stock& s) { return s.release("o1", ""); }).is_ok());
  auto s = repo.load(a);
  EXPECT_EQ(s->on_hand, 1);
  EXPECT_EQ(s->sold, 2);
  EXPECT_EQ(s->reserved(), 0);
}

TEST(Smtp, UnreachableServerIsRetryable) {
  // Nothing listens on port 1 of loopback: the connection is refused at once.
  shop::notifications::SmtpMailer smtp("smtp://127.0.0.1:1");
  shop::notifications::Email mail{"0190aaaa-0000-8000-8000-000000000002", "shop@x", "a@b.c", "Hi", "body"};
  Status s = smtp.send(mail);
  EXPECT_EQ(s.code(), StatusCode::unavailable) << s.to_string();
  EXPECT_TRUE(herald::RetryPolicy{}.is_retryable(s));
}

TEST(Outbox, WritesOneFilePerMessageId) {
  const auto dir = std::filesystem::temp_directory_path() / ("herald-outbox-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  shop::notifications::OutboxMailer outbox(dir);
  shop::notifications::Email mail{"0190aaaa-0000-8000-8000-000000000001", "shop@x", "a@b.c", "Hi", "line1\nline2"};
  ASSERT_TRUE(outbox.send(mail).is_ok());
  mail.body = "changed";
  ASSERT_TRUE(outbox.send(mail).is_ok());
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(dir)) files.push_back(e.path());
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0].filename(), "0190aaaa-0000-8000-8000-000000000001.eml");
  std::ifstream in(files[0]);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("Message-ID: <0190aaaa-0000-8000-8000-000000000001@herald-shop>\r\n"), std::string::npos);
  EXPECT_NE(text.find("line1\r\nline2\r\n"), std::string::npos);
  std::filesystem::remove_all(dir);
}

}  // namespace
