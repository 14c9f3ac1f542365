// The in-memory backend: a vector of events indexed by position, a per-stream vector of positions
// (index = version), and an id index. Used by tests and by the bus dispatch benchmark, so the hot
// paths (append, read_stream, read_all by stream) avoid scanning the whole log.
//
// Idempotent retries. An append whose ids are all already stored is a retry of an earlier append
// when (1) its first id starts a stored append batch of the same stream, (2) that batch holds
// exactly these ids in this order, and (3) `expected` would have matched the stream as it was just
// before that batch was written (version first_version - 1). So a retry with exact(n) matches a
// batch written at n+1..; no_stream matches a batch that created the stream; stream_exists a batch
// that did not create it; any matches every batch. Such a retry returns the batch's AppendResult
// and writes nothing. Any other append that carries a stored id fails: wrong_expected_version when
// `expected` does not match the stream now, already_exists otherwise.
#include "store/memory/memory_event_store.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <tuple>
#include <string>
#include <unordered_map>
#include <utility>

#include "core/json_codec.h"
#include "store/head_signal.h"
#include "store/memory/memory_chunked_log.h"
#include "store/validation.h"

namespace herald::detail {
namespace {

using memory::ChunkedLog;
using memory::Slot;
using memory::StringMap;

struct Lease {
  std::string owner;
  Timestamp expires_at{};  // {} once released
  std::int64_t token = 0;  // of the current (or last) holding; kept when released
};

// A checkpoint write staged by a transaction: a forward-only save, or a deliberate reset.
struct StagedCheckpoint {
  std::int64_t position = 0;
  bool reset = false;
};

using Collection = std::map<std::string, std::string, std::less<>>;

// Most events one read_all examines (matching or not) before it returns a partial page.
constexpr std::int64_t kMaxExaminedPerRead = 1 << 16;

Status closed_error() { return Status::failed_precondition("the memory store is closed"); }

class MemoryEventStore;

// Stages every write and applies it to the store only when the transaction's work returns ok.
// Reads see the committed state overlaid with this transaction's staged writes.
class MemoryTransaction final : public StoreTransaction {
 public:
  explicit MemoryTransaction(MemoryEventStore& store) : store_(store) {}

  Result<InboxOutcome> inbox_record(std::string_view handler, std::string_view event_id) override;
  Result<std::string> get_document(std::string_view collection, std::string_view key) override;
  Status put_document(std::string_view collection, std::string_view key,
                      std::string_view json) override;
  Status delete_document(std::string_view collection, std::string_view key) override;
  Result<std::vector<Document>> list_documents(std::string_view collection,
                                               std::string_view after_key,
                                               std::size_t limit) override;
  Status save_checkpoint(std::string_view subscription, std::int64_t position) override;
  Status reset_checkpoint(std::string_view subscription, std::int64_t position) override;
  Result<std::int64_t> add_dead_letter(const DeadLetter& entry) override;
  Status check_lease(std::string_view lease, std::int64_t token) override;

 private:
  friend class MemoryEventStore;
  MemoryEventStore& store_;
  std::set<std::pair<std::string, std::string>, std::less<>> inbox_;
  // (collection, key) -> new json, or nullopt for a delete.
  std::map<std::pair<std::string, std::string>, std::optional<std::string>, std::less<>> docs_;
  std::map<std::string, StagedCheckpoint, std::less<>> checkpoints_;
  std::vector<DeadLetter> dead_letters_;  // ids assigned when staged
  // Leases checked, checked again under the store's mutex at commit: an acquisition does not
  // wait for transactions here, so the commit is where "no one acquired it since" must hold.
  std::map<std::string, std::int64_t, std::less<>> fences_;
};

class MemoryEventStore final : public EventStore {
 public:
  explicit MemoryEventStore(const StoreOptions& options)
      : options_(options), clock_(options.clock ? options.clock : system_clock()) {}
  ~MemoryEventStore() override { close(); }

  std::string url() const override { return "memory:"; }

