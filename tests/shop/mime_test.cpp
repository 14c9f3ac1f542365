// The e-mail text (render_rfc5322) and the input checks it relies on (common/text.h,
// check_email_address): part of shop_unit_test.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/common.h"
#include "common/text.h"
#include "notifications/mime.h"

namespace {

using herald::StatusCode;
using shop::notifications::Email;
using shop::notifications::render_rfc5322;

Email sample() {
  Email e;
  e.message_id = "0190aaaa-0000-8000-8000-000000000001";
  e.from = "shop@herald.local";
  e.from_name = "Herald Shop";
  e.to = "ann@example.com";
  e.to_name = "Ann";
  e.subject = "Hi";
  e.body = "line1\nline2\n";
  e.date = herald::timestamp_from_micros(1795608005LL * 1'000'000 + 123);
  return e;
}

std::string render(const Email& e) {
  auto r = render_rfc5322(e);
  EXPECT_TRUE(r.is_ok()) << r.status().to_string();
  return r ? *r : std::string();
}

std::vector<std::string> split(const std::string& text, const std::string& sep) {
  std::vector<std::string> out;
  std::size_t start = 0;
  for (;;) {
    const auto at = text.find(sep, start);
    out.push_back(text.substr(start, at == std::string::npos ? std::string::npos : at - start));
    if (at == std::string::npos) return out;
    start = at + sep.size();
  }
}

std::string header_block(const std::string& msg) { return msg.substr(0, msg.find("\r\n\r\n") + 2); }
std::string body_block(const std::string& msg) { return msg.substr(msg.find("\r\n\r\n") + 4); }

// Header fields unfolded (a CRLF before white space removed), "Name: value" each.
std::vector<std::string> unfolded_fields(const std::string& msg) {
  std::string h = header_block(msg);
  std::string joined;
  for (std::size_t i = 0; i < h.size(); ++i) {
    if (h.compare(i, 3, "\r\n ") == 0) {
      i += 1;  // drop CRLF, keep the space
      continue;
    }
    joined += h[i];
  }
  auto fields = split(joined, "\r\n");
  fields.pop_back();  // after the last CRLF
  return fields;
}

std::string field(const std::string& msg, const std::string& name) {
  for (const auto& f : unfolded_fields(msg)) {
    if (f.rfind(name + ": ", 0) == 0) return f.substr(name.size() + 2);
    if (f == name + ":") return "";
  }
  ADD_FAILURE() << "no " << name << " in " << msg;
  return {};
}

std::string base64_decode(const std::string& in) {
  static const std::string kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  unsigned buf = 0;
  int bits = 0;
  for (char c : in) {
    if (c == '=') break;
    const auto v = kAlphabet.find(c);
    EXPECT_NE(v, std::string::npos) << in;
    buf = (buf << 6) | static_cast<unsigned>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((buf >> bits) & 0xFF);
    }
  }
  return out;
}

// An unstructured value made only of encoded-words: their decoded text, each word checked on
// its own (at most 75 characters, whole UTF-8 characters).
std::string decode_words(const std::string& value) {
  std::string out;
  for (const auto& word : split(value, " ")) {
    EXPECT_LE(word.size(), 75u) << word;
    EXPECT_EQ(word.rfind("=?UTF-8?B?", 0), 0u) << word;
    EXPECT_EQ(word.substr(word.size() - 2), "?=") << word;
    const std::string text = base64_decode(word.substr(10, word.size() - 12));
    EXPECT_TRUE(shop::utf8_length(text).has_value()) << "encoded-word splits a character: " << word;
    out += text;
  }
  return out;
}

void expect_header_lines_short(const std::string& msg) {
  for (const auto& line : split(header_block(msg), "\r\n")) EXPECT_LE(line.size(), 76u) << line;
}

