// shop/auth/secrets — the shop's only cryptography, all of it libsodium: Argon2id password hashes,
// random bearer tokens and their BLAKE2b hashes, constant-time comparison. Why these choices and
// their parameters: docs/security.md, "Shop accounts".
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "herald/status.h"

namespace shop::auth {

// Initialises libsodium (idempotent, thread-safe). internal when the library cannot start (no
// entropy source); every function below requires it to have succeeded.
herald::Status init_crypto();

// The registration rules, in the 400 message when one fails: 10 to 128 characters of valid UTF-8
// without control characters, at least 5 different characters, not one of the commonest
// passwords, and not containing the part of `email` before the '@' (when that is 3 characters or
// more). Pure.
herald::Status check_password_rules(std::string_view password, std::string_view email);

// Argon2id (crypto_pwhash_str, OPSLIMIT_INTERACTIVE / MEMLIMIT_INTERACTIVE: 2 passes over 64 MiB)
// of `password`, in the self-describing "$argon2id$v=19$m=65536,t=2,p=1$salt$hash" form with a
// fresh 128-bit salt. internal when the memory cannot be had. Costs ~0.1 s of one core: call off
// the I/O threads (HTTP handlers run on workers). Thread-safe.
herald::Result<std::string> hash_password(std::string_view password);

// True when `password` matches `stored` (a hash_password result). False for a malformed hash.
// Same cost as hash_password. Thread-safe.
bool verify_password(std::string_view password, const std::string& stored);

// A hash of a password nobody knows, made once per process with the same parameters: verifying
// against it costs what a real verification costs, so an unknown e-mail answers in the same time.
const std::string& dummy_password_hash();

inline constexpr std::size_t kTokenBytes = 32;  // 256 bits from randombytes_buf
using TokenHash = std::array<std::uint8_t, 32>;

// A fresh bearer token: kTokenBytes random bytes as 64 lower-case hex digits. Thread-safe.
std::string new_token();
// The BLAKE2b-256 hash of a token's bytes, or nullopt when `token` is not 64 hex digits (so a
// malformed token never reaches the store). Pure.
std::optional<TokenHash> hash_token(std::string_view token);
// Lower-case hex of a hash: the document key a token is stored under.
std::string to_hex(const TokenHash& hash);
// Parses to_hex's output; nullopt for anything else.
std::optional<TokenHash> from_hex(std::string_view hex);
// Constant-time equality (crypto_verify_32).
bool same_hash(const TokenHash& a, const TokenHash& b);

}  // namespace shop::auth
