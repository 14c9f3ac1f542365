// Dead letters and parked streams of one handler: adding them from the lanes, redrive, discard,
// and releasing the events parked behind a dead letter, in order.
//
// Parking is durable: a parked event is a DeadLetter entry with parked = true, so after a restart
// the lane finds its parked streams in the store (reload_parked) and keeps them parked.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>

#include "bus/runner.h"

namespace herald::bus {
namespace {

DeadLetter entry_for(const std::string& handler, const RecordedEvent& e) {
  DeadLetter dl;
  dl.handler = handler;
  dl.position = e.position;
  dl.event_id = e.id;
  dl.event_type = e.type;
  dl.stream_id = e.stream_id;
  return dl;
}

}  // namespace

Result<std::int64_t> HandlerRunner::store_dead_letter(const DeadLetter& dl, WriteFence fence) {
  if (fence.lease == nullptr) return store_->add_dead_letter(dl);
  std::int64_t id = 0;
  Status st = store_->transact([&](StoreTransaction& tx) -> Status {
    HERALD_RETURN_IF_ERROR(tx.check_lease(*fence.lease, fence.token));
    auto added = tx.add_dead_letter(dl);
    if (!added) return added.status();
    id = *added;
    return Status::ok();
  });
  if (!st.is_ok()) return st;
  return id;
}

Status HandlerRunner::add_dead_letter(const RecordedEvent& e, int attempts, const Status& error,
                                      Timestamp first_failed, WriteFence fence) {
  DeadLetter dl = entry_for(name_, e);
  dl.attempts = attempts;
  dl.last_error = error.to_string();
  dl.last_failed_at = wall_now();
  dl.first_failed_at = first_failed == Timestamp{} ? dl.last_failed_at : first_failed;
  Result<std::int64_t> id = Status::internal("unset");
  if (options_.park_stream_after_dead_letter) {
    std::lock_guard lock(park_mu_);
    id = store_dead_letter(dl, fence);
    if (id || id.status().code() == StatusCode::already_exists) {
      if (parked_streams_.insert(e.stream_id).second) parked_stream_count_.fetch_add(1, std::memory_order_release);
    }
  } else {
    id = store_dead_letter(dl, fence);
  }
  if (!id) {
    if (id.status().code() != StatusCode::already_exists) {
      spdlog::error("handler {}: cannot dead-letter event {} ({}) of stream {}: {}", name_, e.id, e.type,
                    e.stream_id, id.status().to_string());
    }
    return id.status();
  }
  metrics_.dead_lettered.fetch_add(1, std::memory_order_relaxed);
  spdlog::error("handler {} dead-lettered event {} type {} stream {} position {} after {} attempt(s): {}",
                name_, e.id, e.type, e.stream_id, e.position, attempts, dl.last_error);
  return Status::ok();
}

HandlerRunner::ParkResult HandlerRunner::park_if_parked(const RecordedEvent& e, WriteFence fence) {
  if (!options_.park_stream_after_dead_letter) return ParkResult::not_parked;
  if (parked_stream_count_.load(std::memory_order_acquire) == 0) return ParkResult::not_parked;
  std::lock_guard lock(park_mu_);
  if (!parked_streams_.contains(e.stream_id)) return ParkResult::not_parked;
  DeadLetter dl = entry_for(name_, e);
  dl.parked = true;
  dl.last_error = "parked behind an earlier dead letter of stream " + e.stream_id;
  dl.first_failed_at = dl.last_failed_at = wall_now();
  auto id = store_dead_letter(dl, fence);
  if (id) {
    parked_count_.fetch_add(1, std::memory_order_relaxed);
    return ParkResult::parked;
  }
  if (id.status().code() == StatusCode::already_exists) return ParkResult::parked;  // parked before a restart
  if (id.status().code() == StatusCode::lease_lost) return ParkResult::fenced;
  spdlog::warn("handler {}: cannot park event {} of stream {}: {}", name_, e.id, e.stream_id,
               id.status().to_string());
  return ParkResult::error;
}

Status HandlerRunner::reload_parked(int lane) {
  auto list = store_->list_dead_letters(name_);
  if (!list) return list.status();
  std::int64_t parked_entries = 0;
  std::lock_guard lock(park_mu_);
  for (auto it = parked_streams_.begin(); it != parked_streams_.end();) {
    if (lane < 0 || lane_of(*it) == lane) it = parked_streams_.erase(it);
    else ++it;
  }
  for (const auto& dl : *list) {
    if (dl.parked) ++parked_entries;
    if (!options_.park_stream_after_dead_letter) continue;
    if (lane < 0 || lane_of(dl.stream_id) == lane) parked_streams_.insert(dl.stream_id);
  }
  parked_stream_count_.store(static_cast<std::int64_t>(parked_streams_.size()), std::memory_order_release);
  parked_count_.store(parked_entries, std::memory_order_relaxed);
  return Status::ok();
}

namespace {

// A handler's entries for one stream, in position order.
Result<std::vector<DeadLetter>> stream_entries(EventStore& store, const std::string& handler,
                                               const std::string& stream) {
  auto all = store.list_dead_letters(handler);
  if (!all) return all.status();
  std::vector<DeadLetter> out;
  for (auto& dl : *all) {
    if (dl.stream_id == stream) out.push_back(std::move(dl));
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.position < b.position; });
  return out;
}

}  // namespace

