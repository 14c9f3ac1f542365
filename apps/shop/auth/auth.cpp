#include "auth/auth.h"

#include "auth/secrets.h"
#include "common/common.h"

namespace shop::auth {

using herald::Status;
namespace http = herald::http;

namespace {

// Caps a password field before anything looks at it: a 1 MiB body is no password.
constexpr std::int64_t kPasswordFieldLimit = 1024;

http::Response too_many(std::chrono::seconds wait) {
  auto r = http::Response::error(429, "too_many_requests",
                                 "too many failed sign-ins for this account or client address; retry in " +
                                     std::to_string(wait.count()) + " s");
  r.headers["Retry-After"] = std::to_string(wait.count());
  return r;
}

http::Response refused() {
  auto r = http::Response::error(401, "unauthorized", "unknown e-mail address or wrong password");
  r.headers["WWW-Authenticate"] = "Bearer";
  return r;
}

herald::Result<std::string> password_field(const nlohmann::json& body) {
  auto password = http::get_string(body, "password");
  if (!password) return password.status();
  if (static_cast<std::int64_t>(password->size()) > kPasswordFieldLimit) {
    return Status::invalid_argument("field 'password' must be at most 1024 bytes");
  }
  return password;
}

class AuthModule final : public herald::Module {
 public:
  AuthModule(AuthOptions options, std::shared_ptr<notifications::Mailer> mailer)
      : options_(std::move(options)), mailer_(std::move(mailer)) {}
  std::string name() const override { return "auth"; }

  Status register_routes(http::Router& router, herald::ModuleContext& ctx) override {
    HERALD_RETURN_IF_ERROR(init_crypto());
    (void)dummy_password_hash();  // made now, not on the first sign-in of an unknown address
    if (!mailer_) mailer_ = notifications::default_mailer(ctx.config());
    accounts_ = std::make_shared<Accounts>(ctx.store(), mailer_, options_);
    std::shared_ptr<Accounts> accounts = accounts_;

    HERALD_RETURN_IF_ERROR(router.set_authenticator(
        [accounts](const http::Request& req) { return accounts->authenticate(req); }));

    HERALD_RETURN_IF_ERROR(router.post("/api/users", [accounts](const http::Request& req) {
      auto body = req.json_object();
      if (!body) return error_response(body.status());
      auto email = http::get_string(*body, "email");
      if (!email) return error_response(email.status());
      auto name = http::get_string(*body, "name");
      if (!name) return error_response(name.status());
      auto password = password_field(*body);
      if (!password) return error_response(password.status());
      auto id = accounts->register_account(*email, *name, *password, request_metadata(req));
      if (!id) return error_response(id.status());
      return http::Response::created({{"id", *id}});
    }));

    HERALD_RETURN_IF_ERROR(router.post("/api/sessions", [accounts](const http::Request& req) {
      auto body = req.json_object();
      if (!body) return error_response(body.status());
      auto email = http::get_string(*body, "email");
      if (!email) return error_response(email.status());
      auto password = password_field(*body);
      if (!password) return error_response(password.status());
      auto outcome = accounts->sign_in(*email, *password, req.remote_addr);
      if (!outcome) return error_response(outcome.status());
      switch (outcome->kind) {
        case SignInOutcome::Kind::rate_limited: return too_many(outcome->retry_after);
        case SignInOutcome::Kind::refused: return refused();
        case SignInOutcome::Kind::signed_in: break;
      }
      return http::Response::created({{"token", outcome->session.token},
                                      {"token_type", "Bearer"},
                                      {"user_id", outcome->session.user_id},
                                      {"expires_at", herald::format_rfc3339(outcome->session.expires_at)}});
    }));

    HERALD_RETURN_IF_ERROR(router.del("/api/sessions/current", [accounts](const http::Request& req) {
      if (Status s = accounts->revoke(req); !s) return error_response(s);
      return http::Response::no_content();
    }, http::Access::user));

    HERALD_RETURN_IF_ERROR(router.post("/api/password-resets", [accounts](const http::Request& req) {
      auto body = req.json_object();
      if (!body) return error_response(body.status());
      auto email = http::get_string(*body, "email");
      if (!email) return error_response(email.status());
      if (Status s = accounts->request_reset(*email); !s) return error_response(s);
      return http::Response::accepted(
          {{"status", "accepted"},
           {"message", "if the address is registered, a reset token is on its way to it"}});
    }));

    return router.post("/api/password-resets/confirm", [accounts](const http::Request& req) {
      auto body = req.json_object();
      if (!body) return error_response(body.status());
      auto token = http::get_string(*body, "token");
      if (!token) return error_response(token.status());
      auto password = password_field(*body);
      if (!password) return error_response(password.status());
      if (Status s = accounts->complete_reset(*token, *password); !s) return error_response(s);
      return http::Response::no_content();
    });
  }

 private:
  const AuthOptions options_;
  std::shared_ptr<notifications::Mailer> mailer_;  // set in register_routes, then read-only
  std::shared_ptr<Accounts> accounts_;             // set in register_routes, shared with the routes
};

}  // namespace

std::unique_ptr<herald::Module> make_module(AuthOptions options, std::shared_ptr<notifications::Mailer> mailer) {
  return std::make_unique<AuthModule>(std::move(options), std::move(mailer));
}

}  // namespace shop::auth
