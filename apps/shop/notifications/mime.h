// shop/notifications/mime — the RFC 5322 / MIME text of one plain-text e-mail.
//
// What render_rfc5322 guarantees, whatever the caller passes:
//   * the header fields are exactly Message-ID, Date, From, To, Subject, MIME-Version,
//     Content-Type (text/plain; charset=utf-8) and Content-Transfer-Encoding, in that order;
//   * no header value holds a raw CR or LF: a subject or display name that is not plain printable
//     ASCII (or could be mistaken for an encoded-word) is written as RFC 2047 encoded-words
//     (=?UTF-8?B?…?=, each at most 75 characters and a whole number of characters), and long
//     values are folded so that no header line exceeds 76 characters (the RFC 2047 limit);
//   * every line of the body ends in CRLF (a bare CR, a bare LF and CRLF are each one line end);
//     the body is 7bit when it is printable ASCII with lines of at most 998 octets, else
//     quoted-printable (7-bit clean, so no relay needs 8BITMIME, and lines of at most 76);
//   * the text ends in CRLF. It is not dot-stuffed: that belongs to SMTP (see SmtpMailer), and an
//     .eml file holds the message itself.
#pragma once

#include <string>

#include "herald/event.h"
#include "herald/status.h"

namespace shop::notifications {

struct Email {
  std::string message_id;  // a UUID; the header is "<message_id@herald-shop>"
  std::string from;        // addresses: as check_email_address accepts
  std::string from_name;   // display names: may be empty
  std::string to;
  std::string to_name;
  std::string subject;
  std::string body;        // UTF-8, any line ends
  // The Date header. The causing event's time, so that a redelivered event renders the very same
  // message.
  herald::Timestamp date{};
};

// The message text, or invalid_argument (naming the field) for a message_id that is not a UUID,
// an address check_email_address refuses, a subject or display name that is not valid UTF-8 or
// holds a control character (CR and LF included), or a body that is not valid UTF-8.
//
// Refusing rather than repairing: every field was validated where it entered the system, so a CR
// in a header here means a caller skipped that, or an event older than the checks; sending a
// silently rewritten e-mail would hide the bug. The mail handlers turn the refusal into a
// permanent failure, i.e. a dead letter an operator sees, and nothing is sent.
herald::Result<std::string> render_rfc5322(const Email& email);

// "Tue, 25 Nov 2026 12:00:00 +0000" (RFC 5322 section 3.3, in UTC; English names whatever the
// locale).
std::string format_rfc5322_date(herald::Timestamp t);

}  // namespace shop::notifications
