#include "shop_modules.h"

#include "auth/auth.h"
#include "carts/carts.h"
#include "catalog/catalog.h"
#include "inventory/inventory.h"
#include "orders/orders.h"
#include "stats/stats.h"
#include "users/users.h"

namespace shop {

std::vector<std::unique_ptr<herald::Module>> make_modules(const ShopOverrides& overrides) {
  std::vector<std::unique_ptr<herald::Module>> m;
  m.push_back(users::make_module());
  m.push_back(auth::make_module(overrides.auth, overrides.mailer));
  m.push_back(catalog::make_module());
  m.push_back(inventory::make_module());
  m.push_back(carts::make_module());
  m.push_back(orders::make_module());
  m.push_back(payments::make_module(overrides.gateway));
  m.push_back(notifications::make_module(overrides.mailer));
  m.push_back(stats::make_module());
  return m;
}

}  // namespace shop