void expect_only_crlf(const std::string& msg) {
  for (std::size_t i = 0; i < msg.size(); ++i) {
    if (msg[i] == '\n') {
      EXPECT_TRUE(i > 0 && msg[i - 1] == '\r') << "bare LF at " << i;
    }
    if (msg[i] == '\r') {
      EXPECT_TRUE(i + 1 < msg.size() && msg[i + 1] == '\n') << "bare CR at " << i;
    }
  }
  EXPECT_EQ(msg.substr(msg.size() - 2), "\r\n");
}

std::string qp_decode(const std::string& body) {
  std::string out;
  for (std::size_t i = 0; i < body.size(); ++i) {
    if (body[i] != '=') {
      out += body[i];
    } else if (body.compare(i + 1, 2, "\r\n") == 0) {
      i += 2;  // soft line break
    } else {
      out += static_cast<char>(std::stoi(body.substr(i + 1, 2), nullptr, 16));
      i += 2;
    }
  }
  return out;
}

TEST(Mime, PlainMessageIsExactlyTheseHeadersAndCrlfBody) {
  EXPECT_EQ(render(sample()),
            "Message-ID: <0190aaaa-0000-8000-8000-000000000001@herald-shop>\r\n"
            "Date: Wed, 25 Nov 2026 12:00:05 +0000\r\n"
            "From: Herald Shop <shop@herald.local>\r\n"
            "To: Ann <ann@example.com>\r\n"
            "Subject: Hi\r\n"
            "MIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: 7bit\r\n"
            "\r\n"
            "line1\r\n"
            "line2\r\n");
}

TEST(Mime, DateIsRfc5322InUtc) {
  EXPECT_EQ(shop::notifications::format_rfc5322_date(herald::timestamp_from_micros(1709251199LL * 1'000'000)),
            "Thu, 29 Feb 2024 23:59:59 +0000");
}

TEST(Mime, NonAsciiSubjectIsEncodedWordsOfWholeCharacters) {
  Email e = sample();
  // 4-byte characters make a split inside one likely if the encoder counted bytes only.
  e.subject = "Welcome to the Herald shop, Zoë Ünicode ";
  for (int i = 0; i < 30; ++i) e.subject += "🦆ü";
  const std::string msg = render(e);
  EXPECT_EQ(split(header_block(msg), "\r\n")[4].rfind("Subject: =?UTF-8?B?", 0), 0u) << msg;
  EXPECT_EQ(decode_words(field(msg, "Subject")), e.subject);
  expect_header_lines_short(msg);
  expect_only_crlf(msg);
}

TEST(Mime, AsciiThatLooksEncodedIsEncodedSoItReadsBackLiterally) {
  Email e = sample();
  e.subject = "=?UTF-8?B?QmNjOiB4?=";
  EXPECT_EQ(decode_words(field(render(e), "Subject")), e.subject);
}

TEST(Mime, LongAsciiSubjectIsFoldedAtSpaces) {
  Email e = sample();
  e.subject.clear();
  for (int i = 0; i < 30; ++i) e.subject += (i ? " word" : "word") + std::to_string(i);
  const std::string msg = render(e);
  expect_header_lines_short(msg);
  EXPECT_NE(header_block(msg).find("\r\n word"), std::string::npos) << msg;
  EXPECT_EQ(field(msg, "Subject"), e.subject);
}

TEST(Mime, SubjectsThatWouldNotReadBackAsTheyAreAreEncoded) {
  // Leading, trailing or doubled spaces would be lost by unfolding; a 61-character word cannot
  // be folded under the line limit.
  for (const std::string& subject : std::vector<std::string>{" lead", "trail ", "two  spaces", std::string(61, 'x')}) {
    Email e = sample();
    e.subject = subject;
    const std::string msg = render(e);
    EXPECT_EQ(decode_words(field(msg, "Subject")), subject);
    expect_header_lines_short(msg);
  }
}

