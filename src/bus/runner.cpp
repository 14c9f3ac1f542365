// The durable runner of one handler: its lanes' layout and start/stop, the one place a handler is
// called, status, checkpoint resets and replay progress. The lane thread is in lane.cpp, its
// retries in lane_retries.cpp, its lease in lane_lease.cpp, replay_range in replay.cpp.
#include "bus/runner.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "core/log_context.h"

namespace herald::bus {
namespace {

// FNV-1a: stable across builds and platforms, unlike std::hash, because lane checkpoints are
// stored and must map to the same streams after a restart.
std::uint64_t stable_hash(std::string_view s) {
  std::uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

}  // namespace

// ---------------------------------------------------------------- metrics

void CallMetrics::record(bool ok, std::int64_t us) {
  // Writers hold the lane's call_mu, so load-then-store cannot lose an update.
  auto bump = [](std::atomic_int64_t& a, std::int64_t by) {
    a.store(a.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
  };
  std::size_t b = 0;
  while (b < std::size(LatencyHistogram::kBucketUpperUs) && us > LatencyHistogram::kBucketUpperUs[b]) ++b;
  bump(latency_counts[b], 1);
  bump(latency_count, 1);
  bump(latency_sum_us, us);
  if (ok) bump(processed, 1);
}

std::int64_t CallMetrics::add_to(LatencyHistogram& h) const {
  for (std::size_t i = 0; i < LatencyHistogram::kBuckets; ++i) {
    h.counts[i] += latency_counts[i].load(std::memory_order_relaxed);
  }
  h.count += latency_count.load(std::memory_order_relaxed);
  h.sum_us += latency_sum_us.load(std::memory_order_relaxed);
  return processed.load(std::memory_order_relaxed);
}

// ---------------------------------------------------------------- runner

HandlerRunner::HandlerRunner(std::shared_ptr<EventStore> store, const BusOptions& bus_options,
                             std::string instance_id, std::shared_ptr<BatchCache> cache,
                             std::shared_ptr<EventHandler> handler, HandlerOptions options)
    : store_(std::move(store)),
      bus_options_(bus_options),
      instance_id_(std::move(instance_id)),
      cache_(std::move(cache)),
      handler_(std::move(handler)),
      options_(std::move(options)),
      name_(handler_->name()),
      clock_(TickClock::get()) {
  filter_.event_types = handler_->event_types();
  for (int i = 0; i < options_.lanes; ++i) lanes_.push_back(std::make_unique<Lane>(*this, i));
}

HandlerRunner::~HandlerRunner() {
  request_stop();
  join();
}

std::string HandlerRunner::checkpoint_name(int lane, int lanes) const {
  if (lanes == 1) return name_;
  return name_ + "#" + std::to_string(lane) + "/" + std::to_string(lanes);
}

int HandlerRunner::lane_of(std::string_view stream_id) const {
  if (options_.lanes == 1) return 0;
  return static_cast<int>(stable_hash(stream_id) % static_cast<std::uint64_t>(options_.lanes));
}

// The lane layout ("<handler>#lanes") is stored next to the checkpoints. When the lane count
// changed since the last run, the old lanes' checkpoints do not describe the new partitions, so
// every new lane restarts from the lowest old checkpoint: nothing is skipped, and events between
// that and the other old checkpoints are handled again (at-least-once; inbox-protected effects
// stay exactly-once). The new checkpoints and layout commit in one transaction.
Status HandlerRunner::reconcile_lane_layout() {
  const std::string layout_name = name_ + "#lanes";
  const int lanes = options_.lanes;
  int old_lanes = 0;
  auto stored = store_->load_checkpoint(layout_name);
  if (stored) {
    old_lanes = static_cast<int>(*stored);
  } else if (stored.status().code() != StatusCode::not_found) {
    return stored.status();
  } else {
    // No layout yet: a single-lane checkpoint under the plain name means an earlier 1-lane run.
    auto plain = store_->load_checkpoint(name_);
    if (plain) old_lanes = 1;
    else if (plain.status().code() != StatusCode::not_found) return plain.status();
  }
  if (old_lanes == lanes) return Status::ok();
  if (old_lanes < 0 || old_lanes > 64) {
    return Status::corruption("handler " + name_ + ": stored lane count " + std::to_string(old_lanes) +
                              " is out of range");
  }
  std::optional<std::int64_t> lowest;
  for (int i = 0; i < old_lanes; ++i) {
    auto cp = store_->load_checkpoint(checkpoint_name(i, old_lanes));
    if (cp) lowest = lowest ? std::min(*lowest, *cp) : *cp;
    else if (cp.status().code() != StatusCode::not_found) return cp.status();
  }
  if (lowest) {
    spdlog::warn("handler {}: lane count changed from {} to {}; every lane resumes from position {} "
                 "(events after it may be handled again)",
                 name_, old_lanes, lanes, *lowest);
  }
  return store_->transact([&](StoreTransaction& tx) -> Status {
    if (lowest) {
      for (int i = 0; i < lanes; ++i) HERALD_RETURN_IF_ERROR(tx.reset_checkpoint(checkpoint_name(i, lanes), *lowest));
    }
    return tx.reset_checkpoint(layout_name, lanes);  // not a position: it may go down
  });
}

Status HandlerRunner::start() {
  if (started_.load()) return Status::ok();
  HERALD_RETURN_IF_ERROR(reconcile_lane_layout());
  if (options_.start_from == StartFrom::end) {
    // Fix "the end" now, on the caller's thread, so an event published right after start()
    // returns is not mistaken for history by a lane thread that has not loaded yet.
    for (const auto& lane : lanes_) {
      auto cp = store_->load_checkpoint(lane->checkpoint_name());
      if (cp) continue;
      if (cp.status().code() != StatusCode::not_found) return cp.status();
      HERALD_RETURN_IF_ERROR(store_->save_checkpoint(lane->checkpoint_name(), store_->head_position() + 1));
    }
  }
  HERALD_RETURN_IF_ERROR(reload_parked(-1));
  started_.store(true, std::memory_order_release);
  for (auto& lane : lanes_) lane->start();
  return Status::ok();
}

void HandlerRunner::request_stop() {
  stopping_.store(true, std::memory_order_release);
  {
    std::lock_guard lock(stop_mu_);  // a replay between its look at stopping_ and its wait sees it
  }
  stop_cv_.notify_all();
  for (auto& lane : lanes_) lane->wake();
}

bool HandlerRunner::wait_stopped(SteadyTime deadline) {
  bool all = true;
  for (auto& lane : lanes_) all = lane->wait_exited(deadline) && all;
  return all;
}

void HandlerRunner::join() {
  for (auto& lane : lanes_) lane->join();
}

Status HandlerRunner::invoke(const RecordedEvent& e, int attempt, int lane, WriteFence fence) {
  return call(e, attempt, lane, nullptr, nullptr, fence);
}

Status HandlerRunner::invoke_in_lane(const RecordedEvent& e, int lane, const std::string* checkpoint,
                                     std::int64_t& mark, WriteFence fence) {
  return call(e, 1, lane, checkpoint, &mark, fence);
}

Status HandlerRunner::call(const RecordedEvent& e, int attempt, int lane_index, const std::string* checkpoint,
                           std::int64_t* mark, WriteFence fence) {
  Lane& lane = *lanes_[static_cast<std::size_t>(lane_index)];
  std::lock_guard call_lock(lane.call_mu);
  lane.dispatch.begin_call(attempt, checkpoint, e.position + 1);
  lane.dispatch.set_fence(fence.lease, fence.token);
  // JSON log lines name the handler and event of whatever the handler (or note_error) logs.
  const herald::detail::ScopedLogContext log_context(&name_, &e);
  const std::int64_t t0 = mark != nullptr ? *mark : clock_.now();
  const Status st = call_handler(*handler_, e, lane.dispatch.context());
  const std::int64_t t1 = clock_.now();
  if (mark != nullptr) *mark = t1;
  lane.call_metrics.record(st.is_ok(), clock_.micros(t1 - t0));
  if (!st.is_ok()) {
    metrics_.failed.fetch_add(1, std::memory_order_relaxed);
    note_error(e, attempt, st);
  }
  return st;
}

void HandlerRunner::note_error(const RecordedEvent& e, int attempt, const Status& st) {
  spdlog::warn("handler {} failed: event {} type {} stream {} position {} attempt {}: {}", name_, e.id,
               e.type, e.stream_id, e.position, attempt, st.to_string());
  std::lock_guard lock(status_mu_);
  last_error_ = st.to_string();
}

Result<RecordedEvent> HandlerRunner::read_event(std::int64_t position, std::string_view event_id) {
  auto slice = store_->read_all(position, 1);
  if (!slice) return slice.status();
  if (slice->events.empty() || slice->events.front().position != position) {
    return Status::not_found("no event at position " + std::to_string(position));
  }
  if (!event_id.empty() && slice->events.front().id != event_id) {
    return Status::corruption("event at position " + std::to_string(position) + " is " +
                              slice->events.front().id + ", the dead letter names " + std::string(event_id));
  }
  return std::move(slice->events.front());
}

std::vector<std::int64_t> HandlerRunner::lane_checkpoints() const {
  std::vector<std::int64_t> out;
  for (const auto& lane : lanes_) {
    if (lane->loaded()) {
      out.push_back(lane->checkpoint());
      continue;
    }
    auto cp = store_->load_checkpoint(lane->checkpoint_name());
    out.push_back(cp ? *cp : 0);
  }
  return out;
}

std::int64_t HandlerRunner::pending_events() const {
  std::int64_t head = store_->head_position();
  std::int64_t lowest = 0;
  auto cps = lane_checkpoints();
  if (!cps.empty()) lowest = *std::min_element(cps.begin(), cps.end());
  return std::max<std::int64_t>(0, head + 1 - lowest);
}

HandlerStatus HandlerRunner::status() const {
  HandlerStatus s;
  s.name = name_;
  s.lanes = options_.lanes;
  auto cps = lane_checkpoints();
  s.checkpoint = cps.empty() ? 0 : *std::min_element(cps.begin(), cps.end());
  s.lag = std::max<std::int64_t>(0, store_->head_position() + 1 - s.checkpoint);
  for (const auto& lane : lanes_) s.processed += lane->call_metrics.add_to(s.latency);
  s.failed = metrics_.failed.load(std::memory_order_relaxed);
  s.retried = metrics_.retried.load(std::memory_order_relaxed);
  s.dead_lettered = metrics_.dead_lettered.load(std::memory_order_relaxed);
  s.parked = parked_count_.load(std::memory_order_relaxed);
  {
    std::lock_guard lock(status_mu_);
    s.last_error = last_error_;
  }
  // The most urgent lane state wins: failed > retrying > parked > catching_up > running.
  bool any_running = false, failed = false, retrying = false, catching_up = false;
  for (const auto& lane : lanes_) {
    if (lane->active()) ++s.active_lanes;
    switch (lane->state()) {
      case HandlerState::failed: failed = true; break;
      case HandlerState::retrying: retrying = true; break;
      case HandlerState::catching_up: catching_up = true; break;
      case HandlerState::running: any_running = true; break;
      default: break;
    }
  }
  bool live = any_running || failed || retrying || catching_up;
  if (!live) s.state = HandlerState::stopped;
  else if (failed) s.state = HandlerState::failed;
  else if (retrying) s.state = HandlerState::retrying;
  else if (s.parked > 0) s.state = HandlerState::parked;
  else if (catching_up) s.state = HandlerState::catching_up;
  else s.state = HandlerState::running;
  return s;
}

Status HandlerRunner::reset_checkpoint(std::int64_t position) {
  std::int64_t head = store_->head_position();
  if (position < 0 || position > head + 1) {
    return Status::invalid_argument("reset position " + std::to_string(position) + " is outside [0, " +
                                    std::to_string(head + 1) + "]");
  }
  {
    std::lock_guard lock(status_mu_);
    reset_from_ = position;
    reset_target_ = head;
  }
  if (started_.load(std::memory_order_acquire) && !stopping_.load()) {
    for (auto& lane : lanes_) lane->request_reset(position);
    return Status::ok();
  }
  // Not running: write the checkpoints now; the lanes load them when started.
  HERALD_RETURN_IF_ERROR(reconcile_lane_layout());
  return store_->transact([&](StoreTransaction& tx) -> Status {
    for (const auto& lane : lanes_) HERALD_RETURN_IF_ERROR(tx.reset_checkpoint(lane->checkpoint_name(), position));
    return Status::ok();
  });
}

ReplayProgress HandlerRunner::progress() const {
  ReplayProgress p;
  p.handler = name_;
  std::int64_t from = 0, target = -1;
  {
    std::lock_guard lock(status_mu_);
    if (!reset_from_) {
      p.finished = true;
      return p;
    }
    from = *reset_from_;
    target = reset_target_;
  }
  auto cps = lane_checkpoints();
  std::int64_t lowest = cps.empty() ? 0 : *std::min_element(cps.begin(), cps.end());
  for (const auto& lane : lanes_) {
    if (lane->reset_pending()) lowest = from;  // that lane has not moved back yet
  }
  p.total = std::max<std::int64_t>(0, target + 1 - from);
  p.done = std::clamp<std::int64_t>(lowest - from, 0, p.total);
  p.finished = p.done >= p.total;
  return p;
}

}  // namespace herald::bus
