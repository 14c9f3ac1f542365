// herald/aggregate.h — the domain kit: event-sourced aggregates, a repository that loads and saves
// them with optimistic concurrency, bounded retry of conflicting decisions, optional snapshots and
// per-type upcasters for old event schemas.
//
// An aggregate is rebuilt from its stream "<category>-<id>" (after the latest snapshot, if any):
// each recorded event is upcast to the current schema and passed to apply(). A command decides by
// calling record(), which applies the event at once and queues it; the repository saves the queue
// with ExpectedVersion::exact(version loaded) (or no_stream for a new aggregate), so a concurrent
// writer makes the save fail with wrong_expected_version instead of being overwritten.
//
//   struct Counted { static constexpr std::string_view kType = "Counted"; int n = 0; };
//   NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Counted, n)
//
//   class Counter final : public herald::AggregateRoot {
//    public:
//     herald::Status add(int n) { if (n <= 0) return herald::Status::invalid_argument("n");
//                                 record(Counted{n}); return {}; }
//     int total = 0;
//    protected:
//     herald::Status apply(const herald::RecordedEvent& e, const nlohmann::json& p) override {
//       if (e.type == Counted::kType) total += p.at("n").get<int>();
//       return {};
//     }
//   };
//
//   herald::Repository<Counter> repo(store, herald::RepositoryOptions("counter"));
//   auto r = repo.execute("c1", [](Counter& c) { return c.add(2); });  // re-decides on conflict
//
// Thread-safety: AggregateRoot objects are not thread-safe (one command at a time); a Repository is
// safe to use from many threads (it holds no mutable state besides its configuration).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "herald/event.h"
#include "herald/event_store.h"
#include "herald/status.h"

namespace herald {

// The metadata key that carries an event payload's schema version ("1" when absent).
inline constexpr std::string_view kSchemaMetadataKey = "schema";
// The document collection that holds aggregate snapshots, keyed by stream id.
inline constexpr std::string_view kSnapshotCollection = "snapshots";

// The schema version an event struct E is written with: E::kSchemaVersion when it declares one,
// else 1.
template <class E>
constexpr int schema_version_of() {
  if constexpr (requires { E::kSchemaVersion; }) {
    return static_cast<int>(E::kSchemaVersion);
  } else {
    return 1;
  }
}

// Upcasters turn an old payload of (type, schema v) into schema v + 1, one step at a time, so a
// reader only ever sees the current shape. Registered once at startup, then read-only.
// Thread-safety: add() must not race with other calls; the const methods are safe concurrently.
class UpcasterRegistry {
 public:
  // Mutates `payload` from schema `from_version` to from_version + 1. A non-ok Status makes the
  // read fail with that status (corruption is the usual choice).
  using Step = std::function<Status(nlohmann::json& payload)>;

  // invalid_argument for an empty type, from_version < 1 or a null step; already_exists when a
  // step for (type, from_version) is registered.
  Status add(std::string event_type, int from_version, Step step);

  // The newest schema version known for `event_type`: 1 + the highest from_version registered,
  // or 1 when it has no upcaster.
  int current_version(std::string_view event_type) const;

  // Upcasts `event` in place: parses its payload, applies the steps from its schema version
  // (metadata.extra["schema"], default 1) up to current_version, then rewrites payload and the
  // schema key. Events already current are left untouched.
  // corruption when the payload is not JSON, the schema key is not a positive integer, the
  // version is newer than this build knows, or a step in the chain is missing; a step's own error
  // otherwise.
  Status upcast(RecordedEvent& event) const;

 private:
  std::map<std::pair<std::string, int>, Step, std::less<>> steps_;
  std::map<std::string, int, std::less<>> current_;
};

// An event-sourced aggregate. Subclasses implement apply() (pure state change, no decisions) and
// commands that validate and then record() events. Not thread-safe.
class AggregateRoot {
 public:
  virtual ~AggregateRoot() = default;

  // The aggregate's id (the stream is "<category>-<id>").
  const std::string& id() const { return id_; }
  // The version of the last stored event applied; kNoStreamVersion for a new aggregate. Pending
  // events do not count.
  std::int64_t version() const { return version_; }
  bool is_new() const { return version_ == kNoStreamVersion; }
  // Events recorded by commands and not yet saved, in order.
  const std::vector<EventData>& pending_events() const { return pending_; }
  // How many stored events the last load applied (after the snapshot, if one was used).
  std::int64_t replayed_events() const { return replayed_; }
  // The version of the snapshot the last load started from, if any.
  std::optional<std::int64_t> loaded_snapshot_version() const { return snapshot_version_; }

  // Snapshot support. snapshot() returns the whole state as JSON, or nullopt when the aggregate
  // does not support snapshots (the default). restore() sets the state from what snapshot()
  // returned; a non-ok Status (or an exception) makes the repository ignore the snapshot and
  // replay the whole stream, so restore() must change nothing unless it succeeds.
  // snapshot_schema() versions the snapshot's shape: a stored snapshot of another schema is
  // ignored.
  virtual std::optional<nlohmann::json> snapshot() const { return std::nullopt; }
  virtual Status restore(const nlohmann::json& /*state*/) {
    return Status::failed_precondition("aggregate does not support snapshots");
  }
  virtual int snapshot_schema() const { return 1; }

 protected:
  // Applies one stored (or just recorded) event, already upcast, with its parsed payload. An error
  // stops the load with that status (use corruption for an event that cannot be understood).
  virtual Status apply(const RecordedEvent& event, const nlohmann::json& payload) = 0;

