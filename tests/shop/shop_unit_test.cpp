// Shop aggregates and the order saga, driven without a bus (see shop_harness.h).
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "shop_harness.h"

namespace {

using herald::Status;
using herald::StatusCode;
using shop_test::ShopHarness;

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

TEST_F(ShopHarness, HeaderInjectionInRegistrationIsRefusedAndWritesNothing) {
  for (std::string name : {"Eve\r\nBcc: x@evil.test", "Eve\n\nreplaced body", "Eve\n.\nQUIT", "Eve\u2028Bcc: x",
                           "Eve\u0085", "Eve\x7f", "bad \xff utf-8"}) {
    auto r = shop::users::register_user(*store, "eve@example.com", name, {});
    EXPECT_EQ(r.status().code(), StatusCode::invalid_argument) << name;
    EXPECT_NE(r.status().message().find("field 'name'"), std::string::npos) << r.status().message();
  }
  for (std::string email : {"eve@example.com\r\nBcc: x@evil.test", "eve@example.com>", "Eve <eve@example.com>"}) {
    auto r = shop::users::register_user(*store, email, "Eve", {});
    EXPECT_EQ(r.status().code(), StatusCode::invalid_argument) << email;
    EXPECT_NE(r.status().message().find("field 'email'"), std::string::npos) << r.status().message();
  }
  // The aggregate checks too, for code that records a registration without the command.
  const std::string id = "01a2a2a2-3333-7000-8000-000000000003";
  auto direct = shop::users::user_repository(*store).execute(
      id, [&](shop::users::User& u) { return u.register_user(id, "eve@example.com", "Eve\r\nBcc: x"); });
  EXPECT_EQ(direct.status().code(), StatusCode::invalid_argument);
  EXPECT_EQ(store->head_position(), -1);
}

TEST_F(ShopHarness, NameLimitCountsCharactersNotBytes) {
  std::string name;
  for (int i = 0; i < 200; ++i) name += "ü";  // 400 bytes
  EXPECT_TRUE(shop::users::register_user(*store, "long@example.com", name, {}).is_ok());
  EXPECT_TRUE(shop::catalog::create_product(*store, {"LONG-1", name, 1, 1}, {}).is_ok());
  const auto head = store->head_position();
  EXPECT_EQ(shop::users::register_user(*store, "longer@example.com", name + "ü", {}).status().code(),
            StatusCode::invalid_argument);
  EXPECT_EQ(shop::catalog::create_product(*store, {"LONG-2", name + "ü", 1, 1}, {}).status().code(),
            StatusCode::invalid_argument);
  EXPECT_EQ(store->head_position(), head);
}

TEST_F(ShopHarness, ProductNameAndSkuMustBePlainText) {
  for (std::string name : {"Mug\r\nBcc: x@evil.test", "Mug\n", "Mug\u2029", "Mug\x01", "\xc3"}) {
    auto r = shop::catalog::create_product(*store, {"M-1", name, 1, 1}, {});
    EXPECT_EQ(r.status().code(), StatusCode::invalid_argument) << name;
    EXPECT_NE(r.status().message().find("field 'name'"), std::string::npos) << r.status().message();
  }
  for (std::string sku : {"M-1\r\n", "M 1", "M\u2028", ""}) {
    auto r = shop::catalog::create_product(*store, {sku, "Mug", 1, 1}, {});
    EXPECT_EQ(r.status().code(), StatusCode::invalid_argument) << sku;
    EXPECT_NE(r.status().message().find("field 'sku'"), std::string::npos) << r.status().message();
  }
  auto direct = shop::catalog::product_repository(*store).execute(
      "01a2a2a2-4444-7000-8000-000000000004", [](shop::catalog::Product& p) {
        return p.create("01a2a2a2-4444-7000-8000-000000000004", "M-2", "Mug\r\nBcc: x", 1);
      });
  EXPECT_EQ(direct.status().code(), StatusCode::invalid_argument);
  EXPECT_EQ(store->head_position(), -1);
}

TEST_F(ShopHarness, WelcomeEmailCarriesTheNameInTheSubjectAndTheEventTime) {
  const std::string user = new_user("zoe@example.com");
  (void)user;
  auto id = shop::users::register_user(*store, "zoe2@example.com", "Zoë Ünicode", {});
  ASSERT_TRUE(id.is_ok());
  EXPECT_TRUE(pump().empty());
  const auto emails = mailer->emails();
  ASSERT_EQ(emails.size(), 2u);
  const auto& mail = emails[1];
  EXPECT_EQ(mail.subject, "Welcome to the Herald shop, Zoë Ünicode");
  EXPECT_EQ(mail.from_name, "Herald Shop");
  auto events = store->read_stream("user-" + *id, 0, 1, herald::ReadDirection::forwards);
  ASSERT_TRUE(events.is_ok() && events->size() == 1);
  EXPECT_EQ(mail.date, (*events)[0].recorded_at);
}

TEST_F(ShopHarness, OldEventWithALineBreakInTheNameSendsNoEmail) {
  // Written before the name checks existed: the mailer's renderer still refuses it, so the
  // handler fails for good (a dead letter under the bus) and nothing is sent.
  const std::string id = "01a2a2a2-5555-7000-8000-000000000005";
  const shop::users::UserRegistered old{id, "eve@example.com", "Eve\r\nBcc: x@evil.test"};
  ASSERT_TRUE(store->append("user-" + id, herald::ExpectedVersion::no_stream(), {herald::to_event(old)}).is_ok());
  auto failures = pump();
  ASSERT_EQ(failures.count("notifications.send_welcome_email"), 1u);
  const Status s = failures["notifications.send_welcome_email"];
  EXPECT_EQ(s.code(), StatusCode::invalid_argument) << s.to_string();
  EXPECT_FALSE(herald::RetryPolicy{}.is_retryable(s));
  EXPECT_TRUE(mailer->emails().empty());
}

shop::notifications::Email test_mail(std::string message_id, std::string body) {
  shop::notifications::Email mail;
  mail.message_id = std::move(message_id);
  mail.from = "shop@example.com";
  mail.to = "a@example.com";
  mail.subject = "Hi";
  mail.body = std::move(body);
  return mail;
}

TEST(Smtp, UnreachableServerIsRetryable) {
  // Nothing listens on port 1 of loopback: the connection is refused at once.
  shop::notifications::SmtpMailer smtp("smtp://127.0.0.1:1");
  auto mail = test_mail("0190aaaa-0000-8000-8000-000000000002", "body");
  Status s = smtp.send(mail);
  EXPECT_EQ(s.code(), StatusCode::unavailable) << s.to_string();
  EXPECT_TRUE(herald::RetryPolicy{}.is_retryable(s));
}

TEST(Outbox, WritesOneFilePerMessageId) {
  const auto dir = std::filesystem::temp_directory_path() / ("herald-outbox-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  shop::notifications::OutboxMailer outbox(dir);
  auto mail = test_mail("0190aaaa-0000-8000-8000-000000000001", "line1\nline2");
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

TEST(Outbox, RefusedMessageWritesNoFile) {
  const auto dir = std::filesystem::temp_directory_path() / ("herald-outbox-refused-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  shop::notifications::OutboxMailer outbox(dir);
  auto mail = test_mail("0190aaaa-0000-8000-8000-000000000003", "body");
  mail.subject = "Hi\r\nBcc: x@evil.test";
  EXPECT_EQ(outbox.send(mail).code(), StatusCode::invalid_argument);
  mail = test_mail("../../escape", "body");
  EXPECT_EQ(outbox.send(mail).code(), StatusCode::invalid_argument);
  std::error_code ec;
  EXPECT_TRUE(!std::filesystem::exists(dir, ec) || std::filesystem::is_empty(dir, ec));
  std::filesystem::remove_all(dir);
}

TEST(Smtp, RefusedAddressIsNeverSent) {
  // Refused before any connection: the answer is invalid_argument, not the refused connection's
  // unavailable.
  shop::notifications::SmtpMailer smtp("smtp://127.0.0.1:1");
  auto mail = test_mail("0190aaaa-0000-8000-8000-000000000004", "body");
  mail.to = "a@example.com>\r\nRCPT TO:<x@evil.test";
  EXPECT_EQ(smtp.send(mail).code(), StatusCode::invalid_argument);
}

}  // namespace
