// The durable runner: lane threads reading the store from their checkpoints, retries that block
// only their own stream, batched checkpoint saves, leases, lane-layout changes.
#include "bus/runner.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <random>

#include "core/log_context.h"
#include "herald/clock.h"

namespace herald::bus {
namespace {

// Checkpoints are saved at most this often while events flow (and always on stop/reset), so the
// hot path does not pay a database write per event; a crash re-delivers at most this much work.
constexpr std::chrono::milliseconds kCheckpointInterval{100};
// Longest single wait on the store, so stop and reset requests are seen promptly.
constexpr std::chrono::milliseconds kMaxWaitSlice{100};
// Back-off after a store error in the lane loop.
constexpr std::chrono::milliseconds kStoreErrorBackoff{200};

// How often a lane renews its lease (and a standby lane asks for it): the poll interval, but at
// least three times per ttl so one slow renewal does not lose the lease.
std::chrono::milliseconds renew_every(const BusOptions& o) {
  return std::max(std::chrono::milliseconds(1), std::min(o.poll_interval, o.lease_ttl / 3));
}

double unit_random() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng);
}

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
      for (int i = 0; i < lanes; ++i) HERALD_RETURN_IF_ERROR(tx.save_checkpoint(checkpoint_name(i, lanes), *lowest));
    }
    return tx.save_checkpoint(layout_name, lanes);
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

Status HandlerRunner::invoke(const RecordedEvent& e, int attempt, int lane) {
  return call(e, attempt, lane, nullptr, nullptr);
}

Status HandlerRunner::invoke_in_lane(const RecordedEvent& e, int lane, const std::string* checkpoint,
                                     std::int64_t& mark) {
  return call(e, 1, lane, checkpoint, &mark);
}

Status HandlerRunner::call(const RecordedEvent& e, int attempt, int lane_index, const std::string* checkpoint,
                           std::int64_t* mark) {
  Lane& lane = *lanes_[static_cast<std::size_t>(lane_index)];
  std::lock_guard call_lock(lane.call_mu);
  HandlerContext& ctx = lane.context;
  ctx.begin_call(attempt, checkpoint, e.position + 1);
  // JSON log lines name the handler and event of whatever the handler (or note_error) logs.
  const herald::detail::ScopedLogContext log_context(&name_, &e);
  const std::int64_t t0 = mark != nullptr ? *mark : clock_.now();
  Status st;
  try {
    st = handler_->handle(e, ctx);
  } catch (const std::exception& ex) {
    st = Status::internal(std::string("handler threw: ") + ex.what());
  } catch (...) {
    st = Status::internal("handler threw a non-standard exception");
  }
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
    for (const auto& lane : lanes_) HERALD_RETURN_IF_ERROR(tx.save_checkpoint(lane->checkpoint_name(), position));
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

Status HandlerRunner::replay_range(std::int64_t from, std::int64_t to,
                                   const std::function<void(const ReplayProgress&)>& progress) {
  if (from < 0 || to < from) {
    return Status::invalid_argument("replay range [" + std::to_string(from) + ", " + std::to_string(to) +
                                    ") is invalid");
  }
  ReplayProgress p;
  p.handler = name_;
  p.total = to - from;  // counted in positions: cheap to know up front
  std::int64_t pos = from;
  while (pos < to) {
    auto slice = store_->read_all(pos, std::min<std::size_t>(options_.batch_size, static_cast<std::size_t>(to - pos)),
                                  filter_);
    if (!slice) return slice.status();
    for (const auto& e : slice->events) {
      if (e.position >= to) break;
      Timestamp first_failed{};
      for (int attempt = 1;; ++attempt) {
        Status st = invoke(e, attempt);
        if (st.is_ok()) break;
        if (attempt == 1) first_failed = std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now());
        if (options_.retry.is_retryable(st) && attempt < options_.retry.max_attempts && !stopping_.load()) {
          metrics_.retried.fetch_add(1, std::memory_order_relaxed);
          std::this_thread::sleep_for(options_.retry.delay_after(attempt, unit_random()));
          continue;
        }
        Status dl = add_dead_letter(e, attempt, st, first_failed);
        if (!dl.is_ok() && dl.code() != StatusCode::already_exists) return dl;
        break;
      }
      p.done = e.position + 1 - from;
      if (progress) progress(p);
    }
    pos = std::min(to, slice->next_position);
    if (slice->end_of_log) break;
  }
  p.done = p.total;
  p.finished = true;
  if (progress) progress(p);
  return Status::ok();
}

