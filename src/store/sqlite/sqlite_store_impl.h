// The SQLite backend's store class: a thin EventStore over its parts (sqlite_writer: the writer
// thread and group commit; sqlite_append: appends and idempotent retries; sqlite_reader_pool and
// sqlite_reads: reads on reader connections; sqlite_tail_cache: recent events in memory;
// sqlite_wal: WAL checkpoints; sqlite_transaction: StoreTransaction; sqlite_sql: the SQL). The
// event log's methods are in sqlite_event_store.cpp, process state's in sqlite_process_state.cpp.
#pragma once

#include <memory>
#include <string>

#include "herald/event_store.h"
#include "store/head_signal.h"
#include "store/sqlite/sqlite_event_store.h"
#include "store/sqlite/sqlite_reader_pool.h"
#include "store/sqlite/sqlite_tail_cache.h"
#include "store/sqlite/sqlite_wal.h"
#include "store/sqlite/sqlite_writer.h"

namespace herald::detail::sqlite {

inline Status closed_status() { return Status::failed_precondition("the store is closed"); }

// Thread-safety: every EventStore method from any thread (the parts synchronise themselves).
class SqliteEventStore final : public EventStore {
 public:
  SqliteEventStore(std::string url, std::string path, const StoreOptions& options, const SqliteTuning& tuning);
  ~SqliteEventStore() override { close(); }

  // Opens the connections, migrates the schema and starts the threads. Called once, before use.
  Status open();
  SqliteCounters counters();

  // ---- the event log (sqlite_event_store.cpp) ----
  std::string url() const override { return url_; }
  Result<AppendResult> append(std::string_view stream_id, ExpectedVersion expected,
                              std::vector<EventData> events) override;
  Result<std::vector<RecordedEvent>> read_stream(std::string_view stream_id, std::int64_t from_version,
                                                 std::size_t max_count, ReadDirection direction) override;
  Result<AllSlice> read_all(std::int64_t from_position, std::size_t max_count, const ReadFilter& filter) override;
  Result<std::int64_t> stream_version(std::string_view stream_id) override;
  std::int64_t head_position() const override { return head_.head(); }
  Result<StoreStats> stats() override;
  Status wait_for(std::int64_t after_position, std::chrono::milliseconds timeout) override {
    return head_.wait_for(after_position, timeout);
  }
  void close() override;

  // ---- process state (sqlite_process_state.cpp) ----
  Status transact(const std::function<Status(StoreTransaction&)>& work) override;
  // From a reader connection, so that a query never queues behind the writer's commits.
  Result<std::string> read_document(std::string_view collection, std::string_view key) override;
  Result<std::vector<Document>> read_documents(std::string_view collection, std::string_view after_key,
                                               std::size_t limit) override;
  Result<std::int64_t> load_checkpoint(std::string_view subscription) override;
  Status save_checkpoint(std::string_view subscription, std::int64_t position) override;
  Result<std::int64_t> add_dead_letter(const DeadLetter& entry) override;
  Result<DeadLetter> get_dead_letter(std::int64_t id) override;
  Result<std::vector<DeadLetter>> list_dead_letters(std::string_view handler) override;
  Status update_dead_letter(const DeadLetter& entry) override;
  Status remove_dead_letter(std::int64_t id) override;
  Result<LeaseGrant> try_acquire_lease(std::string_view name, std::string_view owner,
                                       std::chrono::milliseconds ttl) override;
  Status release_lease(std::string_view name, std::string_view owner) override;

 private:
  // Constant after open().
  const std::string url_;
  const std::string path_;
  const StoreOptions options_;
  const SqliteTuning tuning_;
  const std::shared_ptr<Clock> clock_;
  int synchronous_ = -1;  // PRAGMA synchronous of the writer connection

  // Declared in the order they depend on each other; close() stops them in the reverse one.
  HeadSignal head_{"sqlite"};  // the published head and wait_for; closed by close()
  ReaderPool readers_;         // internally synchronized
  TailCache tail_;             // internally synchronized
  WalCheckpointer wal_;        // its own thread; the writer escalates through it
  std::unique_ptr<GroupWriter> writer_;  // set by open(), before any other thread sees the store
  std::mutex close_mu_;        // one close() at a time tears down
};

}  // namespace herald::detail::sqlite
