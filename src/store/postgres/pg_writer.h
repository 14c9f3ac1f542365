// The writer of the PostgreSQL backend: one thread per store that takes every pending append and
// runs them in ONE call of the server function herald_append_batch (client-side group commit:
// one transaction, one WAL flush). Each append in the batch is checked and written on its own, so
// its failure writes nothing and does not fail the others.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "herald/event_store.h"
#include "store/head_signal.h"
#include "store/postgres/pg_support.h"

namespace herald::detail::pg {

class PgWriter {
 public:
  // Connects (lazily, on its own connection) to `url`, running `session_setup` on each new
  // connection; `notify` is passed to every call (PostgresOptions::notify). The head of every
  // committed batch is published on `head`, which must outlive this object.
  PgWriter(std::string url, std::vector<std::string> session_setup, bool notify, HeadSignal& head);
  // Closes and joins the thread.
  ~PgWriter();
  PgWriter(const PgWriter&) = delete;
  PgWriter& operator=(const PgWriter&) = delete;

  // Starts the thread. internal when it cannot be started.
  Status start();

  // Queues one append (already validated, every event with an id) and blocks until its batch
  // ran: the result, or failed_precondition once close() was called. Thread-safe.
  Result<AppendResult> append(std::string_view stream_id, ExpectedVersion expected,
                              std::vector<EventData> events, Timestamp recorded_at);

  // Takes no more appends; the thread finishes what is queued, then exits. Idempotent.
  void close();
  // Waits for the thread to exit (unless called on it).
  void join();

 private:
  // One append waiting for the writer thread. Lives on the appending thread's stack until
  // `result` is set (under queue_mu_).
  struct PendingAppend {
    std::string stream_id;
    ExpectedVersion expected = ExpectedVersion::any();
    std::vector<EventData> events;
    Timestamp recorded_at{};
    std::optional<Result<AppendResult>> result;
  };
  using Batch = std::vector<PendingAppend*>;

  void writer_loop();
  // Moves the next group from queue_ into `batch`, waiting for work; false once closed and
  // drained. Called with queue_mu_ held through `lock`.
  bool take_batch(std::unique_lock<std::mutex>& lock, Batch& batch);
  std::vector<Result<AppendResult>> run_batch(const Batch& batch);
  Result<std::vector<Result<AppendResult>>> call_append_batch(const Batch& batch, bool verify_ids);
  // The writer's connection, (re)opened and prepared when missing or broken.
  Status ensure_connection();

  const std::string url_;
  const std::vector<std::string> session_setup_;
  const bool notify_;
  HeadSignal& head_;

  // queue_mu_ guards queue_, closed_ and every PendingAppend::result. queue_cv_ wakes the writer;
  // done_cv_ wakes appenders when a batch finished.
  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::condition_variable done_cv_;
  std::deque<PendingAppend*> queue_;
  bool closed_ = false;

  // Owned by the writer thread only: the connection and what the gather of take_batch learned
  // from the previous batch (how many appenders it answered, how long its call took).
  Conn conn_;
  std::size_t last_group_ = 0;
  std::chrono::steady_clock::duration last_call_ = std::chrono::steady_clock::duration::zero();

  std::thread thread_;
};

}  // namespace herald::detail::pg
