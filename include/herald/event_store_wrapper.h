// herald/event_store_wrapper.h — a store that forwards every call to another, for decorators
// (counting, tracing, fault injection in tests) that override only what they change.
//
//   class CountingStore final : public herald::EventStoreWrapper {
//    public:
//     using EventStoreWrapper::EventStoreWrapper;
//     herald::Result<herald::AppendResult> append(std::string_view s, herald::ExpectedVersion e,
//                                                 std::vector<herald::EventData> events) override {
//       auto r = EventStoreWrapper::append(s, e, std::move(events));
//       if (r) ++appends;
//       return r;
//     }
//     std::atomic_int appends{0};
//   };
#pragma once

#include <memory>
#include <utility>

#include "herald/event_store.h"

namespace herald {

// Forwards each EventStore method to `inner`, unchanged: same results, same errors, same
// thread-safety. Owns a share of `inner` (REQUIRES: non-null). close() closes `inner`.
class EventStoreWrapper : public EventStore {
 public:
  explicit EventStoreWrapper(std::shared_ptr<EventStore> inner) : inner_(std::move(inner)) {}

  // The wrapped store.
  EventStore& inner() const { return *inner_; }
  const std::shared_ptr<EventStore>& shared_inner() const { return inner_; }

  std::string url() const override { return inner_->url(); }
  Result<AppendResult> append(std::string_view stream_id, ExpectedVersion expected,
                              std::vector<EventData> events) override {
    return inner_->append(stream_id, expected, std::move(events));
  }
  Result<std::vector<RecordedEvent>> read_stream(std::string_view stream_id, std::int64_t from_version,
                                                 std::size_t max_count, ReadDirection direction) override {
    return inner_->read_stream(stream_id, from_version, max_count, direction);
  }
  Result<AllSlice> read_all(std::int64_t from_position, std::size_t max_count,
                            const ReadFilter& filter = {}) override {
    return inner_->read_all(from_position, max_count, filter);
  }
  Result<SharedSlice> read_all_shared(std::int64_t from_position, std::size_t max_count,
                                      const ReadFilter& filter = {}) override {
    return inner_->read_all_shared(from_position, max_count, filter);
  }
  Result<std::int64_t> stream_version(std::string_view stream_id) override { return inner_->stream_version(stream_id); }
  std::int64_t head_position() const override { return inner_->head_position(); }
  Result<StoreStats> stats() override { return inner_->stats(); }
  Status wait_for(std::int64_t after_position, std::chrono::milliseconds timeout) override {
    return inner_->wait_for(after_position, timeout);
  }
  Status transact(const std::function<Status(StoreTransaction&)>& work) override { return inner_->transact(work); }
  Result<std::string> read_document(std::string_view collection, std::string_view key) override {
    return inner_->read_document(collection, key);
  }
  Result<std::vector<Document>> read_documents(std::string_view collection, std::string_view after_key,
                                               std::size_t limit) override {
    return inner_->read_documents(collection, after_key, limit);
  }
  Result<std::int64_t> load_checkpoint(std::string_view subscription) override {
    return inner_->load_checkpoint(subscription);
  }
  Status save_checkpoint(std::string_view subscription, std::int64_t position) override {
    return inner_->save_checkpoint(subscription, position);
  }
  Result<std::int64_t> add_dead_letter(const DeadLetter& entry) override { return inner_->add_dead_letter(entry); }
  Result<DeadLetter> get_dead_letter(std::int64_t id) override { return inner_->get_dead_letter(id); }
  Result<std::vector<DeadLetter>> list_dead_letters(std::string_view handler = {}) override {
    return inner_->list_dead_letters(handler);
  }
  Status update_dead_letter(const DeadLetter& entry) override { return inner_->update_dead_letter(entry); }
  Status remove_dead_letter(std::int64_t id) override { return inner_->remove_dead_letter(id); }
  Result<bool> try_acquire_lease(std::string_view name, std::string_view owner,
                                 std::chrono::milliseconds ttl) override {
    return inner_->try_acquire_lease(name, owner, ttl);
  }
  Status release_lease(std::string_view name, std::string_view owner) override {
    return inner_->release_lease(name, owner);
  }
  void close() override { inner_->close(); }

 private:
  std::shared_ptr<EventStore> inner_;
};

}  // namespace herald
