#include "auth/secrets.h"

#include <sodium.h>

#include <algorithm>
#include <set>

#include "common/text.h"

namespace shop::auth {

using herald::Status;

Status init_crypto() {
  // sodium_init is itself thread-safe and returns 1 once initialised.
  if (sodium_init() < 0) return Status::internal("libsodium could not be initialised");
  return {};
}

namespace {

constexpr std::size_t kMinPasswordChars = 10;
constexpr std::size_t kMaxPasswordChars = 128;
constexpr std::size_t kMinDistinctChars = 5;

std::string lower_ascii(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; });
  return out;
}

// The commonest passwords of 10 characters or more in the published breach lists: a length rule
// alone lets these through.
bool is_common(std::string_view password) {
  static const std::set<std::string, std::less<>> kCommon = {
      "1234567890", "12345678910", "123456789a", "0123456789", "1111111111", "qwertyuiop", "1q2w3e4r5t",
      "password12", "password123", "password1234", "passw0rd123", "iloveyou12", "qwerty1234", "qwerty12345",
      "abcdefghij", "abcd123456", "1234qwerty", "asdfghjkl1", "letmein123", "welcome123", "administrator",
      "zaq12wsxcde", "1qaz2wsx3edc", "football123", "baseball123", "princess123", "sunshine123", "monkey1234"};
  return kCommon.count(lower_ascii(password)) > 0;
}

}  // namespace

Status check_password_rules(std::string_view password, std::string_view email) {
  constexpr std::string_view kRules =
      "field 'password' must be 10 to 128 characters with at least 5 different ones, not a common password "
      "and not containing the e-mail address's name";
  if (Status s = check_plain_text("password", password); !s) return s;
  const auto chars = utf8_length(password);
  if (!chars || *chars < kMinPasswordChars || *chars > kMaxPasswordChars) {
    return Status::invalid_argument(std::string(kRules) + " (it has " + std::to_string(chars.value_or(0)) +
                                    " characters)");
  }
  std::set<std::string_view> distinct;
  for (std::size_t i = 0; i < password.size();) {
    const std::size_t n = utf8_sequence_length(static_cast<unsigned char>(password[i]));
    distinct.insert(password.substr(i, n));
    i += n;
  }
  if (distinct.size() < kMinDistinctChars) {
    return Status::invalid_argument(std::string(kRules) + " (it has " + std::to_string(distinct.size()) +
                                    " different characters)");
  }
  if (is_common(password)) return Status::invalid_argument(std::string(kRules) + " (it is a common password)");
  const auto at = email.find('@');
  const std::string local = lower_ascii(email.substr(0, at));
  if (local.size() >= 3 && lower_ascii(password).find(local) != std::string::npos) {
    return Status::invalid_argument(std::string(kRules) + " (it contains the e-mail address's name)");
  }
  return {};
}

herald::Result<std::string> hash_password(std::string_view password) {
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str(out, password.data(), password.size(), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                        crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
    return Status::internal("password hashing ran out of memory");
  }
  return std::string(out);
}

bool verify_password(std::string_view password, const std::string& stored) {
  return crypto_pwhash_str_verify(stored.c_str(), password.data(), password.size()) == 0;
}

const std::string& dummy_password_hash() {
  static const std::string kDummy = [] {
    unsigned char secret[32];
    randombytes_buf(secret, sizeof secret);
    auto h = hash_password(std::string_view(reinterpret_cast<const char*>(secret), sizeof secret));
    return h ? *h : std::string();
  }();
  return kDummy;
}

std::string new_token() {
  unsigned char bytes[kTokenBytes];
  randombytes_buf(bytes, sizeof bytes);
  char hex[kTokenBytes * 2 + 1];
  sodium_bin2hex(hex, sizeof hex, bytes, sizeof bytes);
  sodium_memzero(bytes, sizeof bytes);
  return std::string(hex, kTokenBytes * 2);
}

namespace {
bool is_lower_hex(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}
}  // namespace

std::optional<TokenHash> hash_token(std::string_view token) {
  if (token.size() != kTokenBytes * 2 || !is_lower_hex(token)) return std::nullopt;
  unsigned char bytes[kTokenBytes];
  std::size_t len = 0;
  if (sodium_hex2bin(bytes, sizeof bytes, token.data(), token.size(), nullptr, &len, nullptr) != 0 ||
      len != kTokenBytes) {
    return std::nullopt;
  }
  TokenHash h{};
  crypto_generichash(h.data(), h.size(), bytes, sizeof bytes, nullptr, 0);
  sodium_memzero(bytes, sizeof bytes);
  return h;
}

std::string to_hex(const TokenHash& hash) {
  char hex[64 + 1];
  sodium_bin2hex(hex, sizeof hex, hash.data(), hash.size());
  return std::string(hex, 64);
}

std::optional<TokenHash> from_hex(std::string_view hex) {
  if (hex.size() != 64 || !is_lower_hex(hex)) return std::nullopt;
  TokenHash h{};
  std::size_t len = 0;
  if (sodium_hex2bin(h.data(), h.size(), hex.data(), hex.size(), nullptr, &len, nullptr) != 0 || len != h.size()) {
    return std::nullopt;
  }
  return h;
}

bool same_hash(const TokenHash& a, const TokenHash& b) { return crypto_verify_32(a.data(), b.data()) == 0; }

}  // namespace shop::auth
