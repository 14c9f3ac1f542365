#include "notifications/mime.h"

#include <time.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <string_view>
#include <vector>

#include "common/common.h"
#include "common/text.h"
#include "herald/id.h"

namespace shop::notifications {
namespace {

using herald::Status;

// RFC 2047 section 2: a header line holding an encoded-word is at most 76 characters. Applied to
// every header line (also below RFC 5322's 78), so one limit covers plain and encoded values.
constexpr std::size_t kMaxHeaderLine = 76;
constexpr std::size_t kMaxEncodedWord = 75;
constexpr std::string_view kWordStart = "=?UTF-8?B?";
constexpr std::string_view kWordEnd = "?=";
constexpr std::size_t kWordOverhead = kWordStart.size() + kWordEnd.size();
// Room for an encoded-word holding one character of up to 4 bytes (8 base64 characters).
constexpr std::size_t kMinEncodedWord = kWordOverhead + 8;
// Plain words are never split, so a longer one is encoded instead (encoded-words split anywhere
// between characters); short enough to fit after "Subject: " on one line.
constexpr std::size_t kMaxPlainWord = 60;
// RFC 5322 section 2.1.1: no line may exceed 998 octets (CRLF excluded).
constexpr std::size_t kMaxBodyLine = 998;
// RFC 2045 section 6.7: quoted-printable lines are at most 76 characters, the soft break's '='
// included.
constexpr std::size_t kMaxQpLine = 76;

std::string base64(std::string_view in) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    const unsigned v = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8) |
                       static_cast<unsigned char>(in[i + 2]);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (i < in.size()) {
    const bool two = i + 2 == in.size();
    const unsigned second = two ? static_cast<unsigned char>(in[i + 1]) : 0u;
    const unsigned v = (static_cast<unsigned char>(in[i]) << 16) | (second << 8);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += two ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

// One header field, folded (CRLF + space, RFC 5322 section 2.2.3) before a token that would not
// fit on the current line. Tokens never contain CR or LF: the values they come from are checked
// first, and encoded-words and addresses cannot hold them.
class HeaderField {
 public:
  explicit HeaderField(std::string_view name) : text_(name), line_(name.size() + 1) { text_ += ':'; }

  // Characters a token may have to still fit on this line after its separating space.
  std::size_t room() const { return line_ + 1 >= kMaxHeaderLine ? 0 : kMaxHeaderLine - line_ - 1; }

  // Starts a continuation line, unless this line holds no token yet (folding right after the
  // colon would leave an empty first line, which some parsers read as an empty value).
  void fold() {
    if (!token_on_line_) return;
    text_ += "\r\n";
    line_ = 0;
    token_on_line_ = false;
  }

  void add(std::string_view token) {
    if (token.size() > room()) fold();
    text_ += ' ';
    text_ += token;
    line_ += 1 + token.size();
    token_on_line_ = true;
  }

  std::string finish() && {
    text_ += "\r\n";
    return std::move(text_);
  }

 private:
  std::string text_;
  std::size_t line_;
  bool token_on_line_ = false;
};

// `text` (valid UTF-8) as encoded-words. Each is sized to the room left on its line, holds whole
// characters only (RFC 2047 section 5: a character is never split across encoded-words) and
// carries its own base64 padding, so each decodes on its own; decoders drop the folding white
// space between adjacent encoded-words, so the value is exactly `text`.
void add_encoded(HeaderField& field, std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    if (field.room() < kMinEncodedWord) field.fold();
    const std::size_t word = std::max(kMinEncodedWord, std::min(kMaxEncodedWord, field.room()));
    const std::size_t max_bytes = (word - kWordOverhead) / 4 * 3;
    std::size_t end = i;
    while (end < text.size()) {
      const std::size_t n = utf8_sequence_length(static_cast<unsigned char>(text[end]));
      if (end + n - i > max_bytes) break;
      end += n;
    }
    field.add(std::string(kWordStart) + base64(text.substr(i, end - i)) + std::string(kWordEnd));
    i = end;
  }
}

// Words of `text` separated by single spaces, with no space at either end: then folding at those
// spaces and unfolding give back exactly `text`.
bool splits_cleanly(std::string_view text) {
  return !text.empty() && text.front() != ' ' && text.back() != ' ' && text.find("  ") == std::string_view::npos;
}

bool words_fit(std::string_view text) {
  std::size_t run = 0;
  for (char c : text) {
    run = c == ' ' ? 0 : run + 1;
    if (run > kMaxPlainWord) return false;
  }
  return true;
}

// "=?" could start something a decoder takes for an encoded-word, which would change the text.
bool looks_encoded(std::string_view text) { return text.find("=?") != std::string_view::npos; }

// An unstructured value (Subject) that can be written as it is.
bool plain_unstructured(std::string_view text) {
  return splits_cleanly(text) && words_fit(text) && !looks_encoded(text) &&
         std::all_of(text.begin(), text.end(), [](char c) { return c >= 0x20 && c <= 0x7E; });
}

// RFC 5322 section 3.2.3 atext: a display name made of it and single spaces is a phrase of atoms.
bool is_atext(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
         std::string_view("!#$%&'*+-/=?^_`{|}~").find(c) != std::string_view::npos;
}

bool plain_phrase(std::string_view text) {
  return splits_cleanly(text) && words_fit(text) && !looks_encoded(text) &&
         std::all_of(text.begin(), text.end(), [](char c) { return c == ' ' || is_atext(c); });
}

void add_text(HeaderField& field, std::string_view text, bool plain) {
  if (text.empty()) return;
  if (!plain) return add_encoded(field, text);
  std::size_t start = 0;
  while (start < text.size()) {
    const std::size_t space = std::min(text.find(' ', start), text.size());
    field.add(text.substr(start, space - start));
    start = space + 1;
  }
}

std::string mailbox_field(std::string_view name, std::string_view display, std::string_view address) {
  HeaderField field(name);
  add_text(field, display, plain_phrase(display));
  // Appends rather than "<" + …: g++ 12 at -O3 reports a false -Wrestrict on the latter.
  std::string angle_addr = "<";
  angle_addr.append(address).append(">");
  field.add(angle_addr);
  return std::move(field).finish();
}

// The body's lines, without their ends. CRLF, a bare CR and a bare LF each end a line; a line end
// at the very end of the body does not start another (empty) line.
std::vector<std::string_view> body_lines(std::string_view body) {
  std::vector<std::string_view> lines;
  std::size_t start = 0;
  while (start < body.size()) {
    const std::size_t end = std::min(body.find_first_of("\r\n", start), body.size());
    lines.push_back(body.substr(start, end - start));
    start = end;
    if (start < body.size() && body[start] == '\r') ++start;
    if (start < body.size() && body[start] == '\n') ++start;
  }
  return lines;
}

bool fits_7bit(const std::vector<std::string_view>& lines) {
  return std::all_of(lines.begin(), lines.end(), [](std::string_view line) {
    return line.size() <= kMaxBodyLine && std::all_of(line.begin(), line.end(), [](char c) {
             return (c >= 0x20 && c <= 0x7E) || c == '\t';
           });
  });
}

// One line as quoted-printable (RFC 2045 section 6.7), soft-broken to at most 76 characters, with
// its CRLF. A '.' at the start of a line stays as it is: SMTP's dot-stuffing (libcurl's) takes
// care of it like any other line.
void append_quoted_printable(std::string& out, std::string_view line) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::size_t column = 0;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const auto c = static_cast<unsigned char>(line[i]);
    const bool last = i + 1 == line.size();
    char token[3] = {static_cast<char>(c), 0, 0};
    std::size_t len = 1;
    // White space is literal except at the end of the line, where transports may strip it.
    const bool literal = (c >= 33 && c <= 126 && c != '=') || ((c == ' ' || c == '\t') && !last);
    if (!literal) {
      token[0] = '=';
      token[1] = kHex[c >> 4];
      token[2] = kHex[c & 15];
      len = 3;
    }
    if (column + len > kMaxQpLine - 1) {  // keep room for the soft break's '='
      out += "=\r\n";
      column = 0;
    }
    out.append(token, len);
    column += len;
  }
  out += "\r\n";
}

}  // namespace

