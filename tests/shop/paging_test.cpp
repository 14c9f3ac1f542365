// The list routes' paging: every document exactly once, in key order, across pages; filters that
// skip documents still fill every page but the last.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "common/paging.h"
#include "shop_harness.h"

namespace {

using herald::StatusCode;
using shop_test::ShopHarness;

TEST_F(ShopHarness, ProductListPagesEveryProductOnceWithItsStock) {
  std::vector<std::string> ids;
  for (int i = 0; i < 7; ++i) ids.push_back(new_product("P-" + std::to_string(i), 100 + i, 10 + i));
  EXPECT_TRUE(pump().empty());
  for (std::size_t limit : {1u, 3u, 6u, 7u, 200u}) {
    std::vector<std::string> seen;
    shop::PageRequest page;
    page.limit = limit;
    for (int pages = 0;; ++pages) {
      ASSERT_LT(pages, 10);
      auto r = shop::catalog::list_products(*store, page);
      ASSERT_TRUE(r.is_ok()) << r.status().to_string();
      EXPECT_LE((*r)["products"].size(), limit);
      for (const auto& p : (*r)["products"]) {
        seen.push_back(p["id"]);
        const auto k = std::find(ids.begin(), ids.end(), p["id"].get<std::string>()) - ids.begin();
        EXPECT_EQ(p["stock_available"], 10 + k);
        EXPECT_EQ(p["price_cents"], 100 + k);
      }
      if ((*r)["next"].is_null()) break;
      EXPECT_EQ((*r)["products"].size(), limit);
      page.after = (*r)["next"];
    }
    EXPECT_EQ(seen, ids) << "limit " << limit;  // UUIDv7 ids: key order is creation order
  }
}

TEST_F(ShopHarness, OrderListFilteredByUserPagesOverTheMatchesOnly) {
  const std::string ann = new_user("ann@example.com");
  const std::string bob = new_user("bob@example.com");
  const std::string p = new_product("A", 100, 100);
  std::map<std::string, std::vector<std::string>> placed;
  for (int i = 0; i < 9; ++i) {
    const std::string& who = i % 3 == 0 ? bob : ann;  // bob: 3 orders, ann: 6, interleaved
    add_to_cart(who, p, 1);
    auto id = shop::orders::place_order(*store, who, "tok_ok", {});
    ASSERT_TRUE(id.is_ok()) << id.status().to_string();
    placed[who].push_back(*id);
  }
  EXPECT_TRUE(pump().empty());
  for (const auto& [who, orders] : placed) {
    for (std::size_t limit : {1u, 2u, 3u, 50u}) {
      std::vector<std::string> seen;
      shop::PageRequest page;
      page.limit = limit;
      for (int pages = 0;; ++pages) {
        ASSERT_LT(pages, 10);
        auto r = shop::orders::list_orders(*store, page, who);
        ASSERT_TRUE(r.is_ok()) << r.status().to_string();
        for (const auto& o : (*r)["orders"]) {
          EXPECT_EQ(o["user_id"], who);
          seen.push_back(o["id"]);
        }
        if ((*r)["next"].is_null()) break;
        // A page before the last is full: the scan went past other users' orders to fill it.
        EXPECT_EQ((*r)["orders"].size(), limit);
        page.after = (*r)["next"];
      }
      EXPECT_EQ(seen, orders) << who << " limit " << limit;
    }
  }
  shop::PageRequest all;
  all.limit = 4;
  auto first = shop::orders::list_orders(*store, all);
  ASSERT_TRUE(first.is_ok());
  EXPECT_EQ((*first)["orders"].size(), 4u);
  EXPECT_FALSE((*first)["next"].is_null());
}

TEST(Paging, QueryParametersAreValidated) {
  auto parse = [](std::multimap<std::string, std::string> query) {
    herald::http::Request req;
    req.query = std::move(query);
    return shop::parse_page_request(req);
  };
  auto defaults = parse({});
  ASSERT_TRUE(defaults.is_ok());
  EXPECT_EQ(defaults->limit, 50u);
  EXPECT_EQ(defaults->after, "");
  auto ok = parse({{"limit", "200"}, {"after", "01a2a2a2-0000-7000-8000-000000000000"}});
  ASSERT_TRUE(ok.is_ok());
  EXPECT_EQ(ok->limit, 200u);
  EXPECT_EQ(ok->after, "01a2a2a2-0000-7000-8000-000000000000");
  for (std::string bad : {"0", "201", "-1", "+5", " 5", "5x", "", "1e2", "99999999999999999999999"}) {
    auto r = parse({{"limit", bad}});
    EXPECT_EQ(r.status().code(), StatusCode::invalid_argument) << bad;
    EXPECT_NE(r.status().message().find("'limit'"), std::string::npos);
  }
  for (std::string bad : {"", "x", "01a2a2a2-0000-7000-8000-00000000000", "../products"}) {
    auto r = parse({{"after", bad}});
    EXPECT_EQ(r.status().code(), StatusCode::invalid_argument) << bad;
    EXPECT_NE(r.status().message().find("'after'"), std::string::npos);
  }
}

}  // namespace
