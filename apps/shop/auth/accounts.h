// shop/auth/accounts — the secrets of shop accounts: passwords, sessions and password resets, all
// in the store's process state (documents), never in an event, so the log, its replicas and any
// stream fed from it never carry a password hash or a token.
//
// Documents (collection / key):
//   credentials / <user id>        {"user_id", "email", "password_hash"}   Argon2id, secrets.h
//   sessions / <hex token hash>    {"user_id", "token_hash", "expires_at_us"}
//   user_sessions / <user id>      {"sessions": {<hex token hash>: expires_at_us}}  to revoke them all
//   password_resets / <hex hash>   {"user_id", "token_hash", "expires_at_us"}        single use
// Tokens are 256-bit random values the client holds; the store keeps only their BLAKE2b hash, so
// a copy of the database (a backup, a replica) signs nobody in. Why not signed tokens:
// docs/security.md.
//
// Registration writes the credentials under a fresh user id *before* the e-mail claim that makes
// the user exist (users::register_user_with_id), so a user never exists without credentials. When
// the claim loses (the address is taken) the credentials are deleted again; a crash between the
// two writes leaves a credentials document no claim names, which nothing can reach (sign-in finds
// credentials only through the address's claim). A retried registration after an uncertain
// failure (503 after the claim committed) answers 409, and the password of the first attempt
// signs in.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "auth/sign_in_limiter.h"
#include "herald/clock.h"
#include "herald/event_store.h"
#include "herald/http.h"
#include "notifications/notifications.h"

namespace shop::auth {

inline constexpr std::string_view kCredentialsCollection = "credentials";
inline constexpr std::string_view kSessionsCollection = "sessions";
inline constexpr std::string_view kUserSessionsCollection = "user_sessions";
inline constexpr std::string_view kResetsCollection = "password_resets";

struct AuthOptions {
  std::chrono::seconds session_ttl{24 * 3600};  // --session-ttl-seconds
  std::chrono::seconds reset_ttl{30 * 60};
  LimitRule per_account{5, std::chrono::seconds{15 * 60}};  // failed sign-ins per e-mail address
  LimitRule per_address{20, std::chrono::seconds{15 * 60}};  // failed sign-ins per client address
  std::shared_ptr<herald::Clock> clock;  // null: the system clock
};

struct Session {
  std::string token;  // the bearer token; only the caller ever sees it
  std::string user_id;
  herald::Timestamp expires_at;
};

struct SignInOutcome {
  enum class Kind { signed_in, refused, rate_limited };
  Kind kind = Kind::refused;
  Session session;                      // signed_in
  std::chrono::seconds retry_after{0};  // rate_limited
};

// Thread-safe: the limiters lock themselves, the rest is the store's (thread-safe) and constants.
class Accounts {
 public:
  // `store` and `mailer` must outlive this object.
  Accounts(herald::EventStore& store, std::shared_ptr<notifications::Mailer> mailer, AuthOptions options);

  // Registers a user with a password. Success: the user id. invalid_argument (nothing written) for
  // a malformed e-mail or name, or a password check_password_rules refuses; already_exists when
  // the address is taken (nothing left behind); store errors (see the file comment).
  herald::Result<std::string> register_account(std::string_view email, std::string_view name,
                                               std::string_view password, const herald::EventMetadata& metadata);

  // Signs in. invalid_argument for a malformed e-mail or a password over 1024 bytes; otherwise
  // signed_in with a new session, refused (unknown address and wrong password alike, after the
  // same Argon2id work), or rate_limited without trying when the account or `client_address` has
  // too many recent failures. Store errors as such.
  herald::Result<SignInOutcome> sign_in(std::string_view email, std::string_view password,
                                        const std::string& client_address);

  // The router's Authenticator: the user id of a live session named by "Authorization: Bearer
  // <token>", nullopt for no, a malformed, an unknown, a revoked or an expired token; store errors
  // as such.
  herald::Result<std::optional<std::string>> authenticate(const herald::http::Request& request) const;

  // Ends the session whose token `request` carries. ok when it is already gone.
  herald::Status revoke(const herald::http::Request& request);

  // Mails a single-use reset token, valid for options.reset_ttl, to `email` when it is registered;
  // does nothing else when it is not. invalid_argument for a malformed address; ok otherwise, so the
  // answer never says which (a store or mail failure is logged, not reported, for the same
  // reason).
  herald::Status request_reset(std::string_view email);

  // Sets a new password with a reset token and revokes every session of its user. invalid_argument
  // for a token that is unknown, used or expired, or a password check_password_rules refuses (the
  // token then stays usable); store errors.
  herald::Status complete_reset(std::string_view token, std::string_view new_password);

  const AuthOptions& options() const { return options_; }

 private:
  // The user id the address's claim names, or nullopt.
  herald::Result<std::optional<std::string>> user_of(const std::string& normalized_email) const;
  herald::Result<Session> start_session(const std::string& user_id);

  herald::EventStore& store_;
  const std::shared_ptr<notifications::Mailer> mailer_;
  const AuthOptions options_;
  SignInLimiter per_account_;
  SignInLimiter per_address_;
};

}  // namespace shop::auth
