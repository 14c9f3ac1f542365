// A lane's thread: loading its checkpoint, the read loop over the store, routing each event
// (pending stream, parked stream, or the handler), batched checkpoint saves, resets and waits.
// Every wait and every "now" goes through BusOptions::time, so a manual time source drives it.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "bus/runner.h"

namespace herald::bus {

Lane::Lane(HandlerRunner& runner, int index)
    : dispatch(runner.store(), runner.name(), &runner.stopping()),
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
  // stop()'s deadline is the caller's real time (it bounds a wait for this thread to leave, which
  // a manual time source would never end), so this is the one lane wait not on runner_.time().
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
  if (loaded_.load() && (!runner_.bus_options().use_leases || (lease_held_ && lease_fresh(runner_.time().now())))) {
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
    HERALD_RETURN_IF_ERROR(write_checkpoint(read_pos_, false));
  } else {
    return cp.status();
  }
  pending_.clear();
  last_saved_ = read_pos_;
  last_save_time_ = runner_.time().now();
  checkpoint_.store(read_pos_, std::memory_order_release);
  loaded_.store(true, std::memory_order_release);
  return Status::ok();
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
  checkpoint_.store(read_pos_, std::memory_order_release);
  Status st = write_checkpoint(read_pos_, true);  // a rewind: the one backward checkpoint write
  if (st.is_ok()) {
    last_saved_ = read_pos_;
    last_save_time_ = runner_.time().now();
  } else {
    spdlog::warn("handler lane {}: cannot save reset checkpoint {}: {}", checkpoint_name_, read_pos_, st.to_string());
    last_saved_ = -1;  // the next save writes it (forward only: a failed rewind is not retried)
  }
  reset_pending_.store(false, std::memory_order_release);
}

WriteFence Lane::fence() const {
  if (!runner_.bus_options().use_leases) return {};
  return {&checkpoint_name_, lease_token_};
}

Status Lane::write_checkpoint(std::int64_t pos, bool rewind) {
  auto& store = runner_.store();
  const WriteFence f = fence();
  if (f.lease == nullptr && !rewind) return store.save_checkpoint(checkpoint_name_, pos);
  Status st = store.transact([&](StoreTransaction& tx) -> Status {
    if (f.lease != nullptr) HERALD_RETURN_IF_ERROR(tx.check_lease(*f.lease, f.token));
    return rewind ? tx.reset_checkpoint(checkpoint_name_, pos) : tx.save_checkpoint(checkpoint_name_, pos);
  });
  note_status(st);
  return st;
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
  const SteadyTime now = runner_.time().now();
  if (!force && now - last_save_time_ < kCheckpointInterval) return;
  if (runner_.bus_options().use_leases && !(lease_held_ && lease_fresh(now))) return;  // see hold_lease
  Status st = write_checkpoint(pos, false);
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
  (void)runner_.time().wait_until(lock, wake_cv_, t,
                                  [&] { return runner_.stopping().load() || reset_request_.has_value(); });
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
      sleep_until(runner_.time().now() + kStoreErrorBackoff);
    }
    runner_.release_orphans(index_);
    active_.store(true, std::memory_order_release);
    state_.store(HandlerState::running);
  }

  while (!runner_.stopping().load(std::memory_order_acquire)) {
    if (fenced_) {
      fenced_ = false;
      lose_lease("a write was refused: another instance holds the lease (its fencing token is newer)");
    }
    if (!hold_lease()) {
      state_.store(HandlerState::stopped);  // standby: another instance runs this lane
      sleep_until(runner_.time().now() + renew_every(runner_.bus_options()));
      continue;
    }
    apply_reset();
    process_due_retries();
    if (fenced_) continue;

    bool caught_up = true;
    if (queued() < max_queued) {
      auto page = runner_.cache().read(read_pos_, opts.batch_size, runner_.filter());
      if (!page) {
        if (page.status().code() == StatusCode::failed_precondition && runner_.stopping().load()) break;
        spdlog::warn("handler lane {}: read failed: {}", checkpoint_name_, page.status().to_string());
        state_.store(HandlerState::failed);
        sleep_until(runner_.time().now() + kStoreErrorBackoff);
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
        if (fenced_) {
          interrupted = true;
          break;
        }
        read_pos_ = e.position + 1;
      }
      if ((!lease_held_ && leases) || fenced_) continue;
      if (!interrupted) read_pos_ = std::max(read_pos_, page->next_position());
      caught_up = page->end_of_log() && !interrupted;
    }
    state_.store(!pending_.empty() ? HandlerState::retrying
                                    : (caught_up ? HandlerState::running : HandlerState::catching_up));
    maybe_save(false);
    if (!caught_up && queued() < max_queued) continue;

    const SteadyTime now = runner_.time().now();
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
    // The store's wait returns early only for a new event, not for time moved by a manual time
    // source: the source bounds it (uninterruptible_slice) so such a move is noticed soon.
    auto wait = std::min(std::chrono::duration_cast<std::chrono::milliseconds>(until - now) + std::chrono::milliseconds(1),
                         runner_.time().uninterruptible_slice());
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
  switch (runner_.park_if_parked(e, fence())) {
    case HandlerRunner::ParkResult::parked:
      mark = runner_.clock_.now();  // parking wrote to the store
      return;
    case HandlerRunner::ParkResult::fenced:
      fenced_ = true;
      return;
    case HandlerRunner::ParkResult::error: {
      Pending p;
      p.queue.push_back(e);
      p.due = runner_.time().now() + kStoreErrorBackoff;
      pending_.emplace(e.stream_id, std::move(p));
      mark = runner_.clock_.now();
      return;
    }
    case HandlerRunner::ParkResult::not_parked: break;
  }
  // When nothing of this lane is pending, everything before `e` is settled: an exactly_once
  // handler may then commit the checkpoint past `e` together with its effects.
  Status st = runner_.invoke_in_lane(e, index_, pending_.empty() ? &checkpoint_name_ : nullptr, mark, fence());
  if (st.is_ok()) return;  // the hot path: no allocation beyond the handler's own
  if (st.code() == StatusCode::lease_lost) {
    fenced_ = true;  // never retried nor dead-lettered: the lease's new owner handles the event
    return;
  }
  Pending p;
  p.queue.push_back(e);
  p.first_failed = runner_.wall_now();
  if (resolve_failure(p, st, 1)) drain(p);
  if (fenced_) return;
  if (!p.queue.empty()) pending_.emplace(e.stream_id, std::move(p));
  mark = runner_.clock_.now();
}

}  // namespace herald::bus