// ---------------------------------------------------------------- lane

Lane::Lane(HandlerRunner& runner, int index)
    : context(runner.store(), runner.name(), 1, &runner.stopping()),
      runner_(runner),
      index_(index),
      checkpoint_name_(runner.checkpoint_name(index, runner.options().lanes)) {}

Lane::~Lane() { join(); }

void Lane::start() {
  exited_.store(false, std::memory_order_release);
  thread_ = std::thread([this] { run(); });
}

void Lane::wake() {
  std::lock_guard lock(wake_mu_);
  wake_cv_.notify_all();
}

void Lane::join() {
  if (thread_.joinable()) thread_.join();
}

bool Lane::wait_exited(SteadyTime deadline) {
  if (!thread_.joinable()) return true;
  std::unique_lock lock(wake_mu_);
  return wake_cv_.wait_until(lock, deadline, [&] { return exited_.load(std::memory_order_acquire); });
}

void Lane::request_reset(std::int64_t position) {
  std::lock_guard lock(wake_mu_);
  reset_request_ = position;
  reset_pending_.store(true, std::memory_order_release);
  wake_cv_.notify_all();
}

void Lane::run() {
  // Nothing may escape a worker thread: a bug in here ends this lane as failed, loudly.
  try {
    loop();
  } catch (const std::exception& ex) {
    spdlog::error("handler {} lane {}: runner stopped by an exception: {}", runner_.name(), index_, ex.what());
    state_.store(HandlerState::failed);
  }
  // Never overwrite a checkpoint this lane did not load, nor one it may no longer own.
  if (loaded_.load() && (!runner_.bus_options().use_leases || (lease_held_ && lease_fresh(std::chrono::steady_clock::now())))) {
    maybe_save(true);
  }
  if (runner_.bus_options().use_leases && lease_held_) {
    // Released at once so another instance takes over without waiting for the ttl.
    (void)runner_.store().release_lease(checkpoint_name_, runner_.instance_id());
    lease_held_ = false;
  }
  active_.store(false, std::memory_order_release);
  if (state_.load() != HandlerState::failed) state_.store(HandlerState::stopped);
  {
    std::lock_guard lock(wake_mu_);
    exited_.store(true, std::memory_order_release);
  }
  wake_cv_.notify_all();
}

Status Lane::load_position() {
  auto& store = runner_.store();
  auto cp = store.load_checkpoint(checkpoint_name_);
  if (cp) {
    read_pos_ = *cp;
  } else if (cp.status().code() == StatusCode::not_found) {
    read_pos_ = runner_.options().start_from == StartFrom::end ? store.head_position() + 1 : 0;
    // Saved at once so that "end" means the end at the first start, not at every restart.
    HERALD_RETURN_IF_ERROR(store.save_checkpoint(checkpoint_name_, read_pos_));
  } else {
    return cp.status();
  }
  pending_.clear();
  last_saved_ = read_pos_;
  last_save_time_ = std::chrono::steady_clock::now();
  checkpoint_.store(read_pos_, std::memory_order_release);
  loaded_.store(true, std::memory_order_release);
  return Status::ok();
}

bool Lane::lease_fresh(SteadyTime now) const {
  const auto ttl = runner_.bus_options().lease_ttl;
  return now - last_renew_ < ttl - ttl / 5;
}

void Lane::lose_lease(const char* why) {
  spdlog::warn("handler lane {}: {}; pausing this lane", checkpoint_name_, why);
  lease_held_ = false;
  active_.store(false, std::memory_order_release);
  pending_.clear();  // another instance owns these events now
  loaded_.store(false, std::memory_order_release);
}

