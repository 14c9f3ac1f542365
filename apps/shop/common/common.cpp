#include "common/common.h"

#include <algorithm>
#include <cctype>

#include "herald/id.h"

namespace shop {

herald::EventMetadata request_metadata(const herald::http::Request& req) {
  herald::EventMetadata m;
  m.correlation_id = req.request_id;
  m.causation_id = req.request_id;
  m.actor = "http";
  return m;
}

herald::EventMetadata caused_by(const herald::RecordedEvent& cause, std::string_view handler) {
  herald::EventMetadata m;
  m.correlation_id = cause.metadata.correlation_id.empty() ? cause.id : cause.metadata.correlation_id;
  m.causation_id = cause.id;
  m.actor = std::string(handler);
  return m;
}

std::string follow_up_id(std::string_view handler, const herald::RecordedEvent& cause, std::string_view what) {
  std::string name = cause.id;
  if (!what.empty()) {
    name += '/';
    name += what;
  }
  return herald::derived_uuid(handler, name);
}

herald::Result<nlohmann::json> read_document(herald::EventStore& store, std::string_view collection,
                                             std::string_view key) {
  std::string text;
  herald::Status s = store.transact([&](herald::StoreTransaction& tx) -> herald::Status {
    auto doc = tx.get_document(collection, key);
    if (!doc) return doc.status();
    text = std::move(*doc);
    return {};
  });
  if (!s) return s;
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded()) return herald::Status::corruption("document " + std::string(key) + " is not JSON");
  return j;
}

herald::Result<std::vector<nlohmann::json>> list_documents(herald::EventStore& store,
                                                           std::string_view collection, std::size_t limit) {
  std::vector<herald::Document> docs;
  herald::Status s = store.transact([&](herald::StoreTransaction& tx) -> herald::Status {
    docs.clear();
    std::string after;
    while (docs.size() < limit) {
      auto page = tx.list_documents(collection, after, std::min<std::size_t>(500, limit - docs.size()));
      if (!page) return page.status();
      if (page->empty()) break;
      after = page->back().key;
      for (auto& d : *page) docs.push_back(std::move(d));
    }
    return {};
  });
  if (!s) return s;
  std::vector<nlohmann::json> out;
  out.reserve(docs.size());
  for (const auto& d : docs) {
    auto j = nlohmann::json::parse(d.json, nullptr, false);
    if (!j.is_discarded()) out.push_back(std::move(j));
  }
  return out;
}

herald::Status update_document(herald::StoreTransaction& tx, std::string_view collection, std::string_view key,
                               const nlohmann::json& initial,
                               const std::function<void(nlohmann::json&)>& update) {
  nlohmann::json doc = initial;
  auto existing = tx.get_document(collection, key);
  if (existing) {
    doc = nlohmann::json::parse(*existing, nullptr, false);
    if (doc.is_discarded()) {
      return herald::Status::corruption("document " + std::string(collection) + "/" + std::string(key) +
                                        " is not JSON");
    }
  } else if (existing.status().code() != herald::StatusCode::not_found) {
    return existing.status();
  }
  update(doc);
  return tx.put_document(collection, key, doc.dump());
}

herald::Result<std::string> normalize_email(std::string_view email) {
  while (!email.empty() && std::isspace(static_cast<unsigned char>(email.front()))) email.remove_prefix(1);
  while (!email.empty() && std::isspace(static_cast<unsigned char>(email.back()))) email.remove_suffix(1);
  std::string out(email);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  auto at = out.find('@');
  const bool shape_ok = at != std::string::npos && at > 0 && at + 1 < out.size() &&
                        out.find('@', at + 1) == std::string::npos &&
                        out.find('.', at + 1) != std::string::npos && out.back() != '.' &&
                        out.size() <= 250;
  const bool chars_ok = std::none_of(out.begin(), out.end(), [](unsigned char c) {
    return std::isspace(c) || std::iscntrl(c) || c == '<' || c == '>' || c == ',' || c == ';';
  });
  if (!shape_ok || !chars_ok) {
    return herald::Status::invalid_argument("field 'email' must be an e-mail address like name@example.com");
  }
  return out;
}

herald::Status check_id(std::string_view what, std::string_view id) {
  if (!herald::is_uuid(id)) {
    return herald::Status::invalid_argument(std::string(what) + " '" + std::string(id) + "' is not a valid id");
  }
  return {};
}

}  // namespace shop
