#include "common/paging.h"

#include <charconv>

#include "herald/id.h"

namespace shop {
namespace {
// With a filter most documents of a batch may be skipped; big batches keep the number of reads
// per page small without holding much more than a page in memory.
constexpr std::size_t kScanBatch = 500;
}  // namespace

herald::Result<PageRequest> parse_page_request(const herald::http::Request& req) {
  PageRequest page;
  if (auto limit = req.query_param("limit")) {
    std::size_t n = 0;
    const char* end = limit->data() + limit->size();
    auto [ptr, ec] = std::from_chars(limit->data(), end, n);
    if (limit->empty() || ec != std::errc() || ptr != end || n < 1 || n > kMaxPageLimit) {
      return herald::Status::invalid_argument("query parameter 'limit' must be an integer from 1 to " +
                                              std::to_string(kMaxPageLimit));
    }
    page.limit = n;
  }
  if (auto after = req.query_param("after")) {
    if (!herald::is_uuid(*after)) {
      return herald::Status::invalid_argument("query parameter 'after' must be the 'next' cursor of an earlier page");
    }
    page.after = std::move(*after);
  }
  return page;
}

herald::Result<DocumentPage> read_page(herald::StoreTransaction& tx, std::string_view collection,
                                       const PageRequest& page,
                                       const std::function<bool(const nlohmann::json&)>& keep) {
  DocumentPage out;
  std::string cursor = page.after;
  for (;;) {
    // Unfiltered, exactly one document more than still fits tells whether a next page exists.
    const std::size_t want = keep ? kScanBatch : page.limit + 1 - out.items.size();
    auto batch = tx.list_documents(collection, cursor, want);
    if (!batch) return batch.status();
    for (auto& d : *batch) {
      cursor = d.key;
      auto j = nlohmann::json::parse(d.json, nullptr, false);
      if (j.is_discarded()) {
        return herald::Status::corruption("document " + std::string(collection) + "/" + d.key + " is not JSON");
      }
      if (keep && !keep(j)) continue;
      if (out.items.size() == page.limit) {
        out.next = out.items.back().key;
        return out;
      }
      out.items.push_back({std::move(d.key), std::move(j)});
    }
    if (batch->size() < want) return out;  // the collection ends here
  }
}

}  // namespace shop