Status HandlerRunner::run_parked_entry(DeadLetter entry) {
  auto e = read_event(entry.position, entry.event_id);
  if (!e) return e.status();
  Status st = invoke(*e, 1);
  parked_count_.fetch_sub(1, std::memory_order_relaxed);
  if (st.is_ok()) return store_->remove_dead_letter(entry.id);
  // It failed on its own now: it becomes the dead letter at the head of its stream.
  entry.parked = false;
  entry.attempts = 1;
  entry.last_error = st.to_string();
  entry.first_failed_at = entry.last_failed_at = wall_now();
  metrics_.dead_lettered.fetch_add(1, std::memory_order_relaxed);
  spdlog::error("handler {} dead-lettered released event {} type {} stream {} position {}: {}", name_,
                e->id, e->type, e->stream_id, e->position, entry.last_error);
  return store_->update_dead_letter(entry);
}

Status HandlerRunner::release_parked(const std::string& stream) {
  if (!options_.park_stream_after_dead_letter) return Status::ok();
  for (;;) {
    auto entries = stream_entries(*store_, name_, stream);
    if (!entries) return entries.status();
    if (entries->empty()) {
      // Decide under park_mu_ so a lane cannot park a new event between our look and the unpark.
      std::lock_guard lock(park_mu_);
      auto again = stream_entries(*store_, name_, stream);
      if (!again) return again.status();
      if (!again->empty()) continue;
      if (parked_streams_.erase(stream) > 0) parked_stream_count_.fetch_sub(1, std::memory_order_release);
      return Status::ok();
    }
    if (!entries->front().parked) return Status::ok();  // a failed entry heads it: still parked
    HERALD_RETURN_IF_ERROR(run_parked_entry(entries->front()));
  }
}

void HandlerRunner::release_orphans(int lane) {
  if (!options_.park_stream_after_dead_letter) return;
  std::lock_guard redrive_lock(redrive_mu_);
  auto all = store_->list_dead_letters(name_);
  if (!all) return;
  std::map<std::string, const DeadLetter*> first;  // stream -> its lowest-position entry
  for (const auto& dl : *all) {
    if (lane_of(dl.stream_id) != lane) continue;
    auto [it, fresh] = first.emplace(dl.stream_id, &dl);
    if (!fresh && dl.position < it->second->position) it->second = &dl;
  }
  for (const auto& [stream, dl] : first) {
    if (!dl->parked) continue;
    Status st = release_parked(stream);
    if (!st.is_ok()) spdlog::warn("handler {}: cannot release parked stream {}: {}", name_, stream, st.to_string());
  }
}

Status HandlerRunner::redrive(const DeadLetter& requested) {
  std::lock_guard redrive_lock(redrive_mu_);
  auto fresh = store_->get_dead_letter(requested.id);  // re-read: another redrive may have run
  if (!fresh) return fresh.status();
  DeadLetter entry = *fresh;
  if (options_.park_stream_after_dead_letter) {
    auto entries = stream_entries(*store_, name_, entry.stream_id);
    if (!entries) return entries.status();
    if (!entries->empty() && entries->front().id != entry.id) {
      return Status::failed_precondition("dead letter " + std::to_string(entry.id) + " waits behind dead letter " +
                                         std::to_string(entries->front().id) + " of stream " + entry.stream_id +
                                         "; redrive or discard that one first");
    }
  }
  auto e = read_event(entry.position, entry.event_id);
  if (!e) return e.status();
  Status st = invoke(*e, entry.attempts + 1);
  if (!st.is_ok()) {
    if (entry.parked) {
      parked_count_.fetch_sub(1, std::memory_order_relaxed);
      metrics_.dead_lettered.fetch_add(1, std::memory_order_relaxed);
    }
    entry.parked = false;
    entry.attempts += 1;
    entry.last_error = st.to_string();
    entry.last_failed_at = wall_now();
    Status up = store_->update_dead_letter(entry);
    if (!up.is_ok()) spdlog::warn("handler {}: cannot update dead letter {}: {}", name_, entry.id, up.to_string());
    return st;
  }
  HERALD_RETURN_IF_ERROR(store_->remove_dead_letter(entry.id));
  if (entry.parked) parked_count_.fetch_sub(1, std::memory_order_relaxed);
  spdlog::info("handler {}: redrove event {} of stream {} (dead letter {})", name_, entry.event_id,
               entry.stream_id, entry.id);
  return release_parked(entry.stream_id);
}

Status HandlerRunner::discard(const DeadLetter& requested) {
  std::lock_guard redrive_lock(redrive_mu_);
  HERALD_RETURN_IF_ERROR(store_->remove_dead_letter(requested.id));
  if (requested.parked) parked_count_.fetch_sub(1, std::memory_order_relaxed);
  spdlog::info("handler {}: discarded dead letter {} (event {} of stream {})", name_, requested.id,
               requested.event_id, requested.stream_id);
  return release_parked(requested.stream_id);
}

}  // namespace herald::bus
