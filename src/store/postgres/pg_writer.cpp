#include "store/postgres/pg_writer.h"

#include <algorithm>
#include <exception>
#include <string_view>
#include <system_error>
#include <unordered_set>
#include <utility>

#include "core/json_codec.h"
#include "store/postgres/pg_sql.h"

namespace herald::detail::pg {
namespace {

// Limits of one group-commit batch (a single append may exceed them and then goes alone).
constexpr std::size_t kBatchMaxEvents = 20'000;
constexpr std::size_t kBatchMaxBytes = 32u << 20;
// Longest wait for the rest of a group before a commit (see take_batch).
constexpr std::chrono::microseconds kMaxGather{1000};

int expected_kind(ExpectedVersion e) {
  switch (e.kind()) {
    case ExpectedVersion::Kind::any: return 0;
    case ExpectedVersion::Kind::no_stream: return 1;
    case ExpectedVersion::Kind::stream_exists: return 2;
    case ExpectedVersion::Kind::exact: return 3;
  }
  return 0;
}

// A boolean parameter in text format. std::string(1, c) rather than a literal: g++ 12 -O3
// reports a false -Wrestrict when such literals initialise a vector of strings.
std::string bool_text(bool v) { return std::string(1, v ? 't' : 'f'); }

}  // namespace

PgWriter::PgWriter(std::string url, std::vector<std::string> session_setup, bool notify, HeadSignal& head)
    : url_(std::move(url)), session_setup_(std::move(session_setup)), notify_(notify), head_(head) {}

PgWriter::~PgWriter() {
  close();
  if (thread_.joinable()) thread_.join();
}

Status PgWriter::start() {
  try {
    thread_ = std::thread([this] { writer_loop(); });
  } catch (const std::system_error& e) {
    return Status::internal(std::string("cannot start the store's threads: ") + e.what());
  }
  return {};
}

Result<AppendResult> PgWriter::append(std::string_view stream_id, ExpectedVersion expected,
                                      std::vector<EventData> events, Timestamp recorded_at) {
  PendingAppend pending;
  pending.stream_id = std::string(stream_id);
  pending.expected = expected;
  pending.events = std::move(events);
  pending.recorded_at = recorded_at;
  {
    std::unique_lock lock(queue_mu_);
    if (closed_) return store_closed();
    queue_.push_back(&pending);
    queue_cv_.notify_one();
    done_cv_.wait(lock, [&] { return pending.result.has_value(); });
  }
  return std::move(*pending.result);
}

void PgWriter::close() {
  std::lock_guard lock(queue_mu_);
  if (closed_) return;
  closed_ = true;
  queue_cv_.notify_all();  // the writer finishes what is queued, then exits
}

void PgWriter::join() {
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

void PgWriter::writer_loop() {
  Batch batch;
  for (;;) {
    {
      std::unique_lock lock(queue_mu_);
      if (!take_batch(lock, batch)) return;  // closed and drained
    }
    std::vector<Result<AppendResult>> results;
    const auto call_start = std::chrono::steady_clock::now();
    try {
      results = run_batch(batch);
    } catch (const std::exception& e) {
      // Nothing may escape this thread, and every waiting appender must get an answer.
      results.assign(batch.size(), Status::internal(std::string("append batch threw: ") + e.what()));
    }
    std::int64_t last = -1;
    for (const auto& r : results) {
      if (r) last = std::max(last, r->last_position);
    }
    if (last >= 0) head_.publish(last);
    last_call_ = std::chrono::steady_clock::now() - call_start;
    last_group_ = batch.size();
    {
      std::lock_guard lock(queue_mu_);
      for (std::size_t i = 0; i < batch.size(); ++i) batch[i]->result.emplace(std::move(results[i]));
    }
    done_cv_.notify_all();
    batch.clear();
  }
}

bool PgWriter::take_batch(std::unique_lock<std::mutex>& lock, Batch& batch) {
  queue_cv_.wait(lock, [&] { return closed_ || !queue_.empty(); });
  if (queue_.empty()) return false;
  // Gather: the appenders the previous batch just answered are usually about to append again
  // (closed-loop writers), but they are still waking up when this thread comes back for work.
  // Sending at once would commit the first one or two alone and leave the rest for the next
  // commit, so groups alternate small and large (10 concurrent writers made groups of ~7 on
  // average). Waiting a moment for as many appends as last time, bounded by a fraction of the
  // last call so a writer that stopped costs little, keeps groups whole.
  if (queue_.size() < last_group_ && !closed_) {
    const auto cap = std::min<std::chrono::steady_clock::duration>(last_call_ / 4, kMaxGather);
    queue_cv_.wait_for(lock, cap, [&] { return closed_ || queue_.size() >= last_group_; });
  }
  std::size_t events = 0;
  std::size_t bytes = 0;
  while (!queue_.empty()) {
    PendingAppend* p = queue_.front();
    std::size_t pb = 0;
    for (const EventData& e : p->events) pb += e.payload.size();
    if (!batch.empty() && (events + p->events.size() > kBatchMaxEvents || bytes + pb > kBatchMaxBytes)) {
      break;
    }
    events += p->events.size();
    bytes += pb;
    batch.push_back(p);
    queue_.pop_front();
  }
  return true;
}

// On a failure of the whole call (not of single appends), retries once on a fresh connection
// when the connection broke (safe: a committed batch replays as idempotent retries), and runs the
// appends one by one when the batch had several, so that a bad append fails alone.
//
// The first call does not probe for stored ids (see kMigration2): a stored id then fails the
// whole call on the unique index (already_exists, nothing written), and the batch runs again with
// the probe, which sorts out idempotent retries and conflicts append by append.
std::vector<Result<AppendResult>> PgWriter::run_batch(const Batch& batch) {
  auto r = call_append_batch(batch, /*verify_ids=*/false);
  if (!r && r.status().code() == StatusCode::unavailable && broken(conn_.get())) {
    conn_.reset();
    r = call_append_batch(batch, /*verify_ids=*/false);
  }
  if (!r && r.status().code() == StatusCode::already_exists) {
    r = call_append_batch(batch, /*verify_ids=*/true);
  }
  if (r) return std::move(*r);
  std::vector<Result<AppendResult>> out;
  out.reserve(batch.size());
  if (batch.size() == 1 || r.status().code() == StatusCode::unavailable) {
    for (std::size_t i = 0; i < batch.size(); ++i) out.emplace_back(r.status());
    return out;
  }
  for (PendingAppend* p : batch) {
    auto one = call_append_batch({p}, /*verify_ids=*/true);
    out.emplace_back(one ? std::move((*one)[0]) : Result<AppendResult>(one.status()));
  }
  return out;
}

Status PgWriter::ensure_connection() {
  if (conn_ && !broken(conn_.get())) return {};
  conn_.reset();
  auto c = connect(url_);
  if (!c) return c.status();
  for (const std::string& stmt : session_setup_) {
    HERALD_RETURN_IF_ERROR(exec_simple(c->get(), stmt.c_str(), "session setup"));
  }
  // Generic plans for the call and for the statements inside herald_append_batch: with arrays of
  // varying length the plan cache otherwise keeps re-planning them as custom plans on every call
  // (measured: +13% single appends, +10% batches of 100, +6% with 10 writers).
  HERALD_RETURN_IF_ERROR(exec_simple(c->get(), "SET plan_cache_mode = force_generic_plan", "session setup"));
  // Prepared once per connection: the call is parsed and planned once, not per batch.
  const Oid text_a = BinaryArray::kTextArray, int4_a = BinaryArray::kInt4Array,
            int8_a = BinaryArray::kInt8Array, boolean = 16;
  HERALD_RETURN_IF_ERROR(prepare(c->get(), sql::kAppendStatement, sql::kAppendBatch,
                                 {text_a, text_a, int4_a, int8_a, int4_a, int8_a, text_a, text_a, text_a,
                                  text_a, text_a, text_a, text_a, boolean, boolean, int4_a, int4_a,
                                  boolean, boolean},
                                 "prepare append"));
  conn_ = std::move(*c);
  return {};
}

Result<std::vector<Result<AppendResult>>> PgWriter::call_append_batch(const Batch& batch, bool verify_ids) {
  HERALD_RETURN_IF_ERROR(ensure_connection());
  BinaryArray streams(BinaryArray::kText), categories(BinaryArray::kText), kinds(BinaryArray::kInt4),
      expected(BinaryArray::kInt8), counts(BinaryArray::kInt4), recorded(BinaryArray::kInt8);
  BinaryArray ids(BinaryArray::kText), types(BinaryArray::kText), payloads(BinaryArray::kText),
      corr(BinaryArray::kText), caus(BinaryArray::kText), actor(BinaryArray::kText),
      extra(BinaryArray::kText), event_app(BinaryArray::kInt4), event_k(BinaryArray::kInt4);
  std::size_t bytes = 0;
  std::size_t events = 0;
  for (const PendingAppend* p : batch) {
    events += p->events.size();
    for (const EventData& e : p->events) bytes += e.payload.size() + 4;
  }
  payloads.reserve(bytes);
  ids.reserve(events * 40);
  types.reserve(events * 24);
  // Whether some id repeats within the batch (two callers appending the same event, or a retry
  // racing its original): then the function must check ids append by append.
  bool may_repeat = false;
  std::unordered_set<std::string_view> seen;
  std::unordered_set<std::string_view> streams_seen;
  bool distinct = true;
  std::int32_t app = 0;
  for (const PendingAppend* p : batch) {
    ++app;
    if (!streams_seen.insert(p->stream_id).second) distinct = false;
    std::int32_t k = 0;
    streams.add_text(p->stream_id);
    categories.add_text(stream_category(p->stream_id));
    kinds.add_int4(expected_kind(p->expected));
    expected.add_int8(p->expected.kind() == ExpectedVersion::Kind::exact ? p->expected.version() : 0);
    counts.add_int4(static_cast<std::int32_t>(p->events.size()));
    recorded.add_int8(to_micros(p->recorded_at));
    for (const EventData& e : p->events) {
      if (batch.size() > 1 && !seen.insert(e.id).second) may_repeat = true;
      ids.add_text(e.id);
      types.add_text(e.type);
      payloads.add_text(e.payload);
      corr.add_text(e.metadata.correlation_id);
      caus.add_text(e.metadata.causation_id);
      actor.add_text(e.metadata.actor);
      extra.add_text(encode_extra(e.metadata));
      event_app.add_int4(app);
      event_k.add_int4(++k);
    }
  }
  const std::vector<std::string> values{
      streams.finish(),  categories.finish(), kinds.finish(),        expected.finish(),
      counts.finish(),   recorded.finish(),   ids.finish(),          types.finish(),
      payloads.finish(), corr.finish(),       caus.finish(),         actor.finish(),
      extra.finish(),    bool_text(may_repeat), bool_text(notify_),  event_app.finish(),
      event_k.finish(),  bool_text(distinct), bool_text(verify_ids)};
  static const std::vector<bool> kBinary{true, true, true, true, true,  true,  true, true, true, true,
                                         true, true, true, false, false, true, true, false, false};
  auto rows = exec_prepared(conn_.get(), sql::kAppendStatement, values, kBinary, "append");
  if (!rows) return rows.status();
  if (rows->size() != static_cast<int>(batch.size())) {
    return Status::internal("herald_append_batch returned " + std::to_string(rows->size()) + " rows for " +
                            std::to_string(batch.size()) + " appends");
  }
  std::vector<Result<AppendResult>> out;
  out.reserve(batch.size());
  for (int i = 0; i < rows->size(); ++i) {
    const PendingAppend& p = *batch[static_cast<std::size_t>(i)];
    switch (rows->i64(i, 0)) {
      case 0:
        out.emplace_back(AppendResult{rows->i64(i, 1), rows->i64(i, 2), rows->i64(i, 3)});
        break;
      case 1: {
        const std::int64_t actual = rows->i64(i, 3);
        out.emplace_back(Status::wrong_expected_version(
            actual, "stream '" + p.stream_id + "' is at version " + std::to_string(actual) + ", expected " +
                        p.expected.to_string()));
        break;
      }
      default:
        out.emplace_back(Status::already_exists(rows->str(i, 4)));
        break;
    }
  }
  return out;
}

}  // namespace herald::detail::pg
