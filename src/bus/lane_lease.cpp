// A lane's lease (BusOptions::use_leases): taking it, renewing it, noticing it lapsed or was
// lost, and the fencing token its writes carry, so a lane that lost its lease commits nothing.
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

// The lease is judged by one clock (the database server's on PostgreSQL) and every write of the
// lane carries the fencing token of its holding (see fence()): once another instance acquired the
// lease, this lane's writes are refused, whatever its own clock says. On top of that, a lane
// handles events and saves its checkpoint only while its lease is fresh by its monotonic clock
// (renewed less than ttl minus a margin ago), so a lane that was paused stops by itself too.
bool Lane::hold_lease() {
  if (!runner_.bus_options().use_leases) return true;
  const SteadyTime now = runner_.time().now();
  if (lease_held_ && now - last_renew_ < renew_every(runner_.bus_options())) return true;
  auto got = runner_.store().try_acquire_lease(checkpoint_name_, runner_.instance_id(),
                                               runner_.bus_options().lease_ttl);
  last_renew_ = now;
  if (got && got->outcome == LeaseOutcome::acquired) {
    if (lease_held_ && got->token != lease_token_) {
      // A new token for a lease we thought we held: it expired (e.g. one handler call ran past the
      // ttl) and was granted anew, so another instance may have run the lane in the gap: it would
      // have moved the stored checkpoint out of the range this lane writes itself (its last save
      // up to its read position; exactly_once commits checkpoints inside that range). If it is
      // still in range, keep our position and retry state: dropping them here would restart a
      // slow failing event at attempt 1 forever. Otherwise start over from what is stored.
      lease_token_ = got->token;
      auto stored = runner_.store().load_checkpoint(checkpoint_name_);
      if (!stored || *stored < last_saved_ || *stored > read_pos_) {
        lose_lease("lease lapsed and another instance moved the lane meanwhile");
      } else {
        spdlog::warn("handler lane {}: lease lapsed (a call ran past the ttl) and was taken back", checkpoint_name_);
      }
    }
    if (!lease_held_) {
      // Someone else may have run this lane meanwhile: start from what is stored now.
      lease_token_ = got->token;
      fenced_ = false;
      Status st = load_position();
      if (st.is_ok()) st = runner_.reload_parked(index_);
      if (!st.is_ok()) {
        spdlog::warn("handler lane {}: cannot load its state after taking the lease: {}", checkpoint_name_,
                     st.to_string());
        fenced_ = false;  // nothing was held: the next try starts clean
        return false;
      }
      spdlog::info("handler lane {}: lease acquired by {} (fencing token {})", checkpoint_name_,
                   runner_.instance_id(), lease_token_);
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