TEST(Mime, DisplayNamesAreAtomsOrEncodedWords) {
  Email e = sample();
  e.to_name = "Ann O'Neil";
  EXPECT_EQ(field(render(e), "To"), "Ann O'Neil <ann@example.com>");
  e.to_name = "";
  EXPECT_EQ(field(render(e), "To"), "<ann@example.com>");
  // '.', '"', ',' and non-ASCII are not atext: encoded rather than quoted.
  for (const std::string& name :
       std::vector<std::string>{"Dr. Who", "Zoë Ünicode", "a, b", "\"q\"", std::string(120, 'n') + " ü"}) {
    e.to_name = name;
    const std::string msg = render(e);
    const std::string to = field(msg, "To");
    const std::string suffix = " <ann@example.com>";
    ASSERT_GT(to.size(), suffix.size());
    EXPECT_EQ(to.substr(to.size() - suffix.size()), suffix);
    EXPECT_EQ(decode_words(to.substr(0, to.size() - suffix.size())), name);
    expect_header_lines_short(msg);
  }
}

TEST(Mime, HeaderValuesWithLineBreaksOrControlsAreRefused) {
  const std::vector<std::string> bad = {"Eve\r\nBcc: x@evil.test", "a\nb", "a\rb", std::string("a\0b", 3),
                                        "tab\there", "del\x7f", "nel\xc2\x85", "ls\xe2\x80\xa8", "ps\xe2\x80\xa9",
                                        "bad utf8 \xff", "cut \xc3"};
  for (const auto& v : bad) {
    Email e = sample();
    e.subject = v;
    EXPECT_EQ(render_rfc5322(e).status().code(), StatusCode::invalid_argument) << v;
    e = sample();
    e.to_name = v;
    EXPECT_EQ(render_rfc5322(e).status().code(), StatusCode::invalid_argument) << v;
    e = sample();
    e.from_name = v;
    EXPECT_EQ(render_rfc5322(e).status().code(), StatusCode::invalid_argument) << v;
  }
  for (std::string addr : {"ann@example.com\r\nRCPT TO:<x@evil.test>", "ann@example.com>", "a b@example.com",
                           "Eve <eve@example.com>", "a@example.com,b@example.com", "no-at-sign"}) {
    Email e = sample();
    e.to = addr;
    EXPECT_EQ(render_rfc5322(e).status().code(), StatusCode::invalid_argument) << addr;
    e = sample();
    e.from = addr;
    EXPECT_EQ(render_rfc5322(e).status().code(), StatusCode::invalid_argument) << addr;
  }
  Email e = sample();
  e.message_id = "../../etc/passwd";
  EXPECT_EQ(render_rfc5322(e).status().code(), StatusCode::invalid_argument);
  e = sample();
  e.body = "cut \xc3";
  EXPECT_EQ(render_rfc5322(e).status().code(), StatusCode::invalid_argument);
}

TEST(Mime, EveryBodyLineEndBecomesCrlf) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"a\rb\nc\r\nd", "a\r\nb\r\nc\r\nd\r\n"},
      {"a\n", "a\r\n"},
      {"a\r\r\nb\n\rc", "a\r\n\r\nb\r\n\r\nc\r\n"},
      {"\n\n", "\r\n\r\n"},
      {"", ""},
      {"\n.\n", "\r\n.\r\n"},
  };
  for (const auto& [body, expected] : cases) {
    Email e = sample();
    e.body = body;
    const std::string msg = render(e);
    EXPECT_EQ(body_block(msg), expected) << body;
    expect_only_crlf(msg);
  }
}

TEST(Mime, BodyLinesStartingWithADotAreNotStuffed) {
  // SMTP's dot-stuffing is libcurl's; the message itself keeps its dots.
  Email e = sample();
  e.body = ".hidden\n..\n.";
  EXPECT_EQ(body_block(render(e)), ".hidden\r\n..\r\n.\r\n");
}

