#include "herald/id.h"

#include <array>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <random>

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

}  // namespace

std::string new_uuid_v7() {
  // Guards the monotonic state: last millisecond and the 74 random bits used as a counter within it.
  static std::mutex mu;
  static std::uint64_t last_ms = 0;
  static std::uint64_t rand_hi = 0;  // 12 bits (rand_a)
  static std::uint64_t rand_lo = 0;  // 62 bits (rand_b)
  static std::mt19937_64 rng{std::random_device{}()};

  std::uint64_t ms = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::system_clock::now().time_since_epoch())
          .count());
  std::uint64_t hi, lo;
  {
    std::lock_guard lock(mu);
    if (ms > last_ms) {
      last_ms = ms;
      rand_hi = rng() & 0x7FF;  // top bit clear leaves room to count
      rand_lo = rng() & 0x3FFFFFFFFFFFFFFFULL;
    } else {
      // Same (or earlier, after a clock step) millisecond: count up so ids keep increasing.
      ms = last_ms;
      if (++rand_lo > 0x3FFFFFFFFFFFFFFFULL) {
        rand_lo = 0;
        if (++rand_hi > 0xFFF) {
          rand_hi = 0;
          ms = ++last_ms;
        }
      }
    }
    hi = rand_hi;
    lo = rand_lo;
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
