// shop/users — registration with unique e-mail addresses.
//
// Streams: "user-<id>" (UserRegistered) and "email-<normalized address>" (EmailClaimed). The claim
// is appended with ExpectedVersion::no_stream() before the user, so the store — not a
// check-then-act — decides which of two concurrent registrations of one address wins. The claim
// carries the whole registration: "users.complete_registration" appends the same UserRegistered
// (same derived id) when a crash came between the two appends, so a claim never stays orphaned.
#pragma once

#include <memory>
#include <string>

#include "herald/aggregate.h"
#include "herald/system.h"

namespace shop::users {

struct EmailClaimed {
  static constexpr std::string_view kType = "EmailClaimed";
  std::string email;
  std::string user_id;
  std::string name;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(EmailClaimed, email, user_id, name)

struct UserRegistered {
  static constexpr std::string_view kType = "UserRegistered";
  std::string user_id;
  std::string email;
  std::string name;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(UserRegistered, user_id, email, name)

class User final : public herald::AggregateRoot {
 public:
  // invalid_argument for a name that is not 1 to 200 characters of valid UTF-8 without control
  // characters, or an address check_email_address refuses; already_exists when registered before.
  herald::Status register_user(const std::string& user_id, const std::string& email, const std::string& name,
                               std::string event_id = {});

  std::string email;
  std::string name;
  nlohmann::json to_json() const;

 protected:
  herald::Status apply(const herald::RecordedEvent& e, const nlohmann::json& p) override;
};

inline herald::Repository<User> user_repository(herald::EventStore& store) {
  return herald::Repository<User>(store, herald::RepositoryOptions("user"));
}

// Registers a user. Success: the new user's id. Failure (nothing written): invalid_argument for a
// malformed e-mail (normalize_email) or name (as User::register_user); already_exists when the
// address is taken; store errors.
herald::Result<std::string> register_user(herald::EventStore& store, std::string_view email,
                                          std::string_view name, const herald::EventMetadata& metadata);
// As register_user, with the id chosen by the caller (shop/auth writes the credentials under it
// first). `user_id` must be fresh (a new UUIDv7).
herald::Result<std::string> register_user_with_id(herald::EventStore& store, const std::string& user_id,
                                                  std::string_view email, std::string_view name,
                                                  const herald::EventMetadata& metadata);
// The checks register_user makes before writing: the normalised address, or invalid_argument for
// a malformed address or name.
herald::Result<std::string> check_registration(std::string_view email, std::string_view name);

// "users.complete_registration": writes the UserRegistered a claim implies, when missing.
std::shared_ptr<herald::EventHandler> make_complete_registration_handler();

// GET /api/users/{id} (Access::user: the signed-in user's own record only, another id is 404).
// Registration (POST /api/users, with a password) is shop/auth's route.
std::unique_ptr<herald::Module> make_module();

}  // namespace shop::users
