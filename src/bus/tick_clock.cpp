#include "bus/tick_clock.h"

#include <chrono>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#include <x86intrin.h>
#define HERALD_HAVE_TSC 1
#endif

namespace herald::bus {
namespace {

std::int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

#ifdef HERALD_HAVE_TSC
// CPUID 0x80000007, EDX bit 8: the TSC runs at a constant rate in every P-, C- and T-state.
bool tsc_is_invariant() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  // Cast: clang declares the result int, GCC unsigned.
  if (static_cast<unsigned>(__get_cpuid_max(0x80000000, nullptr)) < 0x80000007u) return false;
  if (__get_cpuid(0x80000007, &eax, &ebx, &ecx, &edx) == 0) return false;
  return (edx & (1u << 8)) != 0;
}
#endif

}  // namespace

TickClock::TickClock() {
#ifdef HERALD_HAVE_TSC
  if (!tsc_is_invariant()) return;
  // Count TSC ticks over at least 2 ms of steady_clock; the two reads around each end bound the
  // error to a few parts in 100 000.
  const std::int64_t ns0 = steady_ns();
  const auto ticks0 = static_cast<std::int64_t>(__rdtsc());
  std::int64_t ns1 = ns0;
  while (ns1 - ns0 < 2'000'000) ns1 = steady_ns();
  const auto ticks1 = static_cast<std::int64_t>(__rdtsc());
  if (ticks1 <= ticks0) return;  // a TSC that did not move is no clock: keep steady_clock
  micros_per_tick_ = static_cast<double>(ns1 - ns0) / 1000.0 / static_cast<double>(ticks1 - ticks0);
  tsc_ = true;
#endif
}

const TickClock& TickClock::get() {
  static const TickClock clock;
  return clock;
}

std::int64_t TickClock::now() const {
#ifdef HERALD_HAVE_TSC
  if (tsc_) return static_cast<std::int64_t>(__rdtsc());
#endif
  return steady_ns();
}

std::int64_t TickClock::micros(std::int64_t ticks) const {
  if (ticks <= 0) return 0;
  return static_cast<std::int64_t>(static_cast<double>(ticks) * micros_per_tick_);
}

}  // namespace herald::bus
