// shop/auth without HTTP: sign-in rate limits, session expiry and password resets on a manual
// clock, registration leaving nothing behind when it fails, and the password rules.
#include <gtest/gtest.h>

#include <regex>

#include "auth/accounts.h"
#include "auth/secrets.h"
#include "shop_harness.h"

namespace {

using herald::StatusCode;
using shop::auth::Accounts;
using shop::auth::AuthOptions;
using shop::auth::SignInOutcome;
using shop_test::ShopHarness;
using namespace std::chrono_literals;

constexpr std::string_view kPassword = "correct horse battery staple";

class AuthTest : public ShopHarness {
 protected:
  void SetUp() override {
    ShopHarness::SetUp();
    ASSERT_TRUE(shop::auth::init_crypto().is_ok());
    clock = std::make_shared<herald::ManualClock>(herald::timestamp_from_micros(1'800'000'000'000'000));
    AuthOptions options;
    options.clock = clock;
    accounts = std::make_unique<Accounts>(*store, mailer, options);
  }

  std::string registered(const std::string& email) {
    auto id = accounts->register_account(email, "Test User", kPassword, {});
    EXPECT_TRUE(id.is_ok()) << id.status().to_string();
    return id ? *id : std::string();
  }
  SignInOutcome sign_in(const std::string& email, std::string_view password, const std::string& from = "10.0.0.1") {
    auto r = accounts->sign_in(email, password, from);
    EXPECT_TRUE(r.is_ok()) << r.status().to_string();
    return r ? *r : SignInOutcome{};
  }
  std::optional<std::string> who(const std::string& token) {
    herald::http::Request req;
    req.headers["authorization"] = "Bearer " + token;
    auto r = accounts->authenticate(req);
    EXPECT_TRUE(r.is_ok()) << r.status().to_string();
    return r ? *r : std::nullopt;
  }
  // The token of the last password-reset e-mail.
  std::string last_reset_token() {
    auto mails = mailer->emails();
    EXPECT_FALSE(mails.empty());
    if (mails.empty()) return {};
    std::smatch m;
    const std::string body = mails.back().body;
    EXPECT_TRUE(std::regex_search(body, m, std::regex("\"token\": \"([0-9a-f]{64})\""))) << body;
    return m.size() > 1 ? m[1].str() : std::string();
  }
  std::size_t documents(std::string_view collection) {
    auto docs = store->read_documents(collection, "", 1000);
    EXPECT_TRUE(docs.is_ok());
    return docs ? docs->size() : 0;
  }

  std::shared_ptr<herald::ManualClock> clock;
  std::unique_ptr<Accounts> accounts;
};

TEST_F(AuthTest, FiveFailuresLockTheAccountUntilTheWindowEnds) {
  const std::string ann = registered("ann@example.com");
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(sign_in("ann@example.com", "wrong password").kind, SignInOutcome::Kind::refused) << i;
    clock->advance(10s);
  }
  // Locked now, even with the right password, and from another address.
  auto locked = sign_in("ann@example.com", kPassword, "10.9.9.9");
  ASSERT_EQ(locked.kind, SignInOutcome::Kind::rate_limited);
  // The window started at the first failure, 50 s ago.
  EXPECT_EQ(locked.retry_after, 15min - 50s);
  clock->advance(locked.retry_after - 1s);
  EXPECT_EQ(sign_in("ann@example.com", kPassword).kind, SignInOutcome::Kind::rate_limited);
  clock->advance(1s);
  auto ok = sign_in("ann@example.com", kPassword);
  ASSERT_EQ(ok.kind, SignInOutcome::Kind::signed_in);
  EXPECT_EQ(ok.session.user_id, ann);
  // A success forgets the account's failures: four more do not lock it.
  for (int i = 0; i < 4; ++i) EXPECT_EQ(sign_in("ann@example.com", "wrong").kind, SignInOutcome::Kind::refused);
  EXPECT_EQ(sign_in("ann@example.com", kPassword).kind, SignInOutcome::Kind::signed_in);
}

TEST_F(AuthTest, UnknownAddressesCountAndOneClientAddressIsLimitedAcrossAccounts) {
  registered("ann@example.com");
  // Twenty failures from one client, each on another (unknown) address: refused like a wrong
  // password, then that client is limited for every account, others are not.
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(sign_in("nobody" + std::to_string(i) + "@example.com", kPassword, "10.6.6.6").kind,
              SignInOutcome::Kind::refused);
  }
  auto limited = sign_in("ann@example.com", kPassword, "10.6.6.6");
  EXPECT_EQ(limited.kind, SignInOutcome::Kind::rate_limited);
  EXPECT_EQ(limited.retry_after, 15min);
  EXPECT_EQ(sign_in("ann@example.com", kPassword, "10.7.7.7").kind, SignInOutcome::Kind::signed_in);
}

TEST_F(AuthTest, SessionsExpireAndRevoke) {
  const std::string ann = registered("ann@example.com");
  auto s = sign_in("ann@example.com", kPassword);
  ASSERT_EQ(s.kind, SignInOutcome::Kind::signed_in);
  EXPECT_EQ(s.session.expires_at, clock->now() + 24h);
  EXPECT_EQ(who(s.session.token), ann);
  EXPECT_EQ(who(std::string(64, '0')), std::nullopt);
  EXPECT_EQ(who("not-a-token"), std::nullopt);
  clock->advance(24h - 1s);
  EXPECT_EQ(who(s.session.token), ann);
  clock->advance(1s);
  EXPECT_EQ(who(s.session.token), std::nullopt);

  auto t = sign_in("ann@example.com", kPassword);
  herald::http::Request req;
  req.headers["authorization"] = "Bearer " + t.session.token;
  ASSERT_TRUE(accounts->revoke(req).is_ok());
  EXPECT_EQ(who(t.session.token), std::nullopt);
  EXPECT_TRUE(accounts->revoke(req).is_ok());  // already gone
  // The expired session was dropped from the store when Ann signed in again.
  EXPECT_EQ(documents(shop::auth::kSessionsCollection), 0u);
}

TEST_F(AuthTest, ResetTokensAreSingleUseExpireAfterThirtyMinutesAndRevokeSessions) {
  const std::string ann = registered("ann@example.com");
  auto session = sign_in("ann@example.com", kPassword);
  ASSERT_EQ(session.kind, SignInOutcome::Kind::signed_in);

  // An unknown address: ok, and nothing is sent or stored.
  const auto mails_before = mailer->emails().size();
  ASSERT_TRUE(accounts->request_reset("nobody@example.com").is_ok());
  EXPECT_EQ(mailer->emails().size(), mails_before);
  EXPECT_EQ(documents(shop::auth::kResetsCollection), 0u);

  ASSERT_TRUE(accounts->request_reset("ANN@example.com").is_ok());
  EXPECT_EQ(mailer->emails().back().to, "ann@example.com");
  const std::string expired = last_reset_token();
  clock->advance(30min);
  EXPECT_EQ(accounts->complete_reset(expired, "a new passphrase").code(), StatusCode::invalid_argument);

  ASSERT_TRUE(accounts->request_reset("ann@example.com").is_ok());
  const std::string token = last_reset_token();
  clock->advance(29min);
  // A password the rules refuse leaves the token usable.
  EXPECT_EQ(accounts->complete_reset(token, "short").code(), StatusCode::invalid_argument);
  ASSERT_TRUE(accounts->complete_reset(token, "a new passphrase").is_ok());
  EXPECT_EQ(accounts->complete_reset(token, "another passphrase").code(), StatusCode::invalid_argument);

  EXPECT_EQ(who(session.session.token), std::nullopt);
  EXPECT_EQ(sign_in("ann@example.com", kPassword).kind, SignInOutcome::Kind::refused);
  auto fresh = sign_in("ann@example.com", "a new passphrase");
  ASSERT_EQ(fresh.kind, SignInOutcome::Kind::signed_in);
  EXPECT_EQ(fresh.session.user_id, ann);
}

TEST_F(AuthTest, FailedRegistrationLeavesNoCredentialsAndTheFirstPasswordStands) {
  const std::string ann = registered("ann@example.com");
  const auto head = store->head_position();
  auto dup = accounts->register_account("Ann@Example.com", "Other", "some other passphrase", {});
  EXPECT_EQ(dup.status().code(), StatusCode::already_exists);
  EXPECT_EQ(accounts->register_account("bad", "B", kPassword, {}).status().code(), StatusCode::invalid_argument);
  EXPECT_EQ(accounts->register_account("b@example.com", "B", "short", {}).status().code(),
            StatusCode::invalid_argument);
  EXPECT_EQ(store->head_position(), head);
  EXPECT_EQ(documents(shop::auth::kCredentialsCollection), 1u);
  EXPECT_EQ(sign_in("ann@example.com", "some other passphrase").kind, SignInOutcome::Kind::refused);
  EXPECT_EQ(sign_in("ann@example.com", kPassword).session.user_id, ann);
  // The hash is in process state only: no event carries it.
  auto slice = store->read_all(0, 1000);
  ASSERT_TRUE(slice.is_ok());
  for (const auto& e : slice->events) EXPECT_EQ(e.payload.find("argon2"), std::string::npos) << e.type;
}

TEST(PasswordRules, StateWhatTheyRefuse) {
  using shop::auth::check_password_rules;
  EXPECT_TRUE(check_password_rules("correct horse battery staple", "ann@example.com").is_ok());
  EXPECT_TRUE(check_password_rules("Zoë’s piano 🎹", "zoe@example.com").is_ok());
  for (std::string_view bad : std::vector<std::string_view>{"short", "aaaaaaaaaaaaaa", "ababababab12", "Password123", "1234567890",
                               "my-ann-password", "tab\there-123", std::string_view("nul\0char-12345", 14)}) {
    auto s = check_password_rules(bad, "ann@example.com");
    EXPECT_EQ(s.code(), StatusCode::invalid_argument) << bad;
    EXPECT_NE(s.message().find("field 'password'"), std::string::npos) << s.message();
  }
  EXPECT_EQ(check_password_rules(std::string(129, 'x'), "a@example.com").code(), StatusCode::invalid_argument);
}

TEST(Tokens, AreRandomHexAndHashOnlyWhenWellFormed) {
  ASSERT_TRUE(shop::auth::init_crypto().is_ok());
  const std::string a = shop::auth::new_token();
  const std::string b = shop::auth::new_token();
  EXPECT_EQ(a.size(), 64u);
  EXPECT_NE(a, b);
  auto ha = shop::auth::hash_token(a);
  ASSERT_TRUE(ha.has_value());
  EXPECT_TRUE(shop::auth::same_hash(*ha, *shop::auth::hash_token(a)));
  EXPECT_FALSE(shop::auth::same_hash(*ha, *shop::auth::hash_token(b)));
  EXPECT_EQ(shop::auth::from_hex(shop::auth::to_hex(*ha)), ha);
  EXPECT_FALSE(shop::auth::hash_token(a.substr(1)).has_value());
  EXPECT_FALSE(shop::auth::hash_token(std::string(63, 'a') + "G").has_value());
  EXPECT_FALSE(shop::auth::hash_token("").has_value());
}

}  // namespace