  Result<AppendResult> append(std::string_view stream_id, ExpectedVersion expected,
                              std::vector<EventData> events) override {
    // Validation (JSON parsing, id generation) runs before the lock: it touches no shared state.
    HERALD_RETURN_IF_ERROR(prepare_append(stream_id, expected, events, options_));
    AppendResult result;
    {
      std::lock_guard lock(mu_);
      if (closed_) return closed_error();
      auto sit = streams_.find(stream_id);
      const std::int64_t current =
          sit == streams_.end() ? kNoStreamVersion
                                : static_cast<std::int64_t>(sit->second.size()) - 1;
      const auto first = static_cast<std::int64_t>(log_.size());
      // The common case, new ids and a matching version, costs one index lookup per event: the
      // ids are claimed for their positions here, and given back if one was taken already.
      log_.reserve_more(events.size());  // before any change, so nothing below can throw half-way
      bool any_stored = true;
      if (expected.matches(current)) any_stored = !claim_ids(events, first);
      if (any_stored) {
        if (auto retry = find_retry(stream_id, expected, events)) return *retry;
      }
      if (!expected.matches(current)) {
        return Status::wrong_expected_version(
            current, "stream '" + std::string(stream_id) + "' is at version " +
                         std::to_string(current) + ", expected " + expected.to_string());
      }
      if (any_stored) {
        for (const EventData& e : events) {
          auto it = ids_.find(e.id);
          if (it != ids_.end()) {
            const RecordedEvent& other = log_[static_cast<std::size_t>(it->second)].event;
            return Status::already_exists("event id " + e.id + " is already stored in stream '" +
                                          other.stream_id + "' at version " +
                                          std::to_string(other.version));
          }
        }
      }

      // Nothing below can fail, so the append is all-or-nothing.
      if (sit == streams_.end()) sit = streams_.emplace(std::string(stream_id), std::vector<std::int64_t>{}).first;
      std::vector<std::int64_t>& versions = sit->second;
      const Timestamp now = clock_->now();
      const auto last = first + static_cast<std::int64_t>(events.size()) - 1;
      for (EventData& e : events) {
        Slot slot;
        slot.batch_first = first;
        slot.batch_last = last;
        RecordedEvent& r = slot.event;
        r.stream_id = std::string(stream_id);
        r.version = static_cast<std::int64_t>(versions.size());
        r.position = static_cast<std::int64_t>(log_.size());
        r.recorded_at = now;
        r.id = std::move(e.id);
        r.type = std::move(e.type);
        r.payload = std::move(e.payload);
        r.metadata = std::move(e.metadata);
        ++events_by_type_[r.type];
        versions.push_back(r.position);
        log_.push_back(std::move(slot));
      }
      result = AppendResult{first, last, static_cast<std::int64_t>(versions.size()) - 1};
      head_.publish(last);
    }
    return result;
  }

  Result<std::vector<RecordedEvent>> read_stream(std::string_view stream_id, std::int64_t from_version,
                                                 std::size_t max_count,
                                                 ReadDirection direction) override {
    HERALD_RETURN_IF_ERROR(validate_read_stream(stream_id, from_version));
    std::lock_guard lock(mu_);
    if (closed_) return closed_error();
    auto sit = streams_.find(stream_id);
    if (sit == streams_.end()) {
      return Status::not_found("stream '" + std::string(stream_id) + "' does not exist");
    }
    const std::vector<std::int64_t>& versions = sit->second;
    const auto size = static_cast<std::int64_t>(versions.size());
    std::vector<RecordedEvent> out;
    if (direction == ReadDirection::forwards) {
      for (std::int64_t v = from_version; v < size && out.size() < max_count; ++v) {
        out.push_back(log_[static_cast<std::size_t>(versions[static_cast<std::size_t>(v)])].event);
      }
    } else {
      for (std::int64_t v = std::min(from_version, size - 1); v >= 0 && out.size() < max_count; --v) {
        out.push_back(log_[static_cast<std::size_t>(versions[static_cast<std::size_t>(v)])].event);
      }
    }
    return out;
  }