TEST(Mime, NonAsciiOrLongLinedBodyIsQuotedPrintable) {
  Email e = sample();
  e.body = "Zoë = 1\n.dot at the start\ntrailing space \n" + std::string(1000, 'x') + "\nü" + std::string(200, 'y');
  const std::string msg = render(e);
  EXPECT_EQ(field(msg, "Content-Transfer-Encoding"), "quoted-printable");
  const std::string body = body_block(msg);
  for (const auto& line : split(body, "\r\n")) EXPECT_LE(line.size(), 76u) << line;
  EXPECT_NE(body.find("\r\n.dot at the start\r\n"), std::string::npos) << body;
  EXPECT_NE(body.find("trailing space=20\r\n"), std::string::npos) << body;
  std::string expected = e.body;
  std::string normalized;
  for (char c : expected) normalized += c == '\n' ? std::string("\r\n") : std::string(1, c);
  EXPECT_EQ(qp_decode(body), normalized + "\r\n");
  expect_only_crlf(msg);

  e.body = std::string(999, 'a');  // ASCII, but over RFC 5322's 998-octet line limit
  EXPECT_EQ(field(render(e), "Content-Transfer-Encoding"), "quoted-printable");
  e.body = std::string(998, 'a');
  EXPECT_EQ(field(render(e), "Content-Transfer-Encoding"), "7bit");
}

TEST(Text, Utf8LengthCountsCodePointsAndRefusesMalformedSequences) {
  EXPECT_EQ(shop::utf8_length("Zoë").value_or(0), 3u);
  EXPECT_EQ(shop::utf8_length("🦆").value_or(0), 1u);
  EXPECT_EQ(shop::utf8_length("").value_or(1), 0u);
  for (std::string bad : {"\xc3", "\x80", "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xff",
                          "\xe2\x82"}) {
    EXPECT_FALSE(shop::utf8_length(bad).has_value()) << bad;
  }
}

TEST(Text, ControlCharactersAndSeparatorsAreRefusedByName) {
  const std::vector<std::string> bad_names = {"a\r\nb", "a\nb", std::string("a\0b", 3), "a\tb", "a\x1b[31m",
                                             "a\x7f", "a\xc2\x85", "a\xc2\x9f", "a\xe2\x80\xa8", "a\xe2\x80\xa9"};
  for (const auto& bad : bad_names) {
    herald::Status s = shop::check_plain_text("name", bad);
    EXPECT_EQ(s.code(), StatusCode::invalid_argument) << bad;
    EXPECT_EQ(s.message(), "field 'name' must not contain control characters") << bad;
  }
  EXPECT_EQ(shop::check_plain_text("name", "a\xff").message(), "field 'name' must be valid UTF-8");
  EXPECT_TRUE(shop::check_plain_text("name", "Zoë Ünicode \xe2\x80\xa7 🦆").is_ok());
}

TEST(Text, LengthIsInCharactersNotBytes) {
  std::string name;
  for (int i = 0; i < 200; ++i) name += "ü";
  EXPECT_TRUE(shop::check_plain_text("name", name, 1, 200).is_ok());
  name += "ü";
  EXPECT_EQ(shop::check_plain_text("name", name, 1, 200).message(), "field 'name' must be 1 to 200 characters");
  EXPECT_EQ(shop::check_plain_text("name", "", 1, 200).code(), StatusCode::invalid_argument);
}

TEST(Text, AddressesRefuseWhatCouldAddARecipientOrAHeader) {
  for (std::string bad : {"eve@example.com\r\nBcc: x@evil.test", "eve@example.com\n", "a b@example.com",
                          "<eve@example.com>", "\"eve\"@example.com", "eve@example.com,x@evil.test",
                          "eve@example.com;x", "eve(x)@example.com", "eve\\@example.com", "eve@exam\xe2\x80\xa8ple.com",
                          "\teve@example.com"}) {
    auto r = shop::normalize_email(bad);
    EXPECT_EQ(r.status().code(), StatusCode::invalid_argument) << bad;
    EXPECT_NE(r.status().message().find("field 'email'"), std::string::npos) << r.status().message();
  }
  EXPECT_EQ(*shop::normalize_email("  Ann@Example.COM "), "ann@example.com");
  EXPECT_EQ(*shop::normalize_email("zoë@exämple.com"), "zoë@exämple.com");
}

}  // namespace
