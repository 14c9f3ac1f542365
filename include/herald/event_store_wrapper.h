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

// Forwards each EventLog method to a log and each ProcessState method to a process state,
// unchanged: same results, same errors, same thread-safety. Made from one store (both halves are
// it) or from a pair (what combine_stores() returns). Owns a share of each (REQUIRES: non-null).
// close() closes both.
class EventStoreWrapper : public EventStore {
 public:
  explicit EventStoreWrapper(std::shared_ptr<EventStore> inner) : log_(inner), state_(inner) {}
  EventStoreWrapper(std::shared_ptr<EventLog> log, std::shared_ptr<ProcessState> state)
      : log_(std::move(log)), state_(std::move(state)) {}

  // The wrapped halves.
  EventLog& inner_log() const { return *log_; }
  ProcessState& inner_state() const { return *state_; }

  std::string url() const override { return log_->url(); }
  Result<AppendResult> append(std::string_view stream_id, ExpectedVersion expected,
                              std::vector<EventData> events) override {
    return log_->append(stream_id, expected, std::move(events));
  }
  Result<std::vector<RecordedEvent>> read_stream(std::string_view stream_id, std::int64_t from_version,
                                                 std::size_t max_count, ReadDirection direction) override {
    return log_->read_stream(stream_id, from_version, max_count, direction);
  }
  Result<AllSlice> read_all(std::int64_t from_position, std::size_t max_count,
                            const ReadFilter& filter = {}) override {
    return log_->read_all(from_position, max_count, filter);
  }
  Result<SharedSlice> read_all_shared(std::int64_t from_position, std::size_t max_count,
                                      const ReadFilter& filter = {}) override {
    return log_->read_all_shared(from_position, max_count, filter);
  }
  Result<std::int64_t> stream_version(std::string_view stream_id) override { return log_->stream_version(stream_id); }
  std::int64_t head_position() const override { return log_->head_position(); }
  Result<StoreStats> stats() override { return log_->stats(); }
  Status wait_for(std::int64_t after_position, std::chrono::milliseconds timeout) override {
    return log_->wait_for(after_position, timeout);
  }
  Status transact(const std::function<Status(StoreTransaction&)>& work) override { return state_->transact(work); }
  Result<std::string> read_document(std::string_view collection, std::string_view key) override {
    return state_->read_document(collection, key);
  }
  Result<std::vector<Document>> read_documents(std::string_view collection, std::string_view after_key,
                                               std::size_t limit) override {
    return state_->read_documents(collection, after_key, limit);
  }
  Result<std::int64_t> load_checkpoint(std::string_view subscription) override {
    return state_->load_checkpoint(subscription);
  }
  Status save_checkpoint(std::string_view subscription, std::int64_t position) override {
    return state_->save_checkpoint(subscription, position);
  }
  Result<std::int64_t> add_dead_letter(const DeadLetter& entry) override { return state_->add_dead_letter(entry); }
  Result<DeadLetter> get_dead_letter(std::int64_t id) override { return state_->get_dead_letter(id); }
  Result<std::vector<DeadLetter>> list_dead_letters(std::string_view handler = {}) override {
    return state_->list_dead_letters(handler);
  }
  Status update_dead_letter(const DeadLetter& entry) override { return state_->update_dead_letter(entry); }
  Status remove_dead_letter(std::int64_t id) override { return state_->remove_dead_letter(id); }
  Result<LeaseGrant> try_acquire_lease(std::string_view name, std::string_view owner,
                                       std::chrono::milliseconds ttl) override {
    return state_->try_acquire_lease(name, owner, ttl);
  }
  Status release_lease(std::string_view name, std::string_view owner) override {
    return state_->release_lease(name, owner);
  }
  void close() override {
    log_->close();
    state_->close();
  }

 private:
  std::shared_ptr<EventLog> log_;
  std::shared_ptr<ProcessState> state_;
};

}  // namespace herald
