// shop/catalog — products. Stream "product-<id>" (ProductCreated); SKUs are unique through
// "sku-<sku>" (SkuClaimed, appended with ExpectedVersion::no_stream()). A product's stock lives in
// the inventory module; its initial quantity is written there when the product is created.
#pragma once

#include <memory>
#include <string>

#include "common/paging.h"
#include "herald/aggregate.h"
#include "herald/system.h"

namespace shop::catalog {

struct SkuClaimed {
  static constexpr std::string_view kType = "SkuClaimed";
  std::string sku, product_id;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(SkuClaimed, sku, product_id)

struct ProductCreated {
  static constexpr std::string_view kType = "ProductCreated";
  std::string product_id, sku, name;
  std::int64_t price_cents = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(ProductCreated, product_id, sku, name, price_cents)

class Product final : public herald::AggregateRoot {
 public:
  // invalid_argument for a bad SKU, name or price (as create_product); already_exists when created.
  herald::Status create(const std::string& product_id, const std::string& sku, const std::string& name,
                        std::int64_t price_cents);
  std::string sku, name;
  std::int64_t price_cents = 0;

 protected:
  herald::Status apply(const herald::RecordedEvent& e, const nlohmann::json& p) override;
};

herald::Repository<Product> product_repository(herald::EventStore& store);

struct NewProduct {
  std::string sku, name;
  std::int64_t price_cents = 0;
  std::int64_t stock = 0;
};

// Validates and creates a product with its initial stock. Success: the product id.
// invalid_argument (nothing written) for a SKU not of 1 to 64 [A-Za-z0-9._-], a name not of 1 to
// 200 characters of valid UTF-8 without control characters (common/text.h), a price or stock out
// of range; already_exists for a taken SKU.
herald::Result<std::string> create_product(herald::EventStore& store, const NewProduct& p,
                                           const herald::EventMetadata& metadata);

// Read model of products (collection "products"), fed by "catalog.products_view".
inline constexpr std::string_view kProductsCollection = "products";

// One page of the products view with each product's stock, read in one transaction:
// {"products": [{"id", "sku", "name", "price_cents", "stock_available", "stock_reserved",
// "stock_sold"}], "next": cursor or null}.
herald::Result<nlohmann::json> list_products(herald::EventStore& store, const PageRequest& page);
std::shared_ptr<herald::EventHandler> make_products_view_handler();

std::unique_ptr<herald::Module> make_module();

}  // namespace shop::catalog
