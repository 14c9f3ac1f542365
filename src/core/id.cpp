#include "herald/id.h"

#include <pthread.h>
#include <sys/random.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <mutex>

namespace herald {
namespace {

constexpr char kHex[] = "0123456789abcdef";

std::string format_uuid(const std::array<std::uint8_t, 16>& b) {
  std::string out;
  out.reserve(36);
  for (std::size_t i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
    out.push_back(kHex[b[i] >> 4]);
    out.push_back(kHex[b[i] & 0xF]);
  }
  return out;
}

// 64-bit FNV-1a, seeded: enough spread for derived ids (not a security property).
std::uint64_t fnv1a(std::string_view a, std::string_view b, std::uint64_t seed) {
  std::uint64_t h = 1469598103934665603ULL ^ seed;
  auto mix = [&h](std::string_view s) {
    for (unsigned char c : s) {
      h ^= c;
      h *= 1099511628211ULL;
    }
  };
  mix(a);
  h ^= 0xFF;
  h *= 1099511628211ULL;
  mix(b);
  return h;
}

// Random bytes from the kernel's CSPRNG (getrandom), fetched a buffer at a time: one system
// call per 32 ids instead of one per id. Each byte is handed out once; after fork() the child
// discards what it inherited so parent and child never share bytes.
class OsRandom {
 public:
  std::uint64_t next64() {
    if (generation_ != fork_generation().load(std::memory_order_relaxed)) {
      used_ = sizeof buffer_;
      generation_ = fork_generation().load(std::memory_order_relaxed);
    }
    if (used_ + 8 > sizeof buffer_) refill();
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = (v << 8) | buffer_[used_++];
    return v;
  }

  // Incremented in every child process by a pthread_atfork handler.
  static std::atomic<std::uint64_t>& fork_generation() {
    static std::atomic<std::uint64_t> generation{0};
    return generation;
  }

 private:
  void refill() {
    std::size_t filled = 0;
    while (filled < sizeof buffer_) {
      ssize_t n = ::getrandom(buffer_.data() + filled, sizeof buffer_ - filled, 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        // getrandom cannot fail on Linux >= 3.17 once the pool is initialised; an id made from
        // predictable bits would be a silent security hole, so do not limp on.
        std::perror("herald: getrandom failed");
        std::abort();
      }
      filled += static_cast<std::size_t>(n);
    }
    used_ = 0;
  }

  std::array<std::uint8_t, 256> buffer_{};
  std::size_t used_ = sizeof buffer_;
  std::uint64_t generation_ = 0;
};

OsRandom& thread_random() {
  static std::once_flag at_fork_once;
  std::call_once(at_fork_once, [] {
    ::pthread_atfork(nullptr, nullptr, [] { OsRandom::fork_generation().fetch_add(1); });
  });
  thread_local OsRandom random;
  return random;
}

}  // namespace

std::string new_uuid_v7() {
  // RFC 9562 6.2 method 1: rand_a (12 bits) is a counter that orders ids within a millisecond; it
  // starts at a random value below 2048 each millisecond, so at least 2048 ids fit before the
  // counter borrows the next millisecond. rand_b (62 bits) is fresh from the OS for every id
  // (6.9), so ids made in the same millisecond are not guessable from one another.
  // Guards the monotonic state: the last millisecond used and the counter within it.
  static std::mutex mu;
  static std::uint64_t last_ms = 0;
  static std::uint64_t counter = 0;  // 12 bits

  OsRandom& random = thread_random();
  const std::uint64_t lo = random.next64() & 0x3FFFFFFFFFFFFFFFULL;
  const std::uint64_t fresh_counter = random.next64() & 0x7FF;
  std::uint64_t ms = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::system_clock::now().time_since_epoch())
          .count());
  std::uint64_t hi;
  {
    std::lock_guard lock(mu);
    if (ms > last_ms) {
      last_ms = ms;
      counter = fresh_counter;
    } else if (++counter > 0xFFF) {
      // Same (or earlier, after a clock step) millisecond with the counter spent: borrow the next
      // millisecond so ids keep increasing.
      ms = ++last_ms;
      counter = fresh_counter;
    } else {
      ms = last_ms;
    }
    hi = counter;
  }
  std::array<std::uint8_t, 16> b{};
  for (int i = 0; i < 6; ++i) b[i] = static_cast<std::uint8_t>(ms >> (40 - 8 * i));
  b[6] = static_cast<std::uint8_t>(0x70 | ((hi >> 8) & 0x0F));
  b[7] = static_cast<std::uint8_t>(hi & 0xFF);
  b[8] = static_cast<std::uint8_t>(0x80 | ((lo >> 56) & 0x3F));
  for (int i = 9; i < 16; ++i) b[i] = static_cast<std::uint8_t>(lo >> (8 * (15 - i)));
  return format_uuid(b);
}

std::string derived_uuid(std::string_view ns, std::string_view name) {
  std::uint64_t h1 = fnv1a(ns, name, 0x9E3779B97F4A7C15ULL);
  std::uint64_t h2 = fnv1a(name, ns, 0xC2B2AE3D27D4EB4FULL);
  std::array<std::uint8_t, 16> b{};
  for (int i = 0; i < 8; ++i) b[i] = static_cast<std::uint8_t>(h1 >> (56 - 8 * i));
  for (int i = 0; i < 8; ++i) b[8 + i] = static_cast<std::uint8_t>(h2 >> (56 - 8 * i));
  b[6] = static_cast<std::uint8_t>(0x80 | (b[6] & 0x0F));  // version 8
  b[8] = static_cast<std::uint8_t>(0x80 | (b[8] & 0x3F));  // RFC 9562 variant
  return format_uuid(b);
}

bool is_uuid(std::string_view text) {
  if (text.size() != 36) return false;
  for (std::size_t i = 0; i < 36; ++i) {
    char c = text[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return false;
    } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
      return false;
    }
  }
  return true;
}

}  // namespace herald