// Fencing: a lane handles events and saves its checkpoint only while its lease is fresh. When a
// renewal fails, or comes so late that the lease may have expired (and another instance may have
// run the lane meanwhile), the lane forgets its position and re-reads the stored checkpoint when
// it gets the lease again. A saved checkpoint only ever covers events its writer handled, so a
// late write can move it backwards (events handled again, harmless under the inbox) but never
// past an unhandled event.
bool Lane::hold_lease() {
  if (!runner_.bus_options().use_leases) return true;
  auto now = std::chrono::steady_clock::now();
  if (lease_held_ && now - last_renew_ < renew_every(runner_.bus_options())) return true;
  const bool lapsed = lease_held_ && !lease_fresh(now);  // e.g. one handler call ran past the ttl
  auto got = runner_.store().try_acquire_lease(checkpoint_name_, runner_.instance_id(),
                                               runner_.bus_options().lease_ttl);
  last_renew_ = now;
  if (got && *got) {
    if (lapsed) {
      // Ours again, but another instance may have run the lane in the gap: it would have moved
      // the stored checkpoint out of the range this lane writes itself (its last save up to its
      // read position; exactly_once commits checkpoints inside that range). If it is still in
      // range, keep our position and retry state: dropping them here would restart a slow
      // failing event at attempt 1 forever. Otherwise start over from what is stored.
      auto stored = runner_.store().load_checkpoint(checkpoint_name_);
      if (!stored || *stored < last_saved_ || *stored > read_pos_) {
        lose_lease("lease lapsed and another instance moved the lane meanwhile");
      } else {
        spdlog::warn("handler lane {}: lease lapsed (a call ran past the ttl) and was taken back", checkpoint_name_);
      }
    }
    if (!lease_held_) {
      // Someone else may have run this lane meanwhile: start from what is stored now.
      Status st = load_position();
      if (st.is_ok()) st = runner_.reload_parked(index_);
      if (!st.is_ok()) {
        spdlog::warn("handler lane {}: cannot load its state after taking the lease: {}", checkpoint_name_,
                     st.to_string());
        return false;
      }
      spdlog::info("handler lane {}: lease acquired by {}", checkpoint_name_, runner_.instance_id());
      lease_held_ = true;
      active_.store(true, std::memory_order_release);
      runner_.release_orphans(index_);
    }
    return true;
  }
  if (!got) spdlog::warn("handler lane {}: lease check failed: {}", checkpoint_name_, got.status().to_string());
  if (lease_held_) lose_lease(got ? "lease taken by another instance" : "lease renewal failed");
  return false;
}

void Lane::apply_reset() {
  std::optional<std::int64_t> to;
  {
    std::lock_guard lock(wake_mu_);
    to.swap(reset_request_);
  }
  if (!to) return;
  pending_.clear();  // those events come again from the new position
  read_pos_ = *to;
  last_saved_ = -1;
  maybe_save(true);
  reset_pending_.store(false, std::memory_order_release);
}

std::size_t Lane::queued() const {
  std::size_t n = 0;
  for (const auto& [stream, p] : pending_) n += p.queue.size();
  return n;
}

std::int64_t Lane::safe_position() const {
  std::int64_t pos = read_pos_;
  for (const auto& [stream, p] : pending_) {
    if (!p.queue.empty()) pos = std::min(pos, p.queue.front().position);
  }
  return pos;
}

void Lane::maybe_save(bool force) {
  std::int64_t pos = safe_position();
  checkpoint_.store(pos, std::memory_order_release);
  if (pos == last_saved_) return;
  auto now = std::chrono::steady_clock::now();
  if (!force && now - last_save_time_ < kCheckpointInterval) return;
  if (runner_.bus_options().use_leases && !(lease_held_ && lease_fresh(now))) return;  // see hold_lease
  Status st = runner_.store().save_checkpoint(checkpoint_name_, pos);
  if (!st.is_ok()) {
    spdlog::warn("handler lane {}: cannot save checkpoint {}: {}", checkpoint_name_, pos, st.to_string());
    if (force) final_save_ok_.store(false, std::memory_order_release);
    return;
  }
  last_saved_ = pos;
  last_save_time_ = now;
}

std::optional<SteadyTime> Lane::next_due() const {
  std::optional<SteadyTime> t;
  for (const auto& [stream, p] : pending_) {
    if (!p.queue.empty()) t = t ? std::min(*t, p.due) : p.due;
  }
  return t;
}

