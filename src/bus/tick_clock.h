// Internal: timestamps for per-call handler latency, which the bus takes once per dispatched
// event. steady_clock::now() is a vDSO call (about 25 ns on the 2-core CI machine, a third of
// dispatching an event to a no-op handler); reading the x86 TSC costs about 10 ns and is as good
// when the CPU declares it invariant (constant rate, running in every power state). Elsewhere
// the clock falls back to steady_clock.
//
// It is deliberately not BusOptions::time: it measures how long a handler's code really ran (a
// figure for the latency histogram, never a schedule), which a test's manual time would report as
// zero, and the hot path cannot afford a virtual call and a lock per event.
#pragma once

#include <cstdint>

namespace herald::bus {

// Thread-safety: immutable after construction; now() and micros() are safe from any thread.
class TickClock {
 public:
  // The process-wide clock. The first call calibrates the TSC against steady_clock (about 2 ms).
  static const TickClock& get();

  // An opaque tick count; only differences of two now() values mean anything.
  std::int64_t now() const;
  // Whole microseconds in `ticks` (a difference of two now() values); 0 for a negative one
  // (a thread that moved to a core whose TSC is a little behind).
  std::int64_t micros(std::int64_t ticks) const;

  bool uses_tsc() const { return tsc_; }

 private:
  TickClock();

  bool tsc_ = false;
  double micros_per_tick_ = 0.001;  // steady_clock nanoseconds unless tsc_
};

}  // namespace herald::bus