  Result<AllSlice> read_all(std::int64_t from_position, std::size_t max_count,
                            const ReadFilter& filter) override {
    HERALD_RETURN_IF_ERROR(validate_read_all(from_position));
    std::lock_guard lock(mu_);
    if (closed_) return closed_error();
    const auto end = static_cast<std::int64_t>(log_.size());  // head + 1
    // A sparse filter over a long log would otherwise hold mu_ (and stall appends) for the whole
    // scan; stopping early is allowed because next_position still moves forward. A stream filter
    // walks only that stream's positions, so it needs no such bound.
    const std::int64_t limit = !filter.stream_id.empty() || from_position >= end - kMaxExaminedPerRead
                                   ? end
                                   : from_position + kMaxExaminedPerRead;
    AllSlice slice;
    slice.next_position = scan(from_position, limit, max_count, filter,
                               [&](const RecordedEvent& e) { slice.events.push_back(e); });
    slice.end_of_log = slice.next_position >= end;
    return slice;
  }

  // Hands out the store's own events: a page never crosses a chunk, so one chunk owns it all.
  Result<SharedSlice> read_all_shared(std::int64_t from_position, std::size_t max_count,
                                      const ReadFilter& filter) override {
    HERALD_RETURN_IF_ERROR(validate_read_all(from_position));
    std::lock_guard lock(mu_);
    if (closed_) return closed_error();
    const auto end = static_cast<std::int64_t>(log_.size());  // head + 1
    SharedSlice slice;
    if (from_position >= end) {
      slice.next_position = from_position;
      slice.end_of_log = true;
      return slice;
    }
    constexpr auto kChunk = static_cast<std::int64_t>(ChunkedLog::kChunkSlots);
    const std::int64_t chunk_end = std::min(end, (from_position / kChunk + 1) * kChunk);
    slice.events.reserve(std::min(max_count, static_cast<std::size_t>(chunk_end - from_position)));
    slice.next_position = scan(from_position, chunk_end, max_count, filter,
                               [&](const RecordedEvent& e) { slice.events.push_back(&e); });
    slice.owner = log_.chunk_of(static_cast<std::size_t>(from_position));
    slice.end_of_log = slice.next_position >= end;
    return slice;
  }

  Result<std::int64_t> stream_version(std::string_view stream_id) override {
    HERALD_RETURN_IF_ERROR(validate_stream_id(stream_id));
    std::lock_guard lock(mu_);
    if (closed_) return closed_error();
    auto sit = streams_.find(stream_id);
    if (sit == streams_.end()) return kNoStreamVersion;
    return static_cast<std::int64_t>(sit->second.size()) - 1;
  }

  std::int64_t head_position() const override { return head_.head(); }

  Result<StoreStats> stats() override {
    std::lock_guard lock(mu_);
    if (closed_) return closed_error();
    StoreStats s;
    s.total_events = static_cast<std::int64_t>(log_.size());
    s.stream_count = static_cast<std::int64_t>(streams_.size());
    s.events_by_type.insert(events_by_type_.begin(), events_by_type_.end());
    if (!log_.empty()) {
      s.first_position = 0;
      s.last_position = static_cast<std::int64_t>(log_.size()) - 1;
      s.first_recorded_at = log_.front().event.recorded_at;
      s.last_recorded_at = log_.back().event.recorded_at;
    }
    return s;
  }

  Status wait_for(std::int64_t after_position, std::chrono::milliseconds timeout) override {
    return head_.wait_for(after_position, timeout);
  }

