// The shop's eight modules, in the order the EventSystem should add them.
#pragma once

#include <memory>
#include <vector>

#include "auth/accounts.h"
#include "herald/system.h"
#include "notifications/notifications.h"
#include "payments/payments.h"

namespace shop {

// Test seams: a mailer or gateway to use instead of the ones the config selects.
struct ShopOverrides {
  std::shared_ptr<notifications::Mailer> mailer;
  std::shared_ptr<payments::PaymentGateway> gateway;
  auth::AuthOptions auth;  // session TTL, sign-in limits, the clock
};

// users, auth, catalog, inventory, carts, orders, payments, notifications, stats.
std::vector<std::unique_ptr<herald::Module>> make_modules(const ShopOverrides& overrides = {});

}  // namespace shop
