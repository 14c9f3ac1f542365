// shop/auth — accounts with passwords, sessions and password resets (shop/auth/accounts.h), and
// the Authenticator every Access::user route is decided by.
//
// Routes:
//   POST   /api/users                    public  register {email, name, password} → 201 {id}
//   POST   /api/sessions                 public  sign in {email, password} → 201 {token, user_id,
//                                                expires_at}; 401 for a wrong pair; 429 +
//                                                Retry-After after too many failures
//   DELETE /api/sessions/current         user    sign out (revokes the token sent) → 204
//   POST   /api/password-resets          public  {email} → 202 whether or not it is registered
//   POST   /api/password-resets/confirm  public  {token, password} → 204, revokes every session
#pragma once

#include <memory>

#include "auth/accounts.h"
#include "herald/system.h"
#include "notifications/notifications.h"

namespace shop::auth {

// `mailer` null: the one the config selects (notifications::default_mailer).
std::unique_ptr<herald::Module> make_module(AuthOptions options = {},
                                            std::shared_ptr<notifications::Mailer> mailer = nullptr);

}  // namespace shop::auth