  Status transact(const std::function<Status(StoreTransaction&)>& work) override {
    // txn_mu_ serialises transactions so that a transaction's reads stay valid until it commits;
    // it is not held by anything else, so `work` may still call the store's other methods.
    std::lock_guard txn_lock(txn_mu_);
    {
      std::lock_guard lock(mu_);
      if (closed_) return closed_error();
    }
    MemoryTransaction txn(*this);
    Status status;
    try {
      status = work(txn);
    } catch (const std::exception& e) {
      return Status::internal(std::string("transaction work threw: ") + e.what());
    } catch (...) {
      return Status::internal("transaction work threw a non-standard exception");
    }
    if (!status.is_ok()) return status;
    std::lock_guard lock(mu_);
    if (closed_) return closed_error();
    for (const auto& [lease, token] : txn.fences_) HERALD_RETURN_IF_ERROR(fence_locked(lease, token));
    for (const auto& d : txn.dead_letters_) {
      if (auto existing = find_dead_letter_locked(d.handler, d.event_id)) return dead_letter_exists(d, *existing);
    }
    for (auto& d : txn.dead_letters_) dead_letters_.emplace(d.id, std::move(d));
    for (const auto& key : txn.inbox_) inbox_.insert(key);
    for (auto& [key, json] : txn.docs_) {
      if (json) {
        documents_[key.first].insert_or_assign(key.second, std::move(*json));
      } else if (auto c = documents_.find(key.first); c != documents_.end()) {
        c->second.erase(key.second);
      }
    }
    for (const auto& [name, staged] : txn.checkpoints_) put_checkpoint_locked(name, staged);
    return {};
  }

  Result<std::int64_t> load_checkpoint(std::string_view subscription) override {
    HERALD_RETURN_IF_ERROR(validate_checkpoint_name(subscription));
    std::lock_guard lock(mu_);
    if (closed_) return closed_error();
    auto it = checkpoints_.find(subscription);
    if (it == checkpoints_.end()) {
      return Status::not_found("no checkpoint for subscription '" + std::string(subscription) + "'");
    }
    return it->second;
  }

  Status save_checkpoint(std::string_view subscription, std::int64_t position) override {
    HERALD_RETURN_IF_ERROR(validate_checkpoint(subscription, position));
    std::lock_guard lock(mu_);
    if (closed_) return closed_error();
    put_checkpoint_locked(subscription, StagedCheckpoint{position, false});
    return {};
  }

  Result<std::int64_t> add_dead_letter(const DeadLetter& entry) override {
    HERALD_RETURN_IF_ERROR(validate_dead_letter(entry));
    std::lock_guard lock(mu_);
    if (closed_) return closed_error();
    if (auto existing = find_dead_letter_locked(entry.handler, entry.event_id)) return dead_letter_exists(entry, *existing);
    DeadLetter stored = entry;
    stored.id = next_dead_letter_id_++;
    dead_letters_.emplace(stored.id, stored);
    return stored.id;
  }

  Result<DeadLetter> get_dead_letter(std::int64_t id) override {
    std::lock_guard lock(mu_);
    if (closed_) return closed_error();
    auto it = dead_letters_.find(id);
    if (it == dead_letters_.end()) return dead_letter_not_found(id);
    return it->second;
  }

  Result<std::vector<DeadLetter>> list_dead_letters(std::string_view handler) override {
    std::vector<DeadLetter> out;
    {
      std::lock_guard lock(mu_);
      if (closed_) return closed_error();
      for (const auto& [id, d] : dead_letters_) {
        if (handler.empty() || d.handler == handler) out.push_back(d);
      }
    }
    std::sort(out.begin(), out.end(), [](const DeadLetter& a, const DeadLetter& b) {
      return std::tie(a.handler, a.position, a.id) < std::tie(b.handler, b.position, b.id);
    });
    return out;
  }

  Status update_dead_letter(const DeadLetter& entry) override {
    std::lock_guard lock(mu_);
    if (closed_) return closed_error();
    auto it = dead_letters_.find(entry.id);
    if (it == dead_letters_.end()) return dead_letter_not_found(entry.id);
    it->second.attempts = entry.attempts;
    it->second.parked = entry.parked;
    it->second.last_error = entry.last_error;
    it->second.last_failed_at = entry.last_failed_at;
    return {};
  }

  Status remove_dead_letter(std::int64_t id) override {
    std::lock_guard lock(mu_);
    if (closed_) return closed_error();
    if (dead_letters_.erase(id) == 0) return dead_letter_not_found(id);
    return {};
  }

