// shop/common/paging — cursor paging over a read-model collection, for the list routes
// (GET /api/products, GET /api/orders).
//
// A page is read in one store transaction: documents in key order after the cursor, one more than
// asked for, so the answer can say whether another page follows without a second request. The
// cursor handed to clients is the last key of the page; documents are keyed by UUID, so a cursor
// that is not a UUID was not made here and is refused.
#pragma once

#include <nlohmann/json.hpp>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "herald/event_store.h"
#include "herald/http.h"
#include "herald/status.h"

namespace shop {

inline constexpr std::size_t kDefaultPageLimit = 50;
inline constexpr std::size_t kMaxPageLimit = 200;

struct PageRequest {
  std::size_t limit = kDefaultPageLimit;
  std::string after;  // empty: from the first document
};

// From the query: `limit` (default 50) must be an integer in [1, 200] and `after` (optional) a
// cursor from an earlier page's `next`; invalid_argument naming the parameter otherwise.
herald::Result<PageRequest> parse_page_request(const herald::http::Request& req);

struct PagedDocument {
  std::string key;
  nlohmann::json doc;
};

struct DocumentPage {
  std::vector<PagedDocument> items;  // in key order
  std::optional<std::string> next;   // the cursor of the next page; nullopt at the end
};

// Inside `tx`: the first `page.limit` documents of `collection` with key > page.after that `keep`
// accepts (every one when `keep` is empty). With a filter, the collection is scanned in batches
// until one match more than the page holds is found or the collection ends, so `next` is null
// exactly when nothing after this page would match. corruption for a document that is not JSON.
herald::Result<DocumentPage> read_page(herald::StoreTransaction& tx, std::string_view collection,
                                       const PageRequest& page,
                                       const std::function<bool(const nlohmann::json&)>& keep = {});

}  // namespace shop