void Lane::sleep_until(SteadyTime t) {
  std::unique_lock lock(wake_mu_);
  wake_cv_.wait_until(lock, t, [&] { return runner_.stopping().load() || reset_request_.has_value(); });
}

void Lane::loop() {
  auto& store = runner_.store();
  const auto& opts = runner_.options();
  const auto poll = runner_.bus_options().poll_interval;
  const bool leases = runner_.bus_options().use_leases;
  const std::size_t max_queued = std::max<std::size_t>(opts.batch_size * 4, 1024);

  if (!leases) {
    for (;;) {
      Status st = load_position();
      if (st.is_ok()) break;
      spdlog::warn("handler lane {}: cannot load checkpoint: {}", checkpoint_name_, st.to_string());
      state_.store(HandlerState::failed);
      if (runner_.stopping().load()) return;
      sleep_until(std::chrono::steady_clock::now() + kStoreErrorBackoff);
    }
    runner_.release_orphans(index_);
    active_.store(true, std::memory_order_release);
    state_.store(HandlerState::running);
  }

  while (!runner_.stopping().load(std::memory_order_acquire)) {
    if (!hold_lease()) {
      state_.store(HandlerState::stopped);  // standby: another instance runs this lane
      sleep_until(std::chrono::steady_clock::now() + renew_every(runner_.bus_options()));
      continue;
    }
    apply_reset();
    process_due_retries();

    bool caught_up = true;
    if (queued() < max_queued) {
      auto page = runner_.cache().read(read_pos_, opts.batch_size, runner_.filter());
      if (!page) {
        if (page.status().code() == StatusCode::failed_precondition && runner_.stopping().load()) break;
        spdlog::warn("handler lane {}: read failed: {}", checkpoint_name_, page.status().to_string());
        state_.store(HandlerState::failed);
        sleep_until(std::chrono::steady_clock::now() + kStoreErrorBackoff);
        continue;
      }
      bool interrupted = false;
      std::int64_t mark = runner_.clock_.now();
      for (std::size_t i = 0; i < page->size(); ++i) {
        const RecordedEvent& e = (*page)[i];
        if (runner_.stopping().load(std::memory_order_relaxed)) {
          interrupted = true;
          break;
        }
        if (leases) {
          const SteadyTime renewed = last_renew_;
          if (!hold_lease()) {
            interrupted = true;
            break;
          }
          if (last_renew_ != renewed) mark = runner_.clock_.now();  // not the handler's time
        }
        if (runner_.lane_of(e.stream_id) == index_) handle_new(e, mark);
        read_pos_ = e.position + 1;
      }
      if (!lease_held_ && leases) continue;
      if (!interrupted) read_pos_ = std::max(read_pos_, page->next_position());
      caught_up = page->end_of_log() && !interrupted;
    }
    state_.store(!pending_.empty() ? HandlerState::retrying
                                    : (caught_up ? HandlerState::running : HandlerState::catching_up));
    maybe_save(false);
    if (!caught_up && queued() < max_queued) continue;

    auto now = std::chrono::steady_clock::now();
    auto until = now + std::min(poll, kMaxWaitSlice);
    if (auto due = next_due()) until = std::min(until, *due);
    if (queued() >= max_queued) {
      sleep_until(until);  // the store has more, but this lane must first clear its retries
      continue;
    }
    if (until <= now) continue;
    {
      std::lock_guard lock(wake_mu_);
      if (reset_request_) continue;
    }
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(until - now) + std::chrono::milliseconds(1);
    Status st = store.wait_for(read_pos_ - 1, wait);
    if (st.code() == StatusCode::cancelled) {
      // The store closed under us; checkpoints cannot be written any more.
      state_.store(HandlerState::failed);
      final_save_ok_.store(false);
      return;
    }
  }
}