  Result<LeaseGrant> try_acquire_lease(std::string_view name, std::string_view owner,
                                       std::chrono::milliseconds ttl) override {
    HERALD_RETURN_IF_ERROR(validate_lease(name, owner, ttl));
    const Timestamp now = clock_->now();
    std::lock_guard lock(mu_);
    if (closed_) return closed_error();
    auto it = leases_.find(name);
    if (it == leases_.end()) it = leases_.emplace(std::string(name), Lease{}).first;
    Lease& lease = it->second;
    const bool live = lease.expires_at > now;
    if (live && lease.owner != owner) return LeaseGrant{};
    if (!live || lease.owner != owner) ++lease.token;  // a new holding
    lease.owner = std::string(owner);
    lease.expires_at = now + std::chrono::duration_cast<std::chrono::microseconds>(ttl);
    return LeaseGrant{LeaseOutcome::acquired, lease.token};
  }

  Status release_lease(std::string_view name, std::string_view owner) override {
    HERALD_RETURN_IF_ERROR(validate_lease_names(name, owner));
    std::lock_guard lock(mu_);
    if (closed_) return closed_error();
    auto it = leases_.find(name);
    if (it != leases_.end() && it->second.owner == owner) it->second.expires_at = Timestamp{};
    return {};
  }

  void close() override {
    {
      std::lock_guard lock(mu_);
      if (closed_) return;
      closed_ = true;
    }
    head_.close();
  }

 private:
  friend class MemoryTransaction;

  // REQUIRES: mu_ held (every *_locked helper).
  Status fence_locked(std::string_view lease, std::int64_t token) const {
    auto it = leases_.find(lease);
    if (it != leases_.end() && it->second.token == token) return {};
    return lease_lost_error(lease, token, it == leases_.end() ? 0 : it->second.token);
  }

  void put_checkpoint_locked(std::string_view name, const StagedCheckpoint& staged) {
    auto it = checkpoints_.find(name);
    if (it == checkpoints_.end()) {
      checkpoints_.emplace(std::string(name), staged.position);
    } else if (staged.reset || staged.position > it->second) {
      it->second = staged.position;
    }
  }

  std::optional<std::int64_t> find_dead_letter_locked(std::string_view handler, std::string_view event_id) const {
    for (const auto& [id, d] : dead_letters_) {
      if (d.handler == handler && d.event_id == event_id) return id;
    }
    return std::nullopt;
  }

  static Status dead_letter_exists(const DeadLetter& entry, std::int64_t id) {
    return Status::already_exists("event " + entry.event_id + " is already dead-lettered for '" + entry.handler +
                                  "' (id " + std::to_string(id) + ")");
  }

  static Status dead_letter_not_found(std::int64_t id) {
    return Status::not_found("no dead letter with id " + std::to_string(id));
  }

  // Calls visit(event) for the events matching `filter` at positions [from, limit), at most
  // max_count of them, in position order. Returns where the next read starts: past every event
  // examined. A stream filter walks only that stream's positions; the others are skipped over as
  // examined. REQUIRES: mu_ held.
  template <class Visit>
  std::int64_t scan(std::int64_t from, std::int64_t limit, std::size_t max_count, const ReadFilter& filter,
                    Visit&& visit) const {
    std::size_t taken = 0;
    if (!filter.stream_id.empty()) {
      auto sit = streams_.find(filter.stream_id);
      if (sit == streams_.end()) return std::max(from, limit);
      const std::vector<std::int64_t>& ps = sit->second;
      for (auto it = std::lower_bound(ps.begin(), ps.end(), from); it != ps.end() && *it < limit; ++it) {
        if (taken == max_count) return *it;
        const RecordedEvent& e = log_[static_cast<std::size_t>(*it)].event;
        if (filter.matches(e)) {
          visit(e);
          ++taken;
        }
      }
      return std::max(from, limit);
    }
    std::int64_t next = from;
    for (; next < limit && taken < max_count; ++next) {
      const RecordedEvent& e = log_[static_cast<std::size_t>(next)].event;
      if (filter.matches(e)) {
        visit(e);
        ++taken;
      }
    }
    return next;
  }