  // Records a typed event: applies it to the state now and queues it for save. `id` empty lets
  // the store assign a UUIDv7; handlers pass a derived_uuid so redelivery appends nothing new.
  // Returns apply()'s status (the event is queued only when it applied).
  template <class E>
  Status record(const E& event, std::string id = {}) {
    EventData d;
    d.id = std::move(id);
    d.type = std::string(E::kType);
    d.payload = nlohmann::json(event).dump();
    d.metadata.extra[std::string(kSchemaMetadataKey)] = std::to_string(schema_version_of<E>());
    return record_data(std::move(d));
  }
  // As record(), for an already encoded event.
  Status record_data(EventData data);

 private:
  friend class AggregateStore;
  std::string id_;
  std::string stream_id_;
  std::int64_t version_ = kNoStreamVersion;
  std::int64_t replayed_ = 0;
  std::optional<std::int64_t> snapshot_version_;
  std::vector<EventData> pending_;
};

// How a repository names, snapshots and upcasts one aggregate type. Default: values shown.
//   herald::RepositoryOptions("order").with_snapshots(100).with_upcasters(registry)
struct RepositoryOptions {
  RepositoryOptions() = default;
  explicit RepositoryOptions(std::string category_name) : category(std::move(category_name)) {}
  RepositoryOptions& with_snapshots(std::int64_t every) { snapshot_every = every; return *this; }
  RepositoryOptions& with_upcasters(std::shared_ptr<const UpcasterRegistry> u) {
    upcasters = std::move(u);
    return *this;
  }
  RepositoryOptions& with_max_attempts(int n) { max_attempts = n; return *this; }

  std::string category;  // stream prefix, e.g. "order" → "order-<id>"; must not be empty or hold '-'
  // Save a snapshot each time a save crosses a multiple of this many events; 0 disables
  // snapshots (and loading them).
  std::int64_t snapshot_every = 0;
  // Applied to every event read; null means no upcasting. Shared, read-only after startup.
  std::shared_ptr<const UpcasterRegistry> upcasters;
  // execute(): how many load-decide-save rounds before a conflict is returned to the caller.
  int max_attempts = 5;
};

// The untyped engine behind Repository<A>: load/save of any AggregateRoot. Thread-safe (it only
// reads its options and calls the thread-safe store). The store must outlive it.
class AggregateStore {
 public:
  AggregateStore(EventStore& store, RepositoryOptions options);

  const RepositoryOptions& options() const { return options_; }
  EventStore& store() const { return store_; }
  // "<category>-<id>".
  std::string stream_for(std::string_view id) const;

  // Rebuilds `aggregate` (which must be freshly constructed) from its snapshot and stream.
  // Success: ok, also for a stream that does not exist (the aggregate stays new).
  // Failure: invalid_argument for an empty id or one the store rejects; the store's read error;
  // an upcaster's or apply()'s error.
  Status load(std::string_view id, AggregateRoot& aggregate) const;

  // Appends the pending events with ExpectedVersion::exact(version()) (no_stream when new). Each
  // event's metadata gets `metadata`'s correlation, causation and actor where its own are empty,
  // and `metadata.extra` entries it does not already have. On success the pending list is cleared,
  // version() advances, and a snapshot is written when one is due (a failed snapshot write is
  // logged, not returned: snapshots are a cache). With nothing pending it returns ok and writes
  // nothing (AppendResult holds the current version, positions -1).
  // Failure: the store's append error (wrong_expected_version on a concurrent write); the
  // aggregate keeps its pending events.
  Result<AppendResult> save(AggregateRoot& aggregate, const EventMetadata& metadata = {}) const;

 private:
  Status load_snapshot(const std::string& stream, AggregateRoot& aggregate) const;
  void maybe_snapshot(AggregateRoot& aggregate, std::int64_t old_version) const;

  EventStore& store_;
  RepositoryOptions options_;  // constant after construction
};

// Typed repository for aggregate type A (default-constructible, derived from AggregateRoot).
// Thread-safe like AggregateStore.
template <class A>
class Repository {
 public:
  Repository(EventStore& store, RepositoryOptions options) : engine_(store, std::move(options)) {}

  const AggregateStore& engine() const { return engine_; }

  // The aggregate, new (is_new()) when its stream does not exist. Errors as AggregateStore::load.
  Result<A> load(std::string_view id) const {
    A a;
    Status s = engine_.load(id, a);
    if (!s) return s;
    return a;
  }
  // As load(), but not_found when the aggregate does not exist.
  Result<A> get(std::string_view id) const {
    auto a = load(id);
    if (a && a->is_new()) {
      return Status::not_found(engine_.options().category + " " + std::string(id) + " not found");
    }
    return a;
  }

  Result<AppendResult> save(A& aggregate, const EventMetadata& metadata = {}) const {
    return engine_.save(aggregate, metadata);
  }

  // Load → decide → save, repeated on wrong_expected_version up to options().max_attempts rounds
  // (each round re-reads the stream and calls `decide` again on the fresh state). `decide`
  // returns ok to save what it recorded (nothing recorded: nothing is written) or an error that
  // is returned as is. Success: the saved aggregate. Failure: decide's error, a load/save error,
  // or wrong_expected_version once the attempts are used up.
  Result<A> execute(std::string_view id, const std::function<Status(A&)>& decide,
                    const EventMetadata& metadata = {}) const {
    Status last = Status::internal("execute: no attempt made");
    const int attempts = engine_.options().max_attempts < 1 ? 1 : engine_.options().max_attempts;
    for (int attempt = 1; attempt <= attempts; ++attempt) {
      auto a = load(id);
      if (!a) return a.status();
      Status decided = decide(*a);
      if (!decided) return decided;
      auto saved = engine_.save(*a, metadata);
      if (saved) return std::move(*a);
      last = saved.status();
      if (last.code() != StatusCode::wrong_expected_version) return last;
    }
    return last;
  }

 private:
  AggregateStore engine_;
};

}  // namespace herald
