#include <spdlog/spdlog.h>

#include <exception>

#include "herald/aggregate.h"

namespace herald {

namespace {
constexpr std::size_t kReadPage = 512;
}  // namespace

Status AggregateRoot::record_data(EventData data) {
  RecordedEvent view;
  view.stream_id = stream_id_;
  view.version = version_ + static_cast<std::int64_t>(pending_.size()) + 1;
  view.id = data.id;
  view.type = data.type;
  view.payload = data.payload;
  view.metadata = data.metadata;
  auto payload = nlohmann::json::parse(data.payload, nullptr, false);
  if (payload.is_discarded()) return Status::invalid_argument("recorded event payload is not JSON");
  Status s;
  try {
    s = apply(view, payload);
  } catch (const std::exception& ex) {
    s = Status::internal(std::string("apply threw: ") + ex.what());
  }
  if (!s) return s;
  pending_.push_back(std::move(data));
  return {};
}

AggregateStore::AggregateStore(EventStore& store, RepositoryOptions options)
    : store_(store), options_(std::move(options)) {}

std::string AggregateStore::stream_for(std::string_view id) const {
  return options_.category + "-" + std::string(id);
}

Status AggregateStore::load_snapshot(const std::string& stream, AggregateRoot& aggregate) const {
  std::string text;
  Status read = store_.transact([&](StoreTransaction& tx) -> Status {
    auto doc = tx.get_document(kSnapshotCollection, stream);
    if (!doc) return doc.status();
    text = std::move(*doc);
    return {};
  });
  if (read.code() == StatusCode::not_found) return {};
  if (!read) return read;
  auto j = nlohmann::json::parse(text, nullptr, false);
  // A snapshot is only a cache: one we cannot use is skipped and the stream is replayed in full.
  if (j.is_discarded() || !j.is_object() || !j.contains("version") || !j["version"].is_number_integer() ||
      !j.contains("schema") || !j["schema"].is_number_integer() || !j.contains("state")) {
    spdlog::warn("snapshot of {} is malformed; replaying the stream", stream);
    return {};
  }
  if (j["schema"].get<int>() != aggregate.snapshot_schema()) return {};
  Status restored;
  try {
    restored = aggregate.restore(j["state"]);
  } catch (const std::exception& ex) {
    restored = Status::corruption(ex.what());
  }
  if (!restored) {
    spdlog::warn("snapshot of {} not restored ({}); replaying the stream", stream, restored.to_string());
    return {};
  }
  aggregate.version_ = j["version"].get<std::int64_t>();
  aggregate.snapshot_version_ = aggregate.version_;
  return {};
}

Status AggregateStore::load(std::string_view id, AggregateRoot& aggregate) const {
  if (id.empty()) return Status::invalid_argument(options_.category + " id must not be empty");
  aggregate.id_ = std::string(id);
  aggregate.stream_id_ = stream_for(id);
  aggregate.version_ = kNoStreamVersion;
  aggregate.replayed_ = 0;
  aggregate.snapshot_version_.reset();
  aggregate.pending_.clear();
  if (options_.snapshot_every > 0) HERALD_RETURN_IF_ERROR(load_snapshot(aggregate.stream_id_, aggregate));

  for (;;) {
    auto page = store_.read_stream(aggregate.stream_id_, aggregate.version_ + 1, kReadPage,
                                   ReadDirection::forwards);
    if (!page) {
      if (page.status().code() == StatusCode::not_found) return {};
      return page.status();
    }
    for (RecordedEvent& e : *page) {
      if (options_.upcasters) HERALD_RETURN_IF_ERROR(options_.upcasters->upcast(e));
      auto payload = nlohmann::json::parse(e.payload, nullptr, false);
      if (payload.is_discarded()) return Status::corruption("event " + e.id + ": payload is not JSON");
      Status applied;
      try {
        applied = aggregate.apply(e, payload);
      } catch (const std::exception& ex) {
        applied = Status::corruption("event " + e.id + " (" + e.type + ") does not apply: " + ex.what());
      }
      if (!applied) return applied;
      aggregate.version_ = e.version;
      ++aggregate.replayed_;
    }
    if (page->size() < kReadPage) return {};
  }
}

void AggregateStore::maybe_snapshot(AggregateRoot& aggregate, std::int64_t old_version) const {
  const std::int64_t n = options_.snapshot_every;
  if (n <= 0) return;
  // Versions are 0-based, so after version v the stream holds v + 1 events.
  if ((aggregate.version_ + 1) / n == (old_version + 1) / n) return;
  std::optional<nlohmann::json> state;
  try {
    state = aggregate.snapshot();
  } catch (const std::exception& ex) {
    spdlog::warn("snapshot of {} failed: {}", aggregate.stream_id_, ex.what());
    return;
  }
  if (!state) return;
  nlohmann::json doc = {{"schema", aggregate.snapshot_schema()},
                        {"version", aggregate.version_},
                        {"state", std::move(*state)}};
  const std::string text = doc.dump();
  const std::int64_t version = aggregate.version_;
  Status s = store_.transact([&](StoreTransaction& tx) -> Status {
    // A slower writer must not replace a newer snapshot with an older one.
    auto existing = tx.get_document(kSnapshotCollection, aggregate.stream_id_);
    if (existing) {
      auto j = nlohmann::json::parse(*existing, nullptr, false);
      if (!j.is_discarded() && j.is_object() && j.contains("version") &&
          j["version"].is_number_integer() && j["version"].get<std::int64_t>() >= version) {
        return {};
      }
    } else if (existing.status().code() != StatusCode::not_found) {
      return existing.status();
    }
    return tx.put_document(kSnapshotCollection, aggregate.stream_id_, text);
  });
  if (!s) spdlog::warn("snapshot of {} not written: {}", aggregate.stream_id_, s.to_string());
}

Result<AppendResult> AggregateStore::save(AggregateRoot& aggregate, const EventMetadata& metadata) const {
  if (aggregate.pending_.empty()) return AppendResult{-1, -1, aggregate.version_};
  if (aggregate.stream_id_.empty()) return Status::invalid_argument("aggregate was never loaded");
  std::vector<EventData> events = aggregate.pending_;
  for (EventData& e : events) {
    if (e.metadata.correlation_id.empty()) e.metadata.correlation_id = metadata.correlation_id;
    if (e.metadata.causation_id.empty()) e.metadata.causation_id = metadata.causation_id;
    if (e.metadata.actor.empty()) e.metadata.actor = metadata.actor;
    for (const auto& [k, v] : metadata.extra) e.metadata.extra.emplace(k, v);
  }
  const ExpectedVersion expected = aggregate.is_new() ? ExpectedVersion::no_stream()
                                                      : ExpectedVersion::exact(aggregate.version_);
  auto r = store_.append(aggregate.stream_id_, expected, std::move(events));
  if (!r) return r.status();
  const std::int64_t old_version = aggregate.version_;
  aggregate.version_ = r->stream_version;
  aggregate.pending_.clear();
  maybe_snapshot(aggregate, old_version);
  return r;
}

}  // namespace herald