  // Adds every id of `events` to ids_, at positions first, first + 1, …; true when all were new.
  // Otherwise removes those it added and returns false. REQUIRES: mu_ held.
  bool claim_ids(const std::vector<EventData>& events, std::int64_t first) {
    std::size_t added = 0;
    for (; added < events.size(); ++added) {
      if (!ids_.try_emplace(events[added].id, first + static_cast<std::int64_t>(added)).second) break;
    }
    if (added == events.size()) return true;
    for (std::size_t i = 0; i < added; ++i) ids_.erase(events[i].id);
    return false;
  }

  // The earlier append that `events` retries (see the file comment), if any. REQUIRES: mu_ held.
  std::optional<AppendResult> find_retry(std::string_view stream_id, ExpectedVersion expected,
                                         const std::vector<EventData>& events) const {
    auto it = ids_.find(events.front().id);
    if (it == ids_.end()) return std::nullopt;
    const Slot& head = log_[static_cast<std::size_t>(it->second)];
    if (head.event.stream_id != stream_id || head.batch_first != head.event.position) return std::nullopt;
    if (head.batch_last - head.batch_first + 1 != static_cast<std::int64_t>(events.size())) {
      return std::nullopt;
    }
    for (std::size_t i = 0; i < events.size(); ++i) {
      if (log_[static_cast<std::size_t>(head.batch_first) + i].event.id != events[i].id) return std::nullopt;
    }
    if (!expected.matches(head.event.version - 1)) return std::nullopt;
    const Slot& tail = log_[static_cast<std::size_t>(head.batch_last)];
    return AppendResult{head.batch_first, head.batch_last, tail.event.version};
  }

  // ---- constant after construction ----
  const StoreOptions options_;
  const std::shared_ptr<Clock> clock_;

  // Serialises transact() calls (held while `work` runs); guards no data. Always taken before
  // mu_, never while holding it.
  std::mutex txn_mu_;

  // mu_ guards every member below it but head_: the log and its indexes, process state, leases
  // and closed_.
  mutable std::mutex mu_;
  ChunkedLog log_;                               // index = global position
  StringMap<std::vector<std::int64_t>> streams_;  // stream id -> positions, index = version
  StringMap<std::int64_t> ids_;                   // event id -> position
  std::map<std::string, std::int64_t, std::less<>> events_by_type_;
  std::set<std::pair<std::string, std::string>, std::less<>> inbox_;  // (handler, event id)
  std::map<std::string, Collection, std::less<>> documents_;
  std::map<std::string, std::int64_t, std::less<>> checkpoints_;
  std::map<std::int64_t, DeadLetter> dead_letters_;
  std::int64_t next_dead_letter_id_ = 1;
  std::map<std::string, Lease, std::less<>> leases_;
  bool closed_ = false;

