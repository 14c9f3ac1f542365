// A lane's lease (BusOptions::use_leases): taking it, renewing it, noticing it lapsed or was
// lost, and fencing, so a lane whose lease may have expired neither handles nor saves anything.
#include <spdlog/spdlog.h>

#include "bus/runner.h"

namespace herald::bus {

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
  const SteadyTime now = runner_.time().now();
  if (lease_held_ && now - last_renew_ < renew_every(runner_.bus_options())) return true;
  const bool lapsed = lease_held_ && !lease_fresh(now);  // e.g. one handler call ran past the ttl
  auto got = runner_.store().try_acquire_lease(checkpoint_name_, runner_.instance_id(),
                                               runner_.bus_options().lease_ttl);
  last_renew_ = now;
  if (got && *got == LeaseOutcome::acquired) {
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

}  // namespace herald::bus
