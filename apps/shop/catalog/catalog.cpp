#include "catalog/catalog.h"

#include <algorithm>
#include <map>

#include "common/common.h"
#include "common/paging.h"
#include "common/text.h"
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

// SKU and name reach the order confirmation e-mail's body lines.
Status check_sku(std::string_view sku) {
  const bool sku_ok = !sku.empty() && sku.size() <= 64 && std::all_of(sku.begin(), sku.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
           c == '.';
  });
  return sku_ok ? Status{} : Status::invalid_argument("field 'sku' must be 1 to 64 of A-Z a-z 0-9 - _ .");
}

Status check_name(std::string_view name) { return check_plain_text("name", name, 1, 200); }

Status validate(const NewProduct& p) {
  HERALD_RETURN_IF_ERROR(check_sku(p.sku));
  HERALD_RETURN_IF_ERROR(check_name(p.name));
  if (p.price_cents < 0 || p.price_cents > kMaxPriceCents) {
    return Status::invalid_argument("field 'price_cents' must be an integer in [0, 100000000]");
  }
  if (p.stock < 0 || p.stock > kMaxStock) return Status::invalid_argument("field 'stock' must be an integer in [0, 1000000000]");
  return {};
}
}  // namespace

Status Product::create(const std::string& product_id, const std::string& s, const std::string& n, std::int64_t price) {
  if (!is_new()) return Status::already_exists("product " + product_id + " exists");
  // Checked here as well as in create_product, so no path to a ProductCreated skips it.
  HERALD_RETURN_IF_ERROR(check_sku(s));
  HERALD_RETURN_IF_ERROR(check_name(n));
  if (price < 0 || price > kMaxPriceCents) {
    return Status::invalid_argument("field 'price_cents' must be an integer in [0, 100000000]");
  }
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

herald::Result<nlohmann::json> list_products(herald::EventStore& store, const PageRequest& request) {
  nlohmann::json out;
  Status s = store.transact([&](herald::StoreTransaction& tx) -> Status {
    auto page = read_page(tx, kProductsCollection, request);
    if (!page) return page.status();
    // The stock documents share the products' keys (product ids), so the page's stock is one
    // range read (after, last key], in this transaction, instead of one read per product. The
    // range can also hold stock of products the products view has not caught up with: skipped.
    std::map<std::string, nlohmann::json, std::less<>> stock;
    if (!page->items.empty()) {
      const std::string& last = page->items.back().key;
      std::string cursor = request.after;
      bool more = true;
      while (more) {
        const std::size_t want = request.limit + 1;
        auto batch = tx.list_documents(inventory::kStockViewCollection, cursor, want);
        if (!batch) return batch.status();
        more = batch->size() == want;
        for (auto& d : *batch) {
          cursor = d.key;
          if (d.key > last) {
            more = false;
            break;
          }
          auto j = nlohmann::json::parse(d.json, nullptr, false);
          if (!j.is_discarded()) stock.emplace(std::move(d.key), std::move(j));
        }
      }
    }
    const nlohmann::json none = nlohmann::json::object();
    nlohmann::json products = nlohmann::json::array();
    for (auto& item : page->items) {
      auto it = stock.find(item.key);
      const nlohmann::json& st = it == stock.end() ? none : it->second;
      item.doc["stock_available"] = st.value("available", 0);
      item.doc["stock_reserved"] = st.value("reserved", 0);
      item.doc["stock_sold"] = st.value("sold", 0);
      products.push_back(std::move(item.doc));
    }
    out = {{"products", std::move(products)}, {"next", page->next ? nlohmann::json(*page->next) : nlohmann::json()}};
    return {};
  });
  if (!s) return s;
  return out;
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
    // Catalog writes are the operator's: they need the admin token.
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
    }, http::Access::admin));
    // The list comes from the read models (eventually consistent); one product is read from its
    // streams, so it reflects every committed change.
    HERALD_RETURN_IF_ERROR(router.get("/api/products", [store](const http::Request& req) {
      auto page = parse_page_request(req);
      if (!page) return error_response(page.status());
      auto products = list_products(*store, *page);
      if (!products) return error_response(products.status());
      return http::Response::ok(*products);
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
