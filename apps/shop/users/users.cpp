#include "users/users.h"

#include "common/common.h"
#include "common/text.h"
#include "herald/id.h"
#include "herald/typed_handler.h"

namespace shop::users {

using herald::Status;
namespace http = herald::http;

namespace {
// The name goes into the welcome e-mail's Subject header and its body.
Status check_name(std::string_view name) { return check_plain_text("name", name, 1, 200); }
}  // namespace

Status User::register_user(const std::string& user_id, const std::string& mail, const std::string& display,
                           std::string event_id) {
  if (!is_new()) return Status::already_exists("user " + id() + " is already registered");
  // Checked here as well as in the command, so no path to a UserRegistered skips it.
  HERALD_RETURN_IF_ERROR(check_email_address("email", mail));
  HERALD_RETURN_IF_ERROR(check_name(display));
  return record(UserRegistered{user_id, mail, display}, std::move(event_id));
}

Status User::apply(const herald::RecordedEvent& e, const nlohmann::json& p) {
  if (e.type == UserRegistered::kType) {
    email = p.at("email").get<std::string>();
    name = p.at("name").get<std::string>();
    return {};
  }
  return Status::corruption("user stream holds unknown event " + e.type);
}

nlohmann::json User::to_json() const { return {{"id", id()}, {"email", email}, {"name", name}}; }

namespace {

// Writes the UserRegistered that `claim` implies unless the user exists. Its id derives from the
// user id, so the HTTP path and the handler write the identical event.
Status complete_registration(herald::EventStore& store, const EmailClaimed& claim,
                             const herald::EventMetadata& metadata) {
  return user_repository(store)
      .execute(claim.user_id,
               [&](User& u) -> Status {
                 if (!u.is_new()) return {};
                 return u.register_user(claim.user_id, claim.email, claim.name,
                                        herald::derived_uuid("users.registration", claim.user_id));
               },
               metadata)
      .status();
}

}  // namespace

herald::Result<std::string> check_registration(std::string_view email, std::string_view name) {
  auto normalized = normalize_email(email);
  if (!normalized) return normalized.status();
  HERALD_RETURN_IF_ERROR(check_name(name));
  return normalized;
}

herald::Result<std::string> register_user(herald::EventStore& store, std::string_view email,
                                          std::string_view name, const herald::EventMetadata& metadata) {
  return register_user_with_id(store, herald::new_uuid_v7(), email, name, metadata);
}

herald::Result<std::string> register_user_with_id(herald::EventStore& store, const std::string& user_id,
                                                  std::string_view email, std::string_view name,
                                                  const herald::EventMetadata& metadata) {
  HERALD_RETURN_IF_ERROR(check_id("user id", user_id));
  auto normalized = check_registration(email, name);
  if (!normalized) return normalized.status();
  herald::EventData claim = herald::to_event(EmailClaimed{*normalized, user_id, std::string(name)}, metadata);
  claim.metadata.extra["schema"] = "1";
  auto claimed = store.append("email-" + *normalized, herald::ExpectedVersion::no_stream(), {claim});
  if (!claimed) {
    if (claimed.status().code() == herald::StatusCode::wrong_expected_version) {
      return Status::already_exists("e-mail address " + *normalized + " is already registered");
    }
    return claimed.status();
  }
  HERALD_RETURN_IF_ERROR(complete_registration(store, EmailClaimed{*normalized, user_id, std::string(name)}, metadata));
  return user_id;
}

namespace {

class CompleteRegistration final : public herald::BaseEventHandler<EmailClaimed> {
 public:
  std::string name() const override { return "users.complete_registration"; }
  Status on(const EmailClaimed& e, const herald::RecordedEvent& raw, herald::HandlerContext& ctx) override {
    return complete_registration(ctx.store(), e, caused_by(raw, name()));
  }
};

class UsersModule final : public herald::Module {
 public:
  std::string name() const override { return "users"; }

  Status register_handlers(herald::HandlerRegistrar& r, herald::ModuleContext&) override {
    return r.add(make_complete_registration_handler());
  }

  Status register_routes(http::Router& router, herald::ModuleContext& ctx) override {
    herald::EventStore* store = &ctx.store();
    return router.get("/api/users/{id}", [store](const http::Request& req) {
      const std::string& id = req.param("id");
      if (Status s = check_id("user id", id); !s) return error_response(s);
      if (Status s = check_own("user", id, req); !s) return error_response(s);
      auto user = user_repository(*store).get(id);
      if (!user) return error_response(user.status());
      return http::Response::ok(user->to_json());
    }, http::Access::user);
  }
};

}  // namespace

std::shared_ptr<herald::EventHandler> make_complete_registration_handler() {
  return std::make_shared<CompleteRegistration>();
}
std::unique_ptr<herald::Module> make_module() { return std::make_unique<UsersModule>(); }

}  // namespace shop::users