void Lane::handle_new(const RecordedEvent& e, std::int64_t& mark) {
  if (!pending_.empty()) {
    if (auto it = pending_.find(e.stream_id); it != pending_.end()) {
      it->second.queue.push_back(e);  // keeps the stream in order behind its retrying event
      mark = runner_.clock_.now();
      return;
    }
  }
  switch (runner_.park_if_parked(e)) {
    case HandlerRunner::ParkResult::parked:
      mark = runner_.clock_.now();  // parking wrote to the store
      return;
    case HandlerRunner::ParkResult::error: {
      Pending p;
      p.queue.push_back(e);
      p.due = std::chrono::steady_clock::now() + kStoreErrorBackoff;
      pending_.emplace(e.stream_id, std::move(p));
      mark = runner_.clock_.now();
      return;
    }
    case HandlerRunner::ParkResult::not_parked: break;
  }
  // When nothing of this lane is pending, everything before `e` is settled: an exactly_once
  // handler may then commit the checkpoint past `e` together with its effects.
  Status st = runner_.invoke_in_lane(e, index_, pending_.empty() ? &checkpoint_name_ : nullptr, mark);
  if (st.is_ok()) return;  // the hot path: no allocation beyond the handler's own
  Pending p;
  p.queue.push_back(e);
  p.first_failed = std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now());
  if (resolve_failure(p, st, 1)) drain(p);
  if (!p.queue.empty()) pending_.emplace(e.stream_id, std::move(p));
  mark = runner_.clock_.now();
}

void Lane::drain(Pending& p) {
  while (!p.queue.empty() && !runner_.stopping().load(std::memory_order_relaxed)) {
    const RecordedEvent& e = p.queue.front();
    int attempt = p.attempts + 1;
    Status st = runner_.invoke(e, attempt, index_);
    if (st.is_ok()) {
      p.queue.pop_front();
      p.attempts = 0;
      continue;
    }
    if (p.attempts == 0) {
      p.first_failed = std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now());
    }
    if (!resolve_failure(p, st, attempt)) return;
  }
}

bool Lane::resolve_failure(Pending& p, const Status& st, int attempt) {
  const auto& policy = runner_.options().retry;
  const RecordedEvent& e = p.queue.front();
  auto now = std::chrono::steady_clock::now();
  if (runner_.stopping().load() && st.code() == StatusCode::cancelled) {
    // Shutting down: the handler gave up on our request; the event stays unhandled.
    p.attempts = attempt - 1;
    p.due = now;
    return false;
  }
  if (policy.is_retryable(st) && attempt < policy.max_attempts) {
    p.attempts = attempt;
    p.due = now + policy.delay_after(attempt, unit_random());
    runner_.metrics().retried.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  Status dl = runner_.add_dead_letter(e, attempt, st, p.first_failed);
  if (!dl.is_ok() && dl.code() != StatusCode::already_exists) {
    // Cannot record it: keep it pending (the checkpoint stays below it) and try later.
    p.attempts = attempt - 1;
    p.due = now + kStoreErrorBackoff;
    return false;
  }
  p.queue.pop_front();
  p.attempts = 0;
  if (!runner_.options().park_stream_after_dead_letter) return true;
  // The stream is parked now: the rest of its queue waits behind the dead letter, durably.
  while (!p.queue.empty()) {
    auto r = runner_.park_if_parked(p.queue.front());
    if (r != HandlerRunner::ParkResult::parked) {
      p.due = now + kStoreErrorBackoff;
      return false;
    }
    p.queue.pop_front();
  }
  return false;
}

void Lane::process_due_retries() {
  if (pending_.empty()) return;
  auto now = std::chrono::steady_clock::now();
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (runner_.stopping().load(std::memory_order_relaxed)) return;
    Pending& p = it->second;
    if (!p.queue.empty() && p.due <= now) {
      // attempts == 0: the front never failed in the handler; an earlier park or dead-letter
      // write failed, so route the queue again before running anything.
      auto r = HandlerRunner::ParkResult::not_parked;
      while (p.attempts == 0 && !p.queue.empty() &&
             (r = runner_.park_if_parked(p.queue.front())) == HandlerRunner::ParkResult::parked) {
        p.queue.pop_front();
      }
      if (r == HandlerRunner::ParkResult::error) p.due = now + kStoreErrorBackoff;
      else drain(p);
    }
    if (p.queue.empty()) it = pending_.erase(it);
    else ++it;
  }
}

}  // namespace herald::bus