std::string format_rfc5322_date(herald::Timestamp t) {
  static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const std::time_t secs = std::chrono::floor<std::chrono::seconds>(t).time_since_epoch().count();
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d +0000", kDays[tm.tm_wday % 7], tm.tm_mday,
                kMonths[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf;
}

herald::Result<std::string> render_rfc5322(const Email& e) {
  if (!herald::is_uuid(e.message_id)) return Status::invalid_argument("field 'message_id' must be a UUID");
  HERALD_RETURN_IF_ERROR(check_email_address("from", e.from));
  HERALD_RETURN_IF_ERROR(check_email_address("to", e.to));
  HERALD_RETURN_IF_ERROR(check_plain_text("from_name", e.from_name));
  HERALD_RETURN_IF_ERROR(check_plain_text("to_name", e.to_name));
  HERALD_RETURN_IF_ERROR(check_plain_text("subject", e.subject));
  if (!utf8_length(e.body)) return Status::invalid_argument("field 'body' must be valid UTF-8");

  const auto lines = body_lines(e.body);
  const bool seven_bit = fits_7bit(lines);

  std::string out;
  out.append("Message-ID: <").append(e.message_id).append("@herald-shop>\r\n");
  out.append("Date: ").append(format_rfc5322_date(e.date)).append("\r\n");
  out += mailbox_field("From", e.from_name, e.from);
  out += mailbox_field("To", e.to_name, e.to);
  HeaderField subject("Subject");
  add_text(subject, e.subject, plain_unstructured(e.subject));
  out += std::move(subject).finish();
  out += "MIME-Version: 1.0\r\n";
  out += "Content-Type: text/plain; charset=utf-8\r\n";
  out += seven_bit ? "Content-Transfer-Encoding: 7bit\r\n" : "Content-Transfer-Encoding: quoted-printable\r\n";
  out += "\r\n";
  for (std::string_view line : lines) {
    if (seven_bit) {
      out += line;
      out += "\r\n";
    } else {
      append_quoted_printable(out, line);
    }
  }
  return out;
}

}  // namespace shop::notifications
