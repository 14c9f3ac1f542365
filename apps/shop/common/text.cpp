#include "common/text.h"

#include <string>

namespace shop {
namespace {

// Decodes the code point at text[i] and advances i past it; nullopt (i unspecified) for an
// invalid sequence. Follows the well-formed table of Unicode 15, section 3.9 (table 3-7), so
// overlong forms, surrogates and values above U+10FFFF are all refused.
std::optional<char32_t> next_code_point(std::string_view text, std::size_t& i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char lead = byte(i);
  if (lead < 0x80) {
    ++i;
    return lead;
  }
  std::size_t extra = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the first continuation byte
  char32_t cp = 0;
  if (lead >= 0xC2 && lead <= 0xDF) {
    extra = 1;
    cp = lead & 0x1Fu;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    extra = 2;
    cp = lead & 0x0Fu;
    if (lead == 0xE0) lo = 0xA0;  // overlong
    if (lead == 0xED) hi = 0x9F;  // surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    extra = 3;
    cp = lead & 0x07u;
    if (lead == 0xF0) lo = 0x90;  // overlong
    if (lead == 0xF4) hi = 0x8F;  // above U+10FFFF
  } else {
    return std::nullopt;
  }
  if (text.size() - i <= extra) return std::nullopt;
  for (std::size_t k = 1; k <= extra; ++k) {
    const unsigned char c = byte(i + k);
    const unsigned char min = k == 1 ? lo : 0x80, max = k == 1 ? hi : 0xBF;
    if (c < min || c > max) return std::nullopt;
    cp = (cp << 6) | (c & 0x3Fu);
  }
  i += extra + 1;
  return cp;
}

bool is_control(char32_t cp) {
  return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) || cp == 0x2028 || cp == 0x2029;
}

std::string quoted(std::string_view field) { return "field '" + std::string(field) + "'"; }

}  // namespace

std::optional<std::size_t> utf8_length(std::string_view text) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < text.size(); ++n) {
    if (!next_code_point(text, i)) return std::nullopt;
  }
  return n;
}

std::size_t utf8_sequence_length(unsigned char lead) noexcept {
  if (lead >= 0xF0) return 4;
  if (lead >= 0xE0) return 3;
  if (lead >= 0xC0) return 2;
  return 1;
}

bool has_control_character(std::string_view text) {
  for (std::size_t i = 0; i < text.size();) {
    auto cp = next_code_point(text, i);
    if (!cp) return false;  // not valid UTF-8: the caller checks that first
    if (is_control(*cp)) return true;
  }
  return false;
}

herald::Status check_plain_text(std::string_view field, std::string_view text) {
  if (!utf8_length(text)) return herald::Status::invalid_argument(quoted(field) + " must be valid UTF-8");
  if (has_control_character(text)) {
    return herald::Status::invalid_argument(quoted(field) + " must not contain control characters");
  }
  return {};
}

herald::Status check_plain_text(std::string_view field, std::string_view text, std::size_t min_chars,
                                std::size_t max_chars) {
  HERALD_RETURN_IF_ERROR(check_plain_text(field, text));
  const std::size_t n = *utf8_length(text);
  if (n < min_chars || n > max_chars) {
    return herald::Status::invalid_argument(quoted(field) + " must be " + std::to_string(min_chars) + " to " +
                                            std::to_string(max_chars) + " characters");
  }
  return {};
}

}  // namespace shop
