#include "core/log_text.h"

#include <cstdint>

namespace herald::detail {
namespace {

// The code point of the valid UTF-8 sequence at `text[i]` (b0 >= 0x80), its length in `len`; -1
// for an invalid one (truncated, overlong, surrogate, beyond U+10FFFF).
long decode_sequence(std::string_view text, std::size_t i, std::size_t& len) noexcept {
  const auto b0 = static_cast<unsigned char>(text[i]);
  std::uint32_t cp = 0;
  if ((b0 & 0xE0) == 0xC0) {
    len = 2;
    cp = b0 & 0x1F;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3;
    cp = b0 & 0x0F;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4;
    cp = b0 & 0x07;
  } else {
    return -1;
  }
  if (i + len > text.size()) return -1;
  for (std::size_t k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(text[i + k]);
    if ((b & 0xC0) != 0x80) return -1;
    cp = (cp << 6) | (b & 0x3F);
  }
  static constexpr std::uint32_t kMinForLength[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMinForLength[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return -1;
  return static_cast<long>(cp);
}

// The length of the UTF-8 sequence at `text[i]` when it is valid and harmless in a log, else 0.
std::size_t safe_sequence(std::string_view text, std::size_t i) noexcept {
  const auto b0 = static_cast<unsigned char>(text[i]);
  if (b0 < 0x80) return (b0 >= 0x20 && b0 != 0x7F && b0 != '\\') ? 1 : 0;
  std::size_t len = 0;
  const long cp = decode_sequence(text, i, len);
  if (cp < 0) return 0;
  if ((cp >= 0x80 && cp <= 0x9F) || cp == 0x2028 || cp == 0x2029) return 0;  // C1, line breaks
  return len;
}

void append_u_escape(std::uint32_t cp, std::string& out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += "\\u";
  for (int shift = 12; shift >= 0; shift -= 4) out.push_back(kHex[(cp >> shift) & 0xF]);
}

}  // namespace

void append_json_escaped(std::string_view value, std::string& out) {
  out.reserve(out.size() + value.size());
  for (std::size_t i = 0; i < value.size();) {
    const auto b = static_cast<unsigned char>(value[i]);
    if (b >= 0x20 && b < 0x7F && b != '"' && b != '\\') {
      out.push_back(static_cast<char>(b));
      ++i;
      continue;
    }
    if (b < 0x80) {
      switch (b) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default: append_u_escape(b, out);
      }
      ++i;
      continue;
    }
    const std::size_t n = safe_sequence(value, i);
    if (n > 0) {
      out.append(value.substr(i, n));
      i += n;
      continue;
    }
    std::size_t len = 0;
    const long cp = decode_sequence(value, i, len);
    if (cp < 0) {
      append_u_escape(0xFFFD, out);  // one per byte: the rest of a broken sequence is judged afresh
      ++i;
    } else {
      append_u_escape(static_cast<std::uint32_t>(cp), out);  // C1 control, U+2028, U+2029
      i += len;
    }
  }
}

bool is_log_safe(std::string_view value) noexcept {
  for (std::size_t i = 0; i < value.size();) {
    const std::size_t n = safe_sequence(value, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string escape_for_log(std::string_view value) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(value.size());
  for (std::size_t i = 0; i < value.size();) {
    const std::size_t n = safe_sequence(value, i);
    if (n > 0) {
      out.append(value.substr(i, n));
      i += n;
      continue;
    }
    // Escape the first byte only: the rest of a broken or unwanted sequence is judged afresh.
    const auto b = static_cast<unsigned char>(value[i]);
    out += "\\x";
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 0xF]);
    ++i;
  }
  return out;
}

}  // namespace herald::detail