  // The last position and its waiters, readable without mu_ for head_position() and wait_for.
  // Published under mu_ after the events it covers are in log_ (lock order: mu_, then head_'s).
  HeadSignal head_{"memory"};
};

// ---- MemoryTransaction ----

Result<InboxOutcome> MemoryTransaction::inbox_record(std::string_view handler, std::string_view event_id) {
  HERALD_RETURN_IF_ERROR(validate_inbox_record(handler, event_id));
  std::pair<std::string, std::string> key{std::string(handler), std::string(event_id)};
  if (inbox_.count(key) != 0) return InboxOutcome::already_recorded;
  {
    std::lock_guard lock(store_.mu_);
    if (store_.inbox_.count(key) != 0) return InboxOutcome::already_recorded;
  }
  inbox_.insert(std::move(key));
  return InboxOutcome::recorded;
}

Result<std::string> MemoryTransaction::get_document(std::string_view collection, std::string_view key) {
  HERALD_RETURN_IF_ERROR(validate_document_key(collection, key));
  auto staged = docs_.find(std::pair<std::string, std::string>(collection, key));
  if (staged != docs_.end()) {
    if (staged->second) return *staged->second;
  } else {
    std::lock_guard lock(store_.mu_);
    auto c = store_.documents_.find(collection);
    if (c != store_.documents_.end()) {
      auto d = c->second.find(key);
      if (d != c->second.end()) return d->second;
    }
  }
  return Status::not_found("no document '" + std::string(key) + "' in collection '" +
                           std::string(collection) + "'");
}

Status MemoryTransaction::put_document(std::string_view collection, std::string_view key,
                                       std::string_view json) {
  HERALD_RETURN_IF_ERROR(validate_document(collection, key, json));
  docs_.insert_or_assign(std::pair<std::string, std::string>(collection, key), std::string(json));
  return {};
}

Status MemoryTransaction::delete_document(std::string_view collection, std::string_view key) {
  HERALD_RETURN_IF_ERROR(validate_document_key(collection, key));
  docs_.insert_or_assign(std::pair<std::string, std::string>(collection, key), std::nullopt);
  return {};
}

Result<std::vector<Document>> MemoryTransaction::list_documents(std::string_view collection,
                                                                std::string_view after_key,
                                                                std::size_t limit) {
  HERALD_RETURN_IF_ERROR(validate_collection(collection));
  // Committed documents overlaid with this transaction's staged writes, in key order.
  std::map<std::string, std::string, std::less<>> merged;
  {
    std::lock_guard lock(store_.mu_);
    auto c = store_.documents_.find(collection);
    if (c != store_.documents_.end()) {
      // Staged deletes can remove at most docs_.size() committed entries from the first page.
      const std::size_t cap = limit > SIZE_MAX - docs_.size() ? SIZE_MAX : limit + docs_.size();
      for (auto d = c->second.upper_bound(after_key); d != c->second.end(); ++d) {
        if (merged.size() >= cap) break;
        merged.emplace(d->first, d->second);
      }
    }
  }
  for (const auto& [k, json] : docs_) {
    if (k.first != collection || k.second <= after_key) continue;
    if (json) {
      merged.insert_or_assign(k.second, *json);
    } else {
      merged.erase(k.second);
    }
  }
  std::vector<Document> out;
  for (auto& [k, json] : merged) {
    if (out.size() >= limit) break;
    out.push_back(Document{k, json});
  }
  return out;
}

Status MemoryTransaction::save_checkpoint(std::string_view subscription, std::int64_t position) {
  HERALD_RETURN_IF_ERROR(validate_checkpoint(subscription, position));
  auto it = checkpoints_.find(subscription);
  if (it == checkpoints_.end()) {
    checkpoints_.emplace(std::string(subscription), StagedCheckpoint{position, false});
  } else if (position > it->second.position) {
    it->second.position = position;  // a staged reset stays a reset, to the later position
  }
  return {};
}

Status MemoryTransaction::reset_checkpoint(std::string_view subscription, std::int64_t position) {
  HERALD_RETURN_IF_ERROR(validate_checkpoint(subscription, position));
  checkpoints_.insert_or_assign(std::string(subscription), StagedCheckpoint{position, true});
  return {};
}

Result<std::int64_t> MemoryTransaction::add_dead_letter(const DeadLetter& entry) {
  HERALD_RETURN_IF_ERROR(validate_dead_letter(entry));
  for (const auto& d : dead_letters_) {
    if (d.handler == entry.handler && d.event_id == entry.event_id) return MemoryEventStore::dead_letter_exists(entry, d.id);
  }
  std::lock_guard lock(store_.mu_);
  if (auto existing = store_.find_dead_letter_locked(entry.handler, entry.event_id)) {
    return MemoryEventStore::dead_letter_exists(entry, *existing);
  }
  DeadLetter staged = entry;
  staged.id = store_.next_dead_letter_id_++;
  dead_letters_.push_back(staged);
  return staged.id;
}

Status MemoryTransaction::check_lease(std::string_view lease, std::int64_t token) {
  HERALD_RETURN_IF_ERROR(validate_lease_name(lease));
  {
    std::lock_guard lock(store_.mu_);
    HERALD_RETURN_IF_ERROR(store_.fence_locked(lease, token));
  }
  fences_.insert_or_assign(std::string(lease), token);
  return {};
}

}  // namespace

Result<std::unique_ptr<EventStore>> open_memory_store(const StoreOptions& options) {
  return std::unique_ptr<EventStore>(std::make_unique<MemoryEventStore>(options));
}

}  // namespace herald::detail
