#include "catalog/catalog.h"

#include <algorithm>
#include <cctype>

#include "common/common.h"
#include "herald/id.h"
#include "herald/typed_handler.h"
#include "inventory/inventory.h"

namespace shop::catalog {

using herald::RecordedEvent;
using herald::Status;
namespace http = herald::http;

namespace {
// Keeps sums of order lines far from int64 overflow.
constexpr std::int64_t kMaxPriceCents = 100'000'000;
constexpr std::int64_t kMaxStock = 1'000'000'000;

Status validate(const NewProduct& p) {
  const bool sku_ok = !p.sku.empty() && p.sku.size() <= 64 &&
                      std::all_of(p.sku.begin(), p.sku.end(), [](unsigned char c) {
                        return std::isalnum(c) || c == '-' || c == '_' || c == '.';
                      });
  if (!sku_ok) return Status::invalid_argument("field 'sku' must be 1 to 64 of A-Z a-z 0-9 - _ .");
  if (p.name.empty() || p.name.size() > 200) return Status::invalid_argument("field 'name' must be 1 to 200 characters");
  if (p.price_cents < 0 || p.price_cents > kMaxPriceCents) {
    return Status::invalid_argument("field 'price_cents' must be an integer in [0, 100000000]");
  }
  if (p.stock < 0 || p.stock > kMaxStock) return Status::invalid_argument("field 'stock' must be an integer in [0, 1000000000]");
  return {};
}
}  // namespace

Status Product::create(const std::string& product_id, const std::string& s, const std::string& n, std::int64_t price) {
  if (!is_new()) return Status::already_exists("product " + product_id + " exists");
  return record(ProductCreated{product_id, s, n, price});
}

Status Product::apply(const RecordedEvent& e, const nlohmann::json& p) {
  if (e.type != ProductCreated::kType) return Status::corruption("product stream holds unknown event " + e.type);
  sku = p.at("sku").get<std::string>();
  name = p.at("name").get<std::string>();
  price_cents = p.at("price_cents").get<std::int64_t>();
  return {};
}

herald::Repository<Product> product_repository(herald::EventStore& store) {
  return herald::Repository<Product>(store, herald::RepositoryOptions("product"));
}

herald::Result<std::string> create_product(herald::EventStore& store, const NewProduct& p,
                                           const herald::EventMetadata& metadata) {
  HERALD_RETURN_IF_ERROR(validate(p));
  const std::string product_id = herald::new_uuid_v7();
  herald::EventData claim = herald::to_event(SkuClaimed{p.sku, product_id}, metadata);
  auto claimed = store.append("sku-" + p.sku, herald::ExpectedVersion::no_stream(), {claim});
  if (!claimed) {
    if (claimed.status().code() == herald::StatusCode::wrong_expected_version) {
      return Status::already_exists("SKU " + p.sku + " is already used");
    }
    return claimed.status();
  }
  // Stock first: a crash before the product is written leaves stock nobody can see, never a
  // product without stock.
  HERALD_RETURN_IF_ERROR(inventory::initialize_stock(store, product_id, p.stock, metadata));
  auto saved = product_repository(store).execute(
      product_id, [&](Product& prod) { return prod.create(product_id, p.sku, p.name, p.price_cents); }, metadata);
  if (!saved) return saved.status();
  return product_id;
}

namespace {

nlohmann::json product_json(const std::string& id, const std::string& sku, const std::string& name,
                            std::int64_t price, const inventory::Stock* stock) {
  nlohmann::json j = {{"id", id}, {"sku", sku}, {"name", name}, {"price_cents", price}};
  j["stock_available"] = stock ? stock->available() : 0;
  j["stock_reserved"] = stock ? stock->reserved() : 0;
  j["stock_sold"] = stock ? stock->sold : 0;
  return j;
}

class ProductsViewHandler final : public herald::BaseEventHandler<ProductCreated> {
 public:
  std::string name() const override { return "catalog.products_view"; }
  Status on(const ProductCreated& e, const RecordedEvent& raw, herald::HandlerContext& ctx) override {
    return ctx.exactly_once(raw, [&](herald::StoreTransaction& tx) {
      nlohmann::json doc = {{"id", e.product_id}, {"sku", e.sku}, {"name", e.name}, {"price_cents", e.price_cents}};
      return tx.put_document(kProductsCollection, e.product_id, doc.dump());
    });
  }
};

class CatalogModule final : public herald::Module {
 public:
  std::string name() const override { return "catalog"; }

  Status register_handlers(herald::HandlerRegistrar& r, herald::ModuleContext&) override {
    return r.add(make_products_view_handler());
  }

  Status register_routes(http::Router& router, herald::ModuleContext& ctx) override {
    herald::EventStore* store = &ctx.store();
    HERALD_RETURN_IF_ERROR(router.post("/api/products", [store](const http::Request& req) {
      auto body = req.json_object();
      if (!body) return error_response(body.status());
      NewProduct p;
      auto sku = http::get_string(*body, "sku");
      if (!sku) return error_response(sku.status());
      auto name = http::get_string(*body, "name");
      if (!name) return error_response(name.status());
      auto price = http::get_int(*body, "price_cents", 0, kMaxPriceCents);
      if (!price) return error_response(price.status());
      auto stock = http::get_int(*body, "stock", 0, kMaxStock);
      if (!stock) return error_response(stock.status());
      p.sku = *sku;
      p.name = *name;
      p.price_cents = *price;
      p.stock = *stock;
      auto id = create_product(*store, p, request_metadata(req));
      if (!id) return error_response(id.status());
      return http::Response::created({{"id", *id}});
    }));
    // The list comes from the read models (eventually consistent); one product is read from its
    // streams, so it reflects every committed change.
    HERALD_RETURN_IF_ERROR(router.get("/api/products", [store](const http::Request&) {
      auto products = list_documents(*store, kProductsCollection);
      if (!products) return error_response(products.status());
      nlohmann::json out = nlohmann::json::array();
      for (auto& p : *products) {
        auto stock = read_document(*store, inventory::kStockViewCollection, p.value("id", ""));
        p["stock_available"] = stock ? stock->value("available", 0) : 0;
        p["stock_reserved"] = stock ? stock->value("reserved", 0) : 0;
        p["stock_sold"] = stock ? stock->value("sold", 0) : 0;
        out.push_back(std::move(p));
      }
      return http::Response::ok({{"products", std::move(out)}});
    }));
    return router.get("/api/products/{id}", [store](const http::Request& req) {
      const std::string& id = req.param("id");
      if (Status s = check_id("product id", id); !s) return error_response(s);
      auto product = product_repository(*store).get(id);
      if (!product) return error_response(product.status());
      auto stock = inventory::stock_repository(*store).load(id);
      if (!stock) return error_response(stock.status());
      return http::Response::ok(product_json(id, product->sku, product->name, product->price_cents, &*stock));
    });
  }
};

}  // namespace

std::shared_ptr<herald::EventHandler> make_products_view_handler() { return std::make_shared<ProductsViewHandler>(); }
std::unique_ptr<herald::Module> make_module() { return std::make_unique<CatalogModule>(); }

}  // namespace shop::catalog
